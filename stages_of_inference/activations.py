"""Batched, filtered activation caching with bounded memory, and decoding to logits.

Analyses never cache every hook of a model (a full cache of 8 x 256 tokens on
SmolLM2 is ~4.6 GB): they name the hooks they need and consume the activations one
batch at a time, under ``torch.inference_mode``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor

from stages_of_inference.errors import ConfigError
from stages_of_inference.workspace import Workspace

DEFAULT_BATCH_SIZE = 4
VOCABULARY_TILE = 1024
"""Vocabulary entries per tile of :func:`linear_by_vocabulary_tiles`: 1 MB for 256 tokens, a core's L2 cache."""


def iter_batches(
    tokens: Int[Tensor, "batch pos"], batch_size: int = DEFAULT_BATCH_SIZE
) -> Iterator[Int[Tensor, "sub_batch pos"]]:
    """Consecutive slices of ``batch_size`` sequences (the last may be shorter)."""
    if tokens.ndim != 2 or tokens.shape[0] == 0:
        raise ConfigError(f"tokens must be a non-empty [batch, pos] tensor, got {tuple(tokens.shape)}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    for start in range(0, tokens.shape[0], batch_size):
        yield tokens[start : start + batch_size]


def cached_batches(
    model: torch.nn.Module,
    tokens: Int[Tensor, "batch pos"],
    names: Sequence[str] | Callable[[str], bool],
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[tuple[Int[Tensor, "sub_batch pos"], Tensor, dict[str, Tensor]]]:
    """Run the model batch by batch, caching only the named hooks.

    Yields:
        ``(batch_tokens, logits, cache)`` per batch; ``cache`` maps each requested
        hook name to its activation (batch dimension first).

    Example:
        >>> for batch, logits, cache in cached_batches(model, tokens, ["blocks.0.hook_resid_post"]):  # doctest: +SKIP
        ...     print(cache["blocks.0.hook_resid_post"].shape)
    """
    names_filter = names if callable(names) else list(names)
    for batch in iter_batches(tokens, batch_size):
        with torch.inference_mode():
            logits, cache = model.run_with_cache(batch, names_filter=names_filter)
        yield batch, logits, {name: cache[name] for name in cache.keys()}


def unembed(
    model: torch.nn.Module,
    residual: Float[Tensor, "n d_model"],
    workspace: Workspace | None = None,
) -> Float[Tensor, "n d_vocab"]:
    """Logits from the unembedding's input, as the model's own head computes them.

    Applies the bridge's unembedding and then the architecture's logit transform
    (e.g. a Gemma 2 style final softcap), so it matches a full forward pass.

    Args:
        model: A ``TransformerBridge``.
        residual: The unembedding's input, one row per token.
        workspace: Buffers to reuse (see :class:`~stages_of_inference.workspace.Workspace`).
            When given, and the head is a plain linear layer on the CPU with no hook
            attached, the logits are written into the workspace's ``"logits"`` buffer
            by :func:`linear_by_vocabulary_tiles`, which is faster than the head and
            equal to it up to float32 rounding (on this project's machine,
            bit-identical for both embedded models). They stay valid until the
            workspace's next unembedding.
            Otherwise the head module runs.

    Example:
        >>> logits = unembed(model, final_residual)  # doctest: +SKIP
    """
    head = model.unembed
    linear = getattr(head, "original_component", None)
    if (
        workspace is not None
        and isinstance(linear, torch.nn.Linear)
        and residual.device.type == "cpu"
        and residual.dtype == linear.weight.dtype
        and not _has_hooks(head)
    ):
        logits = linear_by_vocabulary_tiles(residual, linear, workspace)
    else:
        logits = head(residual)  # type: ignore[operator]
    return model.adapter.apply_output_logits_transform(logits)  # type: ignore[union-attr, operator]


def linear_by_vocabulary_tiles(
    residual: Float[Tensor, "n d_model"], linear: torch.nn.Linear, workspace: Workspace
) -> Float[Tensor, "n d_vocab"]:
    """``linear(residual)`` computed as ``(W @ residual.T).T``, :data:`VOCABULARY_TILE` outputs at a time.

    On a CPU, the matrix product with the vocabulary as its long first dimension runs
    faster than ``residual @ W.T`` with a few hundred rows, and each tile of it is
    copied into the logits while it is still in the cache. On this project's machine,
    unembedding 256 tokens took 0.61 s instead of 0.87 s for Gemma 3 and 0.125 s
    instead of 0.165 s for SmolLM2, tiles and copies included (``docs/performance.md``).

    Example:
        >>> linear = torch.nn.Linear(4, 10)
        >>> x = torch.randn(3, 4)
        >>> torch.allclose(linear_by_vocabulary_tiles(x, linear, Workspace()), linear(x))
        True
    """
    rows, vocabulary = residual.shape[0], linear.out_features
    kind = {"dtype": residual.dtype, "device": residual.device}
    logits = workspace.buffer("logits", (rows, vocabulary), **kind)
    tiles = workspace.buffer("vocabulary_tile", (VOCABULARY_TILE * rows,), **kind)
    columns = residual.t()
    with torch.no_grad():
        for start in range(0, vocabulary, VOCABULARY_TILE):
            stop = min(start + VOCABULARY_TILE, vocabulary)
            tile = tiles[: (stop - start) * rows].view(stop - start, rows)
            torch.mm(linear.weight[start:stop], columns, out=tile)
            logits[:, start:stop].copy_(tile.t())
        if linear.bias is not None:
            logits += linear.bias
    return logits


def _has_hooks(module: torch.nn.Module) -> bool:
    """Whether any forward hook (a user's, or one of ours) is attached in ``module``."""
    return any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())
