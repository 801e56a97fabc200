"""Unit tests of stages_of_inference.attention_guards: unguarded attention is bit-identical on unpadded windows."""

from __future__ import annotations

import pytest
import torch
from transformer_lens.model_bridge.generalized_components.attention import (
    AttentionBridge,
)

from stages_of_inference.models.attention_guards import GUARDS, unguarded_attention
from stages_of_inference.models.loading import bridge_from_hf
from tests.tiny_models import tiny_hf_model


@pytest.fixture
def compatible_model(architecture: str, tiny_tokenizer):
    """A tiny bridge in compatibility mode, where the guards run."""
    return bridge_from_hf(tiny_hf_model(architecture, vocab_size=len(tiny_tokenizer)), tiny_tokenizer,
                          compatibility_mode=True)


def _attention_bridges(model) -> list[torch.nn.Module]:
    return [module for module in model.modules() if isinstance(module, AttentionBridge)]


def test_transformer_lens_still_has_the_guarded_methods() -> None:
    """If TransformerLens renamed them, the shadowing would silently stop saving time."""
    for name in GUARDS:
        assert callable(getattr(AttentionBridge, name))


def test_unguarded_forward_is_bit_identical_and_the_guards_return(compatible_model, tiny_tokens) -> None:
    patterns: dict[str, list[torch.Tensor]] = {"guarded": [], "unguarded": []}

    def run(label: str) -> torch.Tensor:
        keep = lambda pattern, hook: patterns[label].append(pattern.clone())  # noqa: E731
        with compatible_model.hooks(fwd_hooks=[(lambda name: name.endswith("hook_pattern"), keep)]):
            return compatible_model(tiny_tokens)

    attention = _attention_bridges(compatible_model)
    with torch.inference_mode():
        guarded = run("guarded")
        with unguarded_attention(compatible_model):
            assert attention and all(set(GUARDS) <= set(vars(module)) for module in attention)
            unguarded = run("unguarded")
    assert torch.equal(guarded, unguarded)
    assert len(patterns["unguarded"]) == len(attention)  # hooks on the pattern still fire
    assert all(torch.equal(a, b) for a, b in zip(patterns["guarded"], patterns["unguarded"], strict=True))
    assert not any(set(GUARDS) & set(vars(module)) for module in attention)


def test_the_guards_return_after_an_exception(compatible_model) -> None:
    with pytest.raises(RuntimeError, match="inside"), unguarded_attention(compatible_model):
        raise RuntimeError("inside")
    assert not any(set(GUARDS) & set(vars(module)) for module in _attention_bridges(compatible_model))
