"""Figures of the logit lens: metrics across depth, and the top token per layer and position."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from stages_of_inference.plots.style import (
    LENS_DEPTH_AXIS_TITLE,
    by_model,
    model_colours,
)

PLOTTED_METRICS = {
    "entropy_bits": "entropy (bits)",
    "kl_to_final": "KL(final || layer) (nats)",
    "loss": "loss vs true token (nats)",
    "accuracy": "top-1 accuracy",
    "agreement_with_final": "top-1 agreement with final",
    "true_token_rank": "mean rank of true token",
}
"""The metrics shown, one subplot each, with their subplot titles."""


def plot_logit_lens(table: pd.DataFrame) -> go.Figure:
    """Each lens metric against relative depth (``point / L``), one subplot per metric.

    With a ``model`` column (tables of several models concatenated), one line per model.

    Example:
        >>> table = pd.DataFrame({"relative_depth": [0.0, 1.0], "entropy_bits": [9.0, 3.0],
        ...     "kl_to_final": [5.0, 0.0], "loss": [9.0, 3.0], "accuracy": [0.0, 0.4],
        ...     "agreement_with_final": [0.0, 1.0], "true_token_rank": [900.0, 20.0]})
        >>> len(plot_logit_lens(table).data)
        6
    """
    figure = make_subplots(rows=2, cols=3, subplot_titles=list(PLOTTED_METRICS.values()))
    models = by_model(table)
    colours = model_colours(name for name, _ in models)
    for index, metric in enumerate(PLOTTED_METRICS):
        for name, rows in models:
            figure.add_trace(
                go.Scatter(
                    x=rows.relative_depth,
                    y=rows[metric],
                    mode="lines+markers",
                    name=name or "model",
                    legendgroup=name or "model",
                    showlegend=index == 0,
                    line={"color": colours[name]},
                ),
                row=index // 3 + 1,
                col=index % 3 + 1,
            )
    figure.update_xaxes(title_text=LENS_DEPTH_AXIS_TITLE)
    figure.update_layout(title="Logit lens across depth", height=650)
    return figure


def plot_top_tokens_heatmap(top: pd.DataFrame) -> go.Figure:
    """Layer x position heatmap of the lens's top-1 probability, the token text in each cell.

    Example:
        >>> top = pd.DataFrame({"layer": [-1, -1, 0, 0], "point": [0, 0, 1, 1],
        ...     "position": [1, 2, 1, 2], "input_token": ["a", "b", "a", "b"], "rank": 0,
        ...     "top_token": ["x", "y", "x", "z"], "probability": [0.1, 0.2, 0.5, 0.9]})
        >>> plot_top_tokens_heatmap(top).data[0].z.shape
        (2, 2)
    """
    first = top[top["rank"] == 0]
    probability = first.pivot(index="layer", columns="position", values="probability")
    text = first.pivot(index="layer", columns="position", values="top_token")
    inputs = first.drop_duplicates("position").set_index("position").input_token
    labels = [f"{position}: {inputs[position]!r}" for position in probability.columns]
    figure = go.Figure(
        go.Heatmap(
            z=probability.to_numpy(),
            x=labels,
            y=[str(layer) for layer in probability.index],
            text=text.to_numpy(),
            texttemplate="%{text}",
            colorscale="Blues",
            colorbar={"title": "top-1 probability"},
            zmin=0,
            zmax=1,
        )
    )
    figure.update_layout(
        title="Logit lens: top token per layer and position",
        xaxis_title="position: input token",
        yaxis_title="layer (-1 = embedding)",
    )
    return figure
