"""Figures of the robustness sweep: what survives deleting or swapping each layer.

Each function takes sweep tables (one per model, or one table with a ``model``
column) and returns a plotly figure to show, compose or export. Deletion and swap
sit side by side; models are overlaid on relative depth, as in the paper.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from stages_of_inference.errors import ConfigError
from stages_of_inference.plots.style import (
    DEPTH_AXIS_TITLE,
    add_band,
    by_model,
    model_colours,
)

PANELS = {
    "kl": "KL(original ‖ intervened), nats",
    "top1_agreement": "top-1 agreement with the original",
    "relative_accuracy": "relative accuracy (intervened ÷ original)",
    "entropy_bits": "entropy, bits",
}
"""The default metrics shown, one row of panels each, with their axis titles."""

COLUMN_TITLES = {
    "delete": "delete one layer",
    "swap": "swap adjacent layers",
    "delete_block": "delete a block of layers",
    "delete_attn": "delete a layer's attention",
    "delete_mlp": "delete a layer's MLP",
    "repeat": "repeat a range of layers",
    "order": "run an explicit order",
}
"""The title of each intervention kind's column of panels, in column order."""


def plot_robustness(table: pd.DataFrame, metrics: list[str] | None = None, *, title: str | None = None) -> go.Figure:
    """Metrics vs relative depth, one column per intervention kind (deletion, then swap, ...), with 95 % CI bands.

    A kind with several interventions filed under one layer (swaps at any distance,
    blocks and ranges of several widths) is drawn as markers, not a line. The heatmaps
    of :mod:`stages_of_inference.plots.families` show those families better.

    Args:
        table: A :func:`~stages_of_inference.sweep.robustness_sweep` table; with a
            ``model`` column, one line per model.
        metrics: Columns to plot (default: :data:`PANELS`).
        title: Figure title.

    Raises:
        ConfigError: The table has no rows.

    Example:
        >>> import pandas as pd
        >>> row = dict(intervention="delete", layer=0, relative_depth=0.0, kl=1.0, kl_ci_low=0.5, kl_ci_high=1.5)
        >>> fig = plot_robustness(pd.DataFrame([row]), ["kl"])
        >>> [trace.fill for trace in fig.data]  # the CI band, then the line
        ['toself', None]
    """
    metrics = metrics or list(PANELS)
    present = list(dict.fromkeys(table.intervention))
    if not present:
        raise ConfigError("the robustness table is empty; nothing to plot")
    kinds = [kind for kind in COLUMN_TITLES if kind in present] + [k for k in present if k not in COLUMN_TITLES]
    figure = make_subplots(
        rows=len(metrics),
        cols=len(kinds),
        shared_xaxes=True,
        column_titles=[COLUMN_TITLES.get(k, k) for k in kinds],
        vertical_spacing=0.06,
        horizontal_spacing=0.06,
    )
    models = by_model(table)
    colours = model_colours(name for name, _ in models)
    for row, metric in enumerate(metrics, start=1):
        for col, kind in enumerate(kinds, start=1):
            for name, rows in models:
                part = rows[rows.intervention == kind].sort_values("relative_depth")
                if part.empty:
                    continue
                _add_trace(figure, part, metric, name or "model", colours[name], row, col)
        figure.update_yaxes(title_text=PANELS.get(metric, metric), row=row, col=1)
    figure.update_xaxes(title_text=DEPTH_AXIS_TITLE, row=len(metrics))
    figure.update_layout(height=260 * len(metrics) + 80, title=title, template="plotly_white")
    return figure


def _add_trace(figure: go.Figure, part: pd.DataFrame, metric: str, label: str, colour: str, row: int, col: int) -> None:
    """One model's line in one panel, over its CI band when the table has one."""
    low, high = f"{metric}_ci_low", f"{metric}_ci_high"
    if low in part and not part[low].isna().all():
        add_band(figure, part.relative_depth, part[low], part[high], colour, legendgroup=label, row=row, col=col)
    figure.add_trace(
        go.Scatter(
            x=part.relative_depth,
            y=part[metric],
            mode="markers" if part.layer.duplicated().any() else "lines+markers",
            name=label,
            legendgroup=label,
            showlegend=row == 1 and col == 1,
            line={"color": colour},
            customdata=part.layer,
            hovertemplate="layer %{customdata}<br>%{y:.4g}",
        ),
        row=row,
        col=col,
    )
