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
from transformer_lens.model_bridge.exceptions import StopAtLayerException

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

    Analyses that do not read the logits use :func:`cached_activations`, which skips
    the unembedding.

    Yields:
        ``(batch_tokens, logits, cache)`` per batch; ``cache`` maps each requested
        hook name to its activation (batch dimension first).

    Example:
        >>> for batch, logits, cache in cached_batches(model, tokens, ["blocks.0.hook_resid_post"]):  # doctest: +SKIP
        ...     print(cache["blocks.0.hook_resid_post"].shape)
    """
    yield from _cached_forwards(model, tokens, names, batch_size, stop=False)


def cached_activations(
    model: LoadedModel,
    tokens: Int[Tensor, "batch pos"],
    names: Sequence[str] | Callable[[str], bool],
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[tuple[Int[Tensor, "sub_batch pos"], dict[str, Tensor]]]:
    """Like :func:`cached_batches`, without the logits: each forward stops at the unembedding.

    The forward ends where the unembedding's input arrives (the final norm has run,
    so ``ln_final`` hooks can be cached), through TransformerLens's own early stop
    (``StopAtLayerException``, which ``run_with_cache`` catches and keeps the cache
    of). The activations are those of the full forward, bit for bit; the unembedding
    is skipped, which is most of a forward on a large vocabulary (63 % of Gemma 3's
    on 256-token windows, 19 % of SmolLM2's).

    Raises:
        ConfigError: A named hook belongs to the unembedding, which does not run.

    Example:
        >>> for batch, cache in cached_activations(model, tokens, ["blocks.0.attn.hook_pattern"]):  # doctest: +SKIP
        ...     print(cache["blocks.0.attn.hook_pattern"].shape)
    """
    if not callable(names) and (unembedding := [name for name in names if _in_unembedding(name)]):
        raise ConfigError(
            f"{unembedding} belong to the unembedding, which cached_activations skips; use cached_batches"
        )
    for batch, _, cache in _cached_forwards(model, tokens, names, batch_size, stop=True):
        yield batch, cache


UNEMBEDDING_INPUT = "unembed.hook_in"
"""The hook where :func:`cached_activations` ends each forward."""


def _cached_forwards(
    model: LoadedModel,
    tokens: Int[Tensor, "batch pos"],
    names: Sequence[str] | Callable[[str], bool],
    batch_size: int,
    *,
    stop: bool,
) -> Iterator[tuple[Int[Tensor, "sub_batch pos"], Tensor, dict[str, Tensor]]]:
    """The forwards of both: with ``stop``, the stopping hook is attached for each forward only."""
    names_filter = names if callable(names) else list(names)
    device = model_device(model)
    stopping = [(UNEMBEDDING_INPUT, _stop)] if stop else []
    for batch in iter_batches(tokens.to(device), batch_size):
        with torch.inference_mode(), model.hooks(fwd_hooks=stopping):
            output, cache = model.run_with_cache(batch, names_filter=names_filter)
        yield batch, output, {name: cache[name] for name in cache}


def _in_unembedding(name: str) -> bool:
    return name == "hook_unembed" or name.startswith("unembed.")


def _stop(tensor: Tensor, hook: object) -> Tensor:
    raise StopAtLayerException(tensor)
