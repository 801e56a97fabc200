"""Figure of attention to the previous k tokens across depth (detokenization evidence)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from stages_of_inference.analyses.attention import DEFAULT_K
from stages_of_inference.plots.style import (
    DEPTH_AXIS_TITLE,
    add_band,
    by_model,
    model_colours,
)


def plot_previous_token_attention(table: pd.DataFrame, *, k: int = DEFAULT_K) -> go.Figure:
    """Mean attention to the previous ``k`` tokens against relative depth, with a +-sem band.

    One line per ``model`` (if the table has that column) and per ``head`` (if it has
    that column, i.e. came from ``by="head"``); each line has its own colour.

    Example:
        >>> table = pd.DataFrame({"layer": [0, 1], "relative_depth": [0.0, 1.0],
        ...     "mean": [0.1, 0.05], "sem": [0.01, 0.01], "n_documents": 2})
        >>> len(plot_previous_token_attention(table).data)  # band + line
        2
    """
    lines = [
        (" head ".join(part for part in (name, head) if part) or "mean over heads", rows)
        for name, model_rows in by_model(table)
        for head, rows in _by_head(model_rows)
    ]
    colours = model_colours(label for label, _ in lines)
    figure = go.Figure()
    for label, rows in lines:
        sem = rows["sem"].fillna(0.0)
        add_band(figure, rows.relative_depth, rows["mean"] - sem, rows["mean"] + sem, colours[label], legendgroup=label)
        figure.add_trace(
            go.Scatter(
                x=rows.relative_depth,
                y=rows["mean"],
                mode="lines+markers",
                name=label,
                legendgroup=label,
                line={"color": colours[label]},
            )
        )
    figure.update_layout(
        title=f"Mean attention to each of the previous {k} tokens",
        xaxis_title=DEPTH_AXIS_TITLE,
        yaxis_title="mean attention weight",
    )
    return figure


def _by_head(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The rows of each head (named by its index), or ``[("", table)]`` for a per-layer table."""
    if "head" not in table.columns:
        return [("", table)]
    return [(str(head), rows) for head, rows in table.groupby("head", sort=False)]
