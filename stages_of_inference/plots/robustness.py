"""Figures of the robustness sweep: what survives deleting or swapping each layer.

Each function takes sweep tables (one per model, or one table with a ``model``
column) and returns a plotly figure to show, compose or export. Deletion and swap
sit side by side; models are overlaid on relative depth, as in the paper.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from stages_of_inference.plots.style import model_colours

PANELS = {
    "kl": "KL(original ‖ intervened), nats",
    "top1_agreement": "top-1 agreement with the original",
    "relative_accuracy": "relative accuracy (intervened ÷ original)",
    "entropy_bits": "entropy, bits",
}
"""The default metrics shown, one row of panels each, with their axis titles."""


def plot_robustness(
    table: pd.DataFrame, metrics: list[str] | None = None, *, title: str | None = None
) -> go.Figure:
    """Metrics vs relative depth, deletion (left) and swap (right), with 95 % CI bands.

    Args:
        table: A :func:`~stages_of_inference.sweep.robustness_sweep` table; with a
            ``model`` column, one line per model.
        metrics: Columns to plot (default: :data:`PANELS`).
        title: Figure title.

    Example:
        >>> import pandas as pd
        >>> row = dict(intervention="delete", layer=0, relative_depth=0.0, kl=1.0, kl_ci_low=0.5, kl_ci_high=1.5)
        >>> fig = plot_robustness(pd.DataFrame([row]), ["kl"])
        >>> len(fig.data) >= 1
        True
    """
    metrics = metrics or list(PANELS)
    frame = table if "model" in table else table.assign(model="model")
    kinds = [k for k in ("delete", "swap") if k in set(frame.intervention)]
    figure = make_subplots(
        rows=len(metrics), cols=len(kinds), shared_xaxes=True, column_titles=[f"{k} one layer" if k == "delete" else "swap adjacent layers" for k in kinds],
        vertical_spacing=0.06, horizontal_spacing=0.06,
    )
    colours = model_colours(frame.model)
    for row, metric in enumerate(metrics, start=1):
        for col, kind in enumerate(kinds, start=1):
            for model, part in frame[frame.intervention == kind].groupby("model", sort=False):
                part = part.sort_values("relative_depth")
                _add_band(figure, part, metric, colours[str(model)], row, col)
                figure.add_trace(
                    go.Scatter(
                        x=part.relative_depth, y=part[metric], mode="lines+markers", name=str(model),
                        legendgroup=str(model), showlegend=row == 1 and col == 1, line={"color": colours[str(model)]},
                        customdata=part.layer, hovertemplate="layer %{customdata}<br>%{y:.4g}",
                    ),
                    row=row, col=col,
                )
        figure.update_yaxes(title_text=PANELS.get(metric, metric), row=row, col=1)
    figure.update_xaxes(title_text="relative depth (layer / (L − 1))", row=len(metrics))
    figure.update_layout(height=260 * len(metrics) + 80, title=title, template="plotly_white")
    return figure


def _add_band(figure: go.Figure, part: pd.DataFrame, metric: str, colour: str, row: int, col: int) -> None:
    low, high = f"{metric}_ci_low", f"{metric}_ci_high"
    if low not in part or part[low].isna().all():
        return
    figure.add_trace(
        go.Scatter(
            x=list(part.relative_depth) + list(part.relative_depth[::-1]),
            y=list(part[high]) + list(part[low][::-1]),
            fill="toself", fillcolor=colour, opacity=0.2, line={"width": 0},
            hoverinfo="skip", showlegend=False,
        ),
        row=row, col=col,
    )


def combine_tables(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One table with a ``model`` column from per-model sweep tables (for overlays)."""
    return pd.concat([t.assign(model=name) for name, t in tables.items()], ignore_index=True)
