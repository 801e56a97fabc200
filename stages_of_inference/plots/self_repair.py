"""Figures of self-repair: an intervened model's lens KL beside the original's, and repair per layer.

Each function takes :func:`~stages_of_inference.analyses.self_repair.self_repair`
tables (or :func:`~stages_of_inference.analyses.self_repair.repair_by_layer`
summaries), of one model or several concatenated with a ``model`` column.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from stages_of_inference.plots.style import LENS_DEPTH_AXIS_TITLE, by_model, model_colours


def plot_repair_curve(table: pd.DataFrame, intervention: str | None = None) -> go.Figure:
    """KL(original output ‖ lens) across depth, original (solid) and intervened (dashed), per model.

    Args:
        table: A self-repair table.
        intervention: The label of the intervention shown (default: the table's first).

    Example:
        >>> table = pd.DataFrame({"intervention": "delete layer 0", "relative_depth": [0.0, 0.5, 1.0],
        ...     "original_kl_to_final": [3.0, 1.0, 0.0], "intervened_kl_to_final": [3.0, 2.0, 0.5]})
        >>> [trace.line.dash for trace in plot_repair_curve(table).data]
        ['solid', 'dash']
    """
    label = intervention or str(table.intervention.iloc[0])
    chosen = table[table.intervention == label]
    figure = go.Figure()
    models = by_model(chosen)
    colours = model_colours(name for name, _ in models)
    for name, rows in models:
        for column, dash, kind in (
            ("original_kl_to_final", "solid", "original"),
            (
                "intervened_kl_to_final",
                "dash",
                label,
            ),
        ):
            figure.add_trace(
                go.Scatter(
                    x=rows.relative_depth,
                    y=rows[column],
                    mode="lines+markers",
                    name=f"{kind} ({name})" if name else kind,
                    legendgroup=name or "model",
                    line={"color": colours[name], "dash": dash},
                )
            )
    figure.update_layout(
        title=f"Self-repair after {label}: KL to the original output across depth",
        xaxis_title=LENS_DEPTH_AXIS_TITLE,
        yaxis_title="KL(original output ‖ lens) (nats)",
    )
    return figure


def plot_repair_heatmap(table: pd.DataFrame, value: str = "excess_kl", *, title: str | None = None) -> go.Figure:
    """Intervened layer x later layer heatmap of one column (default: the excess KL), one model.

    Args:
        table: A self-repair table of one model (e.g. every single deletion).
        value: ``excess_kl``, ``repair``, ``repair_fraction`` or another numeric column.
        title: The figure title.

    Example:
        >>> table = pd.DataFrame({"intervened_layer": [0, 0, 1, 1], "layer": [0, 1, 0, 1],
        ...     "excess_kl": [0.5, 0.2, 0.0, 0.4]})
        >>> plot_repair_heatmap(table).data[0].z.tolist()
        [[0.5, 0.2], [0.0, 0.4]]
    """
    rows = table[table.layer >= 0]
    matrix = rows.pivot_table(index="intervened_layer", columns="layer", values=value, sort=True)
    figure = go.Figure(
        go.Heatmap(
            z=matrix.to_numpy(),
            x=list(matrix.columns),
            y=list(matrix.index),
            colorscale="RdBu_r" if value.startswith("repair") else "Viridis",
            zmid=0.0 if value.startswith("repair") else None,
            colorbar={"title": value},
        )
    )
    figure.update_layout(
        title=title or f"Self-repair: {value} after each layer (x) when one layer is deleted (y)",
        xaxis_title="layer (output read through the lens)",
        yaxis_title="deleted layer",
    )
    figure.update_yaxes(autorange="reversed")
    return figure


def plot_repair_by_layer(table: pd.DataFrame) -> go.Figure:
    """Mean repair (nats) each layer makes after the deletions before it, per model, against relative depth.

    Args:
        table: :func:`~stages_of_inference.analyses.self_repair.repair_by_layer` tables
            with a ``relative_depth`` column (``point / L``), with a ``model`` column for several.

    Example:
        >>> table = pd.DataFrame({"relative_depth": [0.5, 1.0], "mean_repair": [0.1, 0.3]})
        >>> plot_repair_by_layer(table).data[0].y.tolist()
        [0.1, 0.3]
    """
    figure = go.Figure()
    models = by_model(table)
    colours = model_colours(name for name, _ in models)
    for name, rows in models:
        figure.add_trace(
            go.Scatter(
                x=rows.relative_depth,
                y=rows.mean_repair,
                mode="lines+markers",
                name=name or "model",
                line={"color": colours[name]},
            )
        )
    figure.update_layout(
        title="Which layers repair: KL removed by each layer after an earlier layer is deleted",
        xaxis_title=LENS_DEPTH_AXIS_TITLE,
        yaxis_title="mean repair (nats)",
    )
    return figure
