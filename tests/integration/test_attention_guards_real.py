"""Unguarded attention on both embedded models: the same logits, bit for bit, as the guarded forward."""

from __future__ import annotations

import pytest
import torch

from stages_of_inference.corpus import load_corpus
from stages_of_inference.models.attention_guards import unguarded_attention

pytestmark = pytest.mark.integration


def test_unguarded_attention_changes_no_logit(real_model) -> None:
    tokens = load_corpus("embedded", real_model, n_tokens=2 * 64, seq_len=64)
    with torch.inference_mode():
        guarded = real_model(tokens)
        with unguarded_attention(real_model):
            unguarded = real_model(tokens)
    assert torch.equal(guarded, unguarded)
