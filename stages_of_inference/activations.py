"""Batched, filtered activation caching with bounded memory, shared between analyses.

Analyses never cache every hook of a model (a full cache of 8 x 256 tokens on
SmolLM2 is ~4.6 GB): they name the hooks they need and consume the activations one
batch at a time, under ``torch.inference_mode``.

Several analyses of the same windows (the logit lens, attention, norms, CKA) can share
one forward per batch: inside :func:`shared_forwards`, :func:`cached_activations` on
those windows runs each batch once with the union of the hooks the analyses declared,
keeps it within a memory budget, and serves every later request for that batch from
memory. The activations are those of a forward caching only the requested hooks, bit
for bit; a batch beyond the budget is simply run again by each analysis.

Example:
    >>> names = ["blocks.0.hook_resid_post", "blocks.0.attn.hook_pattern"]
    >>> with shared_forwards(model, tokens, names, budget_bytes=2**30) as shared:  # doctest: +SKIP
    ...     norms, attention = component_norms(model, tokens), previous_token_attention(model, tokens)
    >>> shared.forwards  # one per batch, where each analysis alone would have run its own  # doctest: +SKIP
    4
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

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
    names_filter = names if callable(names) else list(names)
    for batch in iter_batches(tokens.to(model_device(model)), batch_size):
        logits, cache = _forward(model, batch, names_filter, stop=False)
        yield batch, logits, cache


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
    on 256-token windows, 19 % of SmolLM2's). Inside :func:`shared_forwards` on these
    windows, the batches come from the shared forwards.

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
    names_filter = names if callable(names) else list(names)
    requested = [] if callable(names_filter) else names_filter
    shared = _SHARED.get()
    if shared is not None and (callable(names) or not shared.serves(model, tokens, requested, batch_size)):
        shared = None
    for index, batch in enumerate(iter_batches(tokens.to(model_device(model)), batch_size)):
        if shared is not None and shared.holds_batch(index, batch):
            cache = shared.activations(index, batch)
            yield batch, {name: cache[name] for name in requested if name in cache}
        else:
            yield batch, _forward(model, batch, names_filter, stop=True)[1]


UNEMBEDDING_INPUT = "unembed.hook_in"
"""The hook where :func:`cached_activations` ends each forward."""


def _forward(
    model: LoadedModel, batch: Int[Tensor, "batch pos"], names: list[str] | Callable[[str], bool], *, stop: bool
) -> tuple[Tensor, dict[str, Tensor]]:
    """One forward caching ``names``: its output (the logits, or without them with ``stop``) and the cache.

    With ``stop``, the hook that ends the forward at the unembedding is attached for
    this forward only.
    """
    stopping = [(UNEMBEDDING_INPUT, _stop)] if stop else []
    with torch.inference_mode(), model.hooks(fwd_hooks=stopping):
        output, cache = model.run_with_cache(batch, names_filter=names)
    return output, {name: cache[name] for name in cache}


class SharedForwards:
    """The activations of one forward per batch of some windows, for every analysis that reads them.

    Made by :func:`shared_forwards`. Batch ``i`` is run once, with every hook of
    :attr:`names`, when an analysis first asks for it; it is kept while the kept batches
    fit in :attr:`budget_bytes` (a batch that does not fit is served to that analysis
    only, and the next one runs it again). :meth:`keep_only` releases the hooks no
    later analysis reads.

    A request is served when it is :func:`cached_activations` on the same model, with
    the same ``batch_size``, for hooks among :attr:`names`, on these windows or on their
    first rows (a slice ``tokens[:k]`` of the same tensor: its full batches are these
    batches).
    """

    def __init__(
        self,
        model: LoadedModel,
        tokens: Int[Tensor, "batch pos"],
        names: Iterable[str],
        batch_size: int,
        budget_bytes: int,
    ) -> None:
        self.model, self.tokens, self.batch_size, self.budget_bytes = model, tokens, batch_size, budget_bytes
        self.names = set(names)
        self.forwards = 0
        """Forwards run with the union of the hooks."""
        self.served = 0
        """Batches served from memory instead of running a forward."""
        self.peak_bytes = 0
        """The most memory the kept activations held."""
        self._kept: dict[int, dict[str, Tensor]] = {}
        self._spilled: set[int] = set()

    @property
    def kept_bytes(self) -> int:
        """Memory held by the kept activations."""
        return sum(_nbytes(cache) for cache in self._kept.values())

    def serves(self, model: LoadedModel, tokens: Tensor, names: list[str], batch_size: int) -> bool:
        """Whether :func:`cached_activations` with these arguments reads from here."""
        return (
            model is self.model
            and batch_size == self.batch_size
            and set(names) <= self.names
            and _first_rows_of(tokens, self.tokens)
        )

    def holds_batch(self, index: int, batch: Tensor) -> bool:
        """Whether batch ``index`` of a served request comes from here.

        Not when it is shorter than batch ``index`` of these windows (the last batch of
        a slice), nor when it was run once and did not fit in the budget: each
        analysis then runs it with only its own hooks.
        """
        start = index * self.batch_size
        return batch.shape[0] == min(self.batch_size, self.tokens.shape[0] - start) and index not in self._spilled

    def activations(self, index: int, batch: Int[Tensor, "batch pos"]) -> dict[str, Tensor]:
        """Every hook of :attr:`names` for batch ``index``: kept, or run now (and kept if it fits)."""
        if index in self._kept:
            self.served += 1
            return self._kept[index]
        _, cache = _forward(self.model, batch, sorted(self.names), stop=True)
        self.forwards += 1
        if self.kept_bytes + _nbytes(cache) <= self.budget_bytes:
            self._kept[index] = cache
            self.peak_bytes = max(self.peak_bytes, self.kept_bytes)
        else:
            self._spilled.add(index)
        return cache

    def keep_only(self, names: Iterable[str]) -> None:
        """Serve only ``names`` from now on, releasing every other hook's activations."""
        self.names &= set(names)
        for cache in self._kept.values():
            for name in set(cache) - self.names:
                del cache[name]


