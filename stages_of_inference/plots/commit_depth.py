"""Figures of where the prediction settles: commit depths, exit curves, commit depth by token class.

Each function takes the tables of :mod:`stages_of_inference.analyses.commit_depth`
(one model, or several concatenated with a ``model`` column) and overlays models on
relative depth (``point / L``), each model in its own colour.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from stages_of_inference.analyses.commit_depth import TOKEN_CLASSES
from stages_of_inference.plots.style import LENS_DEPTH_AXIS_TITLE, add_band, by_model, model_colours

EXIT_PANELS = {
    "accuracy": "top-1 accuracy vs true token",
    "agreement": "top-1 agreement with final",
    "kl_to_final": "KL(final ‖ lens) (nats)",
}
"""The exit-curve columns shown, one panel each, with their titles."""


def plot_commit_distribution(table: pd.DataFrame) -> go.Figure:
    """The share of tokens whose prediction commits at each point, per model.

    Args:
        table: :meth:`~stages_of_inference.analyses.commit_depth.CommitDepth.distribution`
            tables (``relative_depth``, ``fraction``), with a ``model`` column for several.

    Example:
        >>> table = pd.DataFrame({"relative_depth": [0.0, 0.5, 1.0], "fraction": [0.1, 0.3, 0.6]})
        >>> plot_commit_distribution(table).data[0].type
        'bar'
    """
    figure = go.Figure()
    models = by_model(table)
    colours = model_colours(name for name, _ in models)
    for name, rows in models:
        figure.add_trace(
            go.Bar(
                x=rows.relative_depth, y=rows.fraction, name=name or "model", marker_color=colours[name], opacity=0.7
            )
        )
    figure.update_layout(
        title="Where the prediction settles: share of tokens committing at each point",
        barmode="overlay",
        xaxis_title=LENS_DEPTH_AXIS_TITLE,
        yaxis_title="share of tokens",
    )
    return figure


def plot_exit_curves(table: pd.DataFrame) -> go.Figure:
    """Exiting at each point: accuracy, agreement with the final top-1 and KL, with CI bands.

    Args:
        table: :meth:`~stages_of_inference.analyses.commit_depth.CommitDepth.exit_curve`
            tables, with a ``model`` column for several; bands are drawn from the
            ``_ci_low`` / ``_ci_high`` columns where they are finite.

    Example:
        >>> table = pd.DataFrame({"relative_depth": [0.0, 1.0], "accuracy": [0.0, 0.4],
        ...     "agreement": [0.1, 1.0], "kl_to_final": [5.0, 0.0]})
        >>> len(plot_exit_curves(table).data)
        3
    """
    figure = make_subplots(rows=1, cols=len(EXIT_PANELS), subplot_titles=list(EXIT_PANELS.values()))
    models = by_model(table)
    colours = model_colours(name for name, _ in models)
    for col, column in enumerate(EXIT_PANELS, start=1):
        for name, rows in models:
            low, high = f"{column}_ci_low", f"{column}_ci_high"
            if low in rows and rows[low].notna().all():
                add_band(
                    figure, rows.relative_depth, rows[low], rows[high], colours[name], legendgroup=name, col=col, row=1
                )
            figure.add_trace(
                go.Scatter(
                    x=rows.relative_depth,
                    y=rows[column],
                    mode="lines+markers",
                    name=name or "model",
                    legendgroup=name or "model",
                    showlegend=col == 1,
                    line={"color": colours[name]},
                ),
                row=1,
                col=col,
            )
    figure.update_xaxes(title_text=LENS_DEPTH_AXIS_TITLE)
    figure.update_layout(title="Exit at point ℓ: the lens's prediction as the model's output", height=450)
    return figure


def plot_commit_by_class(per_token: pd.DataFrame) -> go.Figure:
    """Box plots of the relative commit depth per token class of the prediction, per model.

    Args:
        per_token: :class:`~stages_of_inference.analyses.commit_depth.CommitDepth`
            ``per_token`` tables, with a ``model`` column for several.

    Example:
        >>> per_token = pd.DataFrame({"token_class": ["digits", "word_initial"], "relative_commit_depth": [0.5, 0.9]})
        >>> plot_commit_by_class(per_token).data[0].type
        'box'
    """
    figure = go.Figure()
    models = by_model(per_token)
    colours = model_colours(name for name, _ in models)
    for name, rows in models:
        figure.add_trace(
            go.Box(
                x=rows.token_class,
                y=rows.relative_commit_depth,
                name=name or "model",
                marker_color=colours[name],
                boxpoints=False,
            )
        )
    present = [c for c in TOKEN_CLASSES if c in set(per_token.token_class)]
    figure.update_layout(
        title="Commit depth by the class of the predicted token",
        boxmode="group",
        xaxis={"title": "class of the final top-1 token", "categoryorder": "array", "categoryarray": present},
        yaxis_title="relative commit depth (point / L)",
    )
    return figure
