"""Running TransformerLens's attention without guards that cannot fire on unpadded windows.

In compatibility mode, every attention bridge of TransformerLens 4 guards its softmax
against rows whose keys are all masked (``isneginf(scores).all()``, then two
``masked_fill`` over the whole ``[batch, heads, query, key]`` tensor) and scrubs NaN
from the pattern (``where(isnan(pattern), 0, pattern)``). A row is fully masked only
when padding hides every key of a query; in a causal (or sliding-window) mask every
query sees at least itself. On unpadded token windows, such as the sweep's, the guards
therefore never change a value, and the forward pass is bit-identical without them
(tested on every tiny architecture and both embedded models). They cost about a tenth
of SmolLM2's forward pass on this project's machine (``docs/performance.md``).

:func:`unguarded_attention` lifts the two guards for the duration of a ``with`` block
by shadowing the two methods on each attention bridge instance; hooks on the scores
and the pattern fire as before. Should a TransformerLens version rename the methods,
the shadowing is skipped and the guards simply run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from transformer_lens.model_bridge.generalized_components.attention import (
    AttentionBridge,
)

GUARDS = {
    "_masked_softmax": lambda scores, dtype=None: torch.softmax(scores, dim=-1, dtype=dtype),
    "_scrub_compatibility_pattern_nans": lambda pattern: pattern,
}
"""Method of ``AttentionBridge`` -> its unguarded equivalent."""


@contextmanager
def unguarded_attention(model: torch.nn.Module) -> Iterator[None]:
    """Skip the fully-masked-row and NaN guards of every attention bridge of ``model``.

    Only for inputs without padding (no ``attention_mask`` that hides every key of a
    query). The guards return later, even if the block raises.

    Example:
        >>> with unguarded_attention(model):  # doctest: +SKIP
        ...     logits = model(tokens)
    """
    shadowed: list[tuple[torch.nn.Module, str]] = []
    try:
        for module in model.modules():
            if not isinstance(module, AttentionBridge):
                continue
            for name, unguarded in GUARDS.items():
                if hasattr(type(module), name) and name not in vars(module):
                    setattr(module, name, unguarded)
                    shadowed.append((module, name))
        yield
    finally:
        for module, name in shadowed:
            delattr(module, name)

