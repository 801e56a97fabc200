"""Unguarded attention on both embedded models: the same logits, bit for bit, as the guarded forward."""

from __future__ import annotations

import pytest
import torch

from stages_of_inference.corpus import load_corpus
from stages_of_inference.models.attention_guards import GUARDS, VERIFIED, unguarded_attention

pytestmark = pytest.mark.integration


def test_unguarded_attention_changes_no_logit(real_model) -> None:
    tokens = load_corpus("python-docs", real_model, n_tokens=2 * 64, seq_len=64)
    with torch.inference_mode():
        guarded = real_model(tokens)
        with unguarded_attention(real_model):
            unguarded = real_model(tokens)
    assert torch.equal(guarded, unguarded)


def test_the_load_verified_unguarded_attention_and_transformer_lens_calls_it(
    real_model, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep's fast path is on for both embedded models, and TransformerLens really runs the replacements."""
    assert getattr(real_model, VERIFIED) is True
    calls = dict.fromkeys(GUARDS, 0)
    for name, unguarded in dict(GUARDS).items():

        def counting(*args, _name=name, _unguarded=unguarded, **kwargs):
            calls[_name] += 1
            return _unguarded(*args, **kwargs)

        monkeypatch.setitem(GUARDS, name, counting)
    tokens = load_corpus("python-docs", real_model, n_tokens=64, seq_len=64)
    with torch.inference_mode(), unguarded_attention(real_model):
        real_model(tokens)
    assert calls == dict.fromkeys(GUARDS, real_model.cfg.n_layers)