_SHARED: ContextVar[SharedForwards | None] = ContextVar("shared_forwards", default=None)


@contextmanager
def shared_forwards(
    model: LoadedModel,
    tokens: Int[Tensor, "batch pos"],
    names: Iterable[str],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    budget_bytes: int,
) -> Iterator[SharedForwards]:
    """Within this block, analyses of ``tokens`` share one forward per batch (see the module docstring).

    Args:
        model: The bridge the analyses run.
        tokens: Their windows.
        names: The union of the hooks they read.
        batch_size: Their windows per forward (every request must use it to be served).
        budget_bytes: The most memory the kept activations may hold; 0 keeps none.

    Raises:
        ConfigError: A negative budget, or a hook of the unembedding (which the shared
            forwards, like :func:`cached_activations`, do not run).
    """
    names = list(names)
    if budget_bytes < 0:
        raise ConfigError(f"the shared activations' budget must be at least 0 bytes, got {budget_bytes}")
    if unembedding := [name for name in names if _in_unembedding(name)]:
        raise ConfigError(f"{unembedding} belong to the unembedding, which shared forwards do not run")
    shared = SharedForwards(model, tokens, names, batch_size, budget_bytes)
    token = _SHARED.set(shared)
    try:
        yield shared
    finally:
        _SHARED.reset(token)
        shared.keep_only([])


def _first_rows_of(tokens: Tensor, windows: Tensor) -> bool:
    """Whether ``tokens`` is ``windows`` or a slice of its first rows (same storage, same layout)."""
    return (
        tokens.device == windows.device
        and tokens.dtype == windows.dtype
        and tokens.data_ptr() == windows.data_ptr()
        and tokens.stride() == windows.stride()
        and tokens.shape[1:] == windows.shape[1:]
        and tokens.shape[0] <= windows.shape[0]
    )


def _nbytes(cache: dict[str, Tensor]) -> int:
    """Memory held by a cache's tensors, each counted once (TransformerLens caches some under two names)."""
    sizes = {(tensor.data_ptr(), tensor.numel()): tensor.numel() * tensor.element_size() for tensor in cache.values()}
    return sum(sizes.values())


def _in_unembedding(name: str) -> bool:
    return name == "hook_unembed" or name.startswith("unembed.")


def _stop(tensor: Tensor, hook: object) -> Tensor:
    raise StopAtLayerException(tensor)
