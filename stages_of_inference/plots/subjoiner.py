"""Figures of subjoiner heads: the score per head, and one head's attention on one prompt."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import torch

from stages_of_inference.activations import cached_batches
from stages_of_inference.analyses.subjoiner import Prompt, _prompt_tokens
from stages_of_inference.errors import ConfigError
from stages_of_inference.layers import check_layer, n_layers_of


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

def plot_subjoiner_pattern(model: torch.nn.Module, prompt: str | Prompt, layer: int, head: int) -> go.Figure:
    """Heatmap of one head's attention pattern on one prompt (BOS prepended).

    Rows are query positions, columns key positions, each labelled ``index:token``.

    Example:
        >>> plot_subjoiner_pattern(model, details.targets[0], layer=1, head=6)  # doctest: +SKIP
    """
    layer = check_layer(layer, n_layers_of(model))
    n_heads = int(model.cfg.n_heads)
    if isinstance(head, bool) or not isinstance(head, int) or not 0 <= head < n_heads:
        raise ConfigError(f"head {head!r} is out of range: this model has heads 0 to {n_heads - 1}")
    tokens = _prompt_tokens(model, prompt)
    name = f"blocks.{layer}.attn.hook_pattern"
    _, _, cache = next(cached_batches(model, tokens[None], [name], batch_size=1))
    labels = [f"{i}:{text}" for i, text in enumerate(model.tokenizer.batch_decode([[t] for t in tokens.tolist()]))]
    figure = go.Figure(go.Heatmap(z=cache[name][0, head].float().numpy(), x=labels, y=labels, colorscale="Blues"))
    figure.update_layout(
        title=f"Attention pattern, layer {layer} head {head}", xaxis_title="key", yaxis_title="query"
    )
    figure.update_yaxes(autorange="reversed")
    return figure
