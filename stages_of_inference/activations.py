"""Batched, filtered activation caching with bounded memory, and decoding to logits.

Analyses never cache every hook of a model (a full cache of 8 x 256 tokens on
SmolLM2 is ~4.6 GB): they name the hooks they need and consume the activations one
batch at a time, under ``torch.inference_mode``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from jaxtyping import Int
from torch import Tensor

from stages_of_inference.devices import model_device
from stages_of_inference.errors import ConfigError
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.tokens import check_windows

DEFAULT_BATCH_SIZE = 4


def iter_batches(
    tokens: Int[Tensor, "batch pos"], batch_size: int = DEFAULT_BATCH_SIZE
) -> Iterator[Int[Tensor, "sub_batch pos"]]:
    """Consecutive slices of ``batch_size`` sequences (the last may be shorter)."""
    check_windows(tokens, what="iter_batches", min_len=1)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    for start in range(0, tokens.shape[0], batch_size):
        yield tokens[start : start + batch_size]


def cached_batches(
    model: LoadedModel,
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
    device = model_device(model)
    for batch in iter_batches(tokens.to(device), batch_size):
        with torch.inference_mode():
            logits, cache = model.run_with_cache(batch, names_filter=names_filter)
        yield batch, logits, {name: cache[name] for name in cache}
