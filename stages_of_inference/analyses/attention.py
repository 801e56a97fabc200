"""Attention to the previous k tokens across depth (paper section 4, evidence of detokenization).

For each layer (or each head), the average attention weight a query puts on each of the
``k`` keys just before it: the mean over the sub-diagonals ``-1..-k`` of
``attn.hook_pattern`` (one averaged weight, not a sum). Only queries whose ``k``
previous keys all exist, and with ``exclude_bos`` are not BOS, count (``q >= k + 1``),
so every query averages the same number of entries. The weight is averaged within each
window (a "document"), then the mean and standard error (sample std / sqrt(n)) are taken
across windows.
"""

from __future__ import annotations

import math
from typing import Literal

import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor

from stages_of_inference.activations import DEFAULT_BATCH_SIZE, cached_activations
from stages_of_inference.errors import ConfigError
from stages_of_inference.layers import n_layers_of, relative_depth
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.tokens import check_windows

DEFAULT_K = 5


def pattern_hook_names(n_layers: int) -> list[str]:
    """The attention pattern hook of every layer.

    Example:
        >>> pattern_hook_names(2)
        ['blocks.0.attn.hook_pattern', 'blocks.1.attn.hook_pattern']
    """
    return [f"blocks.{layer}.attn.hook_pattern" for layer in range(n_layers)]


def first_query(k: int, exclude_bos: bool = True) -> int:
    """The first query position whose ``k`` previous keys all exist (and are not BOS).

    Example:
        >>> first_query(5), first_query(5, exclude_bos=False)
        (6, 5)
    """
    return k + 1 if exclude_bos else k


def previous_token_weight(
    pattern: Float[Tensor, "batch head query key"], k: int, start: int
) -> Float[Tensor, "batch head"]:
    """Mean attention weight on keys ``q-1..q-k``, over queries ``q >= start``.

    Args:
        pattern: Attention probabilities, ``attn.hook_pattern``.
        k: How many previous tokens.
        start: The first query position counted (at least ``k``).

    Example:
        >>> pattern = torch.eye(4).roll(-1, dims=1).reshape(1, 1, 4, 4)  # query q attends to q-1
        >>> previous_token_weight(pattern, k=2, start=2).tolist()
        [[0.5]]
    """
    diagonals = [
        pattern.diagonal(offset=-offset, dim1=-2, dim2=-1)[..., start - offset :] for offset in range(1, k + 1)
    ]
    return torch.stack(diagonals, dim=-1).mean(dim=(-2, -1))


def previous_token_attention(
    model: LoadedModel,
    tokens: Int[Tensor, "batch pos"],
    *,
    k: int = DEFAULT_K,
    batch_size: int = DEFAULT_BATCH_SIZE,
    exclude_bos: bool = True,
    by: Literal["layer", "head"] = "layer",
) -> pd.DataFrame:
    """Mean attention to the previous ``k`` tokens, per layer or per head, over windows.

    Args:
        model: A ``TransformerBridge``.
        tokens: ``[batch, pos]`` windows, BOS at position 0; each window is a document.
        k: How many previous tokens (the paper uses 5).
        batch_size: Windows per forward pass.
        exclude_bos: Count only queries whose ``k`` previous keys are not BOS.
        by: ``"layer"``: the paper's quantity, the mean over heads, one row per layer;
            ``"head"``: one row per (layer, head).

    Returns:
        Columns ``layer``, (``head`` when ``by="head"``), ``relative_depth``
        (``layer / (L - 1)``), ``mean``, ``sem`` (sample std / sqrt(n_documents);
        NaN for a single document) and ``n_documents``.

    Raises:
        ConfigError: ``k < 1``, windows too short for any query to have ``k`` previous
            (non-BOS) keys, ``by`` not ``"layer"``/``"head"``, or empty ``tokens``.

    Example:
        >>> table = previous_token_attention(model, tokens, k=5)  # doctest: +SKIP
        >>> table.columns.tolist()  # doctest: +SKIP
        ['layer', 'relative_depth', 'mean', 'sem', 'n_documents']
    """
    start = _check_arguments(tokens, k, exclude_bos, by)
    n_layers = n_layers_of(model)
    names = pattern_hook_names(n_layers)
    per_document = []
    for _, cache in cached_activations(model, tokens, names, batch_size):
        layers = [previous_token_weight(cache[name], k, start) for name in names]
        per_document.append(torch.stack(layers, dim=1).cpu().double())
    scores = torch.cat(per_document)  # [documents, layers, heads]
    if by == "layer":
        return _summary_table(scores.mean(dim=-1), n_layers)
    return _head_table(scores, n_layers)


def _check_arguments(tokens: Tensor, k: int, exclude_bos: bool, by: str) -> int:
    """Validate the arguments; return the first counted query position."""
    if by not in ("layer", "head"):
        raise ConfigError(f"by={by!r} is not an option; pass by='layer' or by='head'")
    check_windows(tokens, what="previous_token_attention", min_len=1)
    if k < 1:
        raise ConfigError(f"k={k} must be at least 1: it counts the previous tokens attended to")
    start = first_query(k, exclude_bos)
    if start >= tokens.shape[1]:
        raise ConfigError(
            f"k={k} leaves no query with {k} previous{' non-BOS' if exclude_bos else ''} keys "
            f"in windows of {tokens.shape[1]} tokens; pass k <= {tokens.shape[1] - 1 - start + k}"
        )
    return start


def _mean_and_sem(scores: Float[Tensor, "documents *rest"]) -> tuple[Tensor, Tensor]:  # noqa: F821 (jaxtyping)
    n_documents = scores.shape[0]
    if n_documents < 2:
        return scores.mean(dim=0), torch.full(scores.shape[1:], math.nan, dtype=scores.dtype, device=scores.device)
    return scores.mean(dim=0), scores.std(dim=0) / math.sqrt(n_documents)


def _summary_table(scores: Float[Tensor, "documents layer"], n_layers: int) -> pd.DataFrame:
    mean, sem = _mean_and_sem(scores)
    return pd.DataFrame(
        {
            "layer": range(n_layers),
            "relative_depth": [relative_depth(layer, n_layers) for layer in range(n_layers)],
            "mean": mean.numpy(),
            "sem": sem.numpy(),
            "n_documents": scores.shape[0],
        }
    )


def _head_table(scores: Float[Tensor, "documents layer head"], n_layers: int) -> pd.DataFrame:
    mean, sem = _mean_and_sem(scores)
    n_heads = scores.shape[-1]
    layers = [layer for layer in range(n_layers) for _ in range(n_heads)]
    return pd.DataFrame(
        {
            "layer": layers,
            "head": list(range(n_heads)) * n_layers,
            "relative_depth": [relative_depth(layer, n_layers) for layer in layers],
            "mean": mean.flatten().numpy(),
            "sem": sem.flatten().numpy(),
            "n_documents": scores.shape[0],
        }
    )
