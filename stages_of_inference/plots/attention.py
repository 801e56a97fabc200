"""Figure of attention to the previous k tokens across depth (detokenization evidence)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from stages_of_inference.analyses.attention import DEFAULT_K
from stages_of_inference.plots.style import model_colours


def plot_previous_token_attention(table: pd.DataFrame, *, k: int = DEFAULT_K) -> go.Figure:
    """Mean attention to the previous ``k`` tokens against relative depth, with a +-sem band.

    One line per ``model`` (if the table has that column) and per ``head`` (if it has
    that column, i.e. came from ``by="head"``).

    Example:
        >>> table = pd.DataFrame({"layer": [0, 1], "relative_depth": [0.0, 1.0],
        ...     "mean": [0.1, 0.05], "sem": [0.01, 0.01], "n_documents": 2})
        >>> len(plot_previous_token_attention(table).data)  # band + line
        2
    """
    keys = [key for key in ("model", "head") if key in table.columns]
    groups = table.groupby(keys, sort=False) if keys else [("", table)]
    figure = go.Figure()
    labelled = [
        (" head ".join(str(part) for part in (name if isinstance(name, tuple) else (name,))) or "mean over heads", group)
        for name, group in groups
    ]
    colours = model_colours(label for label, _ in labelled)
    for label, group in labelled:
        _add_band(figure, group, label, colours[label])
    figure.update_layout(
        title=f"Mean attention to each of the previous {k} tokens",
        xaxis_title="relative depth (layer / (L - 1))",
        yaxis_title="mean attention weight",
    )
    return figure

def _add_band(figure: go.Figure, group: pd.DataFrame, label: str, colour: str) -> None:
    """A line for ``mean`` and a filled band for ``mean +- sem``."""
    sem = group["sem"].fillna(0.0)
    upper, lower = group["mean"] + sem, group["mean"] - sem
    figure.add_trace(
        go.Scatter(
            x=[*group.relative_depth, *group.relative_depth[::-1]],
            y=[*upper, *lower[::-1]],
            fill="toself", fillcolor=colour, opacity=0.25, line={"width": 0}, hoverinfo="skip",
            showlegend=False, legendgroup=label,
        )
    )
    figure.add_trace(
        go.Scatter(
            x=group.relative_depth, y=group["mean"], mode="lines+markers", name=label, legendgroup=label,
            line={"color": colour},
        )
    )
