"""Unguarded attention: bit-identical on unpadded windows, really used by TransformerLens, verified at load with a fallback."""

from __future__ import annotations

import pytest
import torch
from transformer_lens.model_bridge.generalized_components.attention import (
    AttentionBridge,
)

from stages_of_inference.models import bridge_from_hf
from stages_of_inference.models.attention_guards import (
    GUARDS,
    VERIFIED,
    unguarded_attention,
)
from tests.tiny_models import tiny_hf_model


@pytest.fixture
def compatible_model(architecture: str, tiny_tokenizer):
    """A tiny bridge in compatibility mode, where the guards run."""
    return bridge_from_hf(
        tiny_hf_model(architecture, vocab_size=len(tiny_tokenizer)), tiny_tokenizer, compatibility_mode=True
    )


def _attention_bridges(model) -> list[torch.nn.Module]:
    return [module for module in model.modules() if isinstance(module, AttentionBridge)]


def test_transformer_lens_still_has_the_guarded_methods() -> None:
    """If TransformerLens renamed them, the shadowing would silently stop saving time."""
    for name in GUARDS:
        assert callable(getattr(AttentionBridge, name))


def test_unguarded_forward_is_bit_identical_and_the_guards_return(compatible_model, tiny_tokens) -> None:
    patterns: dict[str, list[torch.Tensor]] = {"guarded": [], "unguarded": []}

    def run(label: str) -> torch.Tensor:
        keep = lambda pattern, hook: patterns[label].append(pattern.clone())
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


def test_transformer_lens_calls_the_replacements_during_a_forward(
    compatible_model, tiny_tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spy: if TransformerLens stopped calling the two methods, shadowing them would save nothing."""
    calls = dict.fromkeys(GUARDS, 0)

    def counting(name: str, unguarded):
        def call(*args, **kwargs):
            calls[name] += 1
            return unguarded(*args, **kwargs)

        return call

    for name, unguarded in dict(GUARDS).items():
        monkeypatch.setitem(GUARDS, name, counting(name, unguarded))
    with torch.inference_mode(), unguarded_attention(compatible_model):
        compatible_model(tiny_tokens)
    n_layers = compatible_model.cfg.n_layers
    assert calls == dict.fromkeys(GUARDS, n_layers)


def test_every_booted_bridge_is_verified(compatible_model) -> None:
    assert getattr(compatible_model, VERIFIED) is True


@pytest.mark.parametrize(
    "replacement",
    [
        lambda scores, dtype=None: torch.softmax(scores * 1.001, dim=-1, dtype=dtype),  # a different number
        lambda scores: torch.softmax(scores, dim=-1),  # a changed signature
    ],
    ids=["differs", "raises"],
)
def test_a_replacement_that_differs_falls_back_to_the_guards(
    replacement, tiny_tokenizer, tiny_tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(GUARDS, "_masked_softmax", replacement)
    with pytest.warns(RuntimeWarning, match="guards stay on"):
        model = bridge_from_hf(tiny_hf_model("llama", vocab_size=len(tiny_tokenizer)), tiny_tokenizer)
    assert getattr(model, VERIFIED) is False
    attention = _attention_bridges(model)
    assert not any(set(GUARDS) & set(vars(module)) for module in attention)  # the check left no shadow behind
    with torch.inference_mode():
        guarded = model(tiny_tokens)
        with unguarded_attention(model):
            assert not any(set(GUARDS) & set(vars(module)) for module in attention)
            fallback = model(tiny_tokens)
    assert torch.equal(guarded, fallback)


def test_an_unverified_model_keeps_the_guards(compatible_model) -> None:
    delattr(compatible_model, VERIFIED)
    with unguarded_attention(compatible_model):
        assert not any(set(GUARDS) & set(vars(module)) for module in _attention_bridges(compatible_model))
