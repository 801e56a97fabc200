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
and the pattern fire as before. The two methods are private to TransformerLens, so
every bridge the toolkit boots is checked once (:func:`verify_unguarded_attention`):
one forward of a few tokens with and without the guards must agree bit for bit, or
the guards stay on for that model, with a warning. Should a TransformerLens version
rename the methods, the shadowing is skipped and the guards simply run.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from transformer_lens.model_bridge import TransformerBridge
from transformer_lens.model_bridge.generalized_components.attention import (
    AttentionBridge,
)


def _softmax(scores: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    return torch.softmax(scores, dim=-1, dtype=dtype)


def _unchanged(pattern: torch.Tensor) -> torch.Tensor:
    return pattern


GUARDS = {"_masked_softmax": _softmax, "_scrub_compatibility_pattern_nans": _unchanged}
"""Method of ``AttentionBridge`` -> its unguarded equivalent."""

VERIFIED = "soi_unguarded_attention_verified"
"""Attribute of a model: True once :func:`verify_unguarded_attention` found both paths equal."""
_PROBE_SHAPE = (2, 6)
"""Batch and length of the verification forward: enough to cross the tiny models' sliding window."""


@contextmanager
def unguarded_attention(model: torch.nn.Module) -> Iterator[None]:
    """Skip the fully-masked-row and NaN guards of every attention bridge of ``model``.

    Only for inputs without padding (no ``attention_mask`` that hides every key of a
    query). The guards stay on for a model that :func:`verify_unguarded_attention` has
    not found equal to TransformerLens's own path (every bridge the toolkit boots is
    checked). The guards return later, even if the block raises.

    Example:
        >>> with unguarded_attention(model):  # doctest: +SKIP
        ...     logits = model(tokens)
    """
    shadowed: list[tuple[torch.nn.Module, str]] = []
    try:
        if getattr(model, VERIFIED, False):
            shadowed = _shadow_guards(model)
        yield
    finally:
        for module, name in shadowed:
            delattr(module, name)


def verify_unguarded_attention(model: TransformerBridge) -> bool:
    """Check on one tiny forward that unguarded attention equals TransformerLens's own path.

    Runs a ``[2, 6]`` batch of token ids through ``model`` with the guards and without
    them and compares the logits exactly. The result is stored on the model (see
    :data:`VERIFIED`), where :func:`unguarded_attention` reads it; on a difference, or
    an error in the unguarded forward, a ``RuntimeWarning`` says that the guards stay on.

    Returns:
        Whether the unguarded path may be used on this model.
    """
    first = next(model.parameters())
    tokens = torch.arange(_PROBE_SHAPE[0] * _PROBE_SHAPE[1], device=first.device).reshape(_PROBE_SHAPE)
    tokens = tokens.remainder(model.cfg.d_vocab)
    with torch.inference_mode():
        guarded = model(tokens)
        shadowed = _shadow_guards(model)
        try:
            unguarded = model(tokens)
            difference = (guarded - unguarded).abs().max().item()
            problem = None if torch.equal(guarded, unguarded) else f"the logits differ by up to {difference:.3g}"
        except Exception as error:  # a changed private signature fails here, not in the sweep
            problem = f"it raised {type(error).__name__}: {error}"
        finally:
            for module, name in shadowed:
                delattr(module, name)
    if problem is not None:
        warnings.warn(
            f"attention without TransformerLens's padding guards does not match its own path on this model "
            f"({problem}); the guards stay on: the same numbers, about 10% slower. "
            "Check the installed transformer-lens against constraints.txt",
            RuntimeWarning,
            stacklevel=2,
        )
    setattr(model, VERIFIED, problem is None)
    return problem is None


def _shadow_guards(model: torch.nn.Module) -> list[tuple[torch.nn.Module, str]]:
    """Shadow the guarded methods on every attention bridge instance; return what was shadowed."""
    shadowed: list[tuple[torch.nn.Module, str]] = []
    for module in model.modules():
        if not isinstance(module, AttentionBridge):
            continue
        for name, unguarded in GUARDS.items():
            if hasattr(type(module), name) and name not in vars(module):
                setattr(module, name, unguarded)
                shadowed.append((module, name))
    return shadowed
