"""Figure of the pruning planner: what survives as more layers are deleted, planner vs published rankings.

Takes the ``comparison`` table of a :class:`~stages_of_inference.pruning.PrunePlan`
(one per model, or one table with a ``model`` column) and returns a plotly figure:
held-out metrics against the number of deleted layers, one line per method with its
95 % CI band. Colours are the models' (:func:`~stages_of_inference.plots.style.model_colours`),
line styles the methods'.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from stages_of_inference.plots.style import add_band, by_model, model_colours

PANELS = {
    "relative_accuracy": "relative accuracy (pruned ÷ original), held out",
    "kl": "KL(original ‖ pruned), nats, held out",
}
"""The metrics shown, one panel each, with their axis titles."""

METHOD_STYLES = {
    "planner": ("planner (joint deletions)", "solid"),
    "block_influence": ("Block Influence (ShortGPT)", "dash"),
    "angular_distance": ("angular distance (Gromov et al.)", "dot"),
}
"""Each method's legend name and line dash."""

DELETED_AXIS_TITLE = "layers deleted"


def plot_pruning(table: pd.DataFrame, metrics: list[str] | None = None, *, title: str | None = None) -> go.Figure:
    """Held-out metrics vs the number of deleted layers, for the planner and both baselines, with 95 % CIs.

    Args:
        table: A :attr:`PrunePlan.comparison <stages_of_inference.pruning.PrunePlan.comparison>`
            table; with a ``model`` column, lines per model and method.
        metrics: Columns to plot (default: :data:`PANELS`).
        title: Figure title.

    Example:
        >>> import pandas as pd
        >>> rows = [dict(method=m, n_deleted=1, deleted_layers="[2]", kl=k, kl_ci_low=k, kl_ci_high=k)
        ...         for m, k in [("planner", 0.1), ("block_influence", 0.3)]]
        >>> fig = plot_pruning(pd.DataFrame(rows), ["kl"])
        >>> [(trace.name, trace.line.dash) for trace in fig.data if trace.fill is None]
        [('planner (joint deletions)', 'solid'), ('Block Influence (ShortGPT)', 'dash')]
    """
    metrics = metrics or list(PANELS)
    figure = make_subplots(rows=1, cols=len(metrics), horizontal_spacing=0.08)
    models = by_model(table)
    colours = model_colours(name for name, _ in models)
    for col, metric in enumerate(metrics, start=1):
        for name, rows in models:
            for method, (label, dash) in METHOD_STYLES.items():
                part = rows[rows.method == method].sort_values("n_deleted")
                if part.empty:
                    continue
                legend = f"{name}: {label}" if name else label
                low, high = f"{metric}_ci_low", f"{metric}_ci_high"
                if low in part and not part[low].isna().all():
                    add_band(
                        figure, part.n_deleted, part[low], part[high], colours[name], legendgroup=legend, col=col, row=1
                    )
                figure.add_trace(
                    go.Scatter(
                        x=part.n_deleted,
                        y=part[metric],
                        mode="lines+markers",
                        name=legend,
                        legendgroup=legend,
                        showlegend=col == 1,
                        line={"color": colours[name], "dash": dash},
                        customdata=part.deleted_layers,
                        hovertemplate="deleted %{customdata}<br>%{y:.4g}",
                    ),
                    row=1,
                    col=col,
                )
        figure.update_yaxes(title_text=PANELS.get(metric, metric), row=1, col=col)
        figure.update_xaxes(title_text=DELETED_AXIS_TITLE, dtick=1, row=1, col=col)
    figure.update_layout(height=420, title=title, template="plotly_white")
    return figure
