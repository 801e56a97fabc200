"""Figures of subjoiner heads: the score per head, and one head's attention on one prompt."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go


def plot_head_scores(ranking: pd.DataFrame, *, title: str = "Subjoiner score per head") -> go.Figure:
    """Heatmap of the subjoiner score (target minus control attention), layer x head.

    Example:
        >>> import pandas as pd
        >>> ranking = pd.DataFrame({"layer": [0, 0, 1, 1], "head": [0, 1, 0, 1], "score": [0.1, 0.5, 0.0, -0.2]})
        >>> plot_head_scores(ranking).data[0].z.tolist()
        [[0.1, 0.5], [0.0, -0.2]]
    """
    grid = ranking.pivot(index="layer", columns="head", values="score").sort_index()
    figure = go.Figure(
        go.Heatmap(z=grid.to_numpy(), x=list(grid.columns), y=list(grid.index), colorscale="RdBu", zmid=0.0)
    )
    figure.update_layout(title=title, xaxis_title="head", yaxis_title="layer")
    figure.update_yaxes(autorange="reversed")
    return figure


def plot_subjoiner_pattern(pattern: pd.DataFrame) -> go.Figure:
    """Heatmap of one head's attention pattern on one prompt.

    Rows are query positions, columns key positions, each labelled ``index:token``.

    Args:
        pattern: A :func:`~stages_of_inference.analyses.subjoiner.subjoiner_pattern` table.

    Example:
        >>> pattern = pd.DataFrame({"layer": 1, "head": 6, "query": [0, 0, 1, 1], "key": [0, 1, 0, 1],
        ...     "query_token": ["<s>", "<s>", "Hi", "Hi"], "key_token": ["<s>", "Hi", "<s>", "Hi"],
        ...     "weight": [1.0, 0.0, 0.3, 0.7]})
        >>> figure = plot_subjoiner_pattern(pattern)
        >>> figure.data[0].z.tolist(), figure.data[0].x
        ([[1.0, 0.0], [0.3, 0.7]], ('0:<s>', '1:Hi'))
    """
    weights = pattern.pivot(index="query", columns="key", values="weight").sort_index().sort_index(axis=1)
    tokens = pattern.drop_duplicates("key").set_index("key").key_token
    labels = [f"{position}:{tokens[position]}" for position in weights.columns]
    figure = go.Figure(go.Heatmap(z=weights.to_numpy(), x=labels, y=labels, colorscale="Blues"))
    layer, head = pattern["layer"].iloc[0], pattern["head"].iloc[0]
    figure.update_layout(title=f"Attention pattern, layer {layer} head {head}", xaxis_title="key", yaxis_title="query")
    figure.update_yaxes(autorange="reversed")
    return figure
