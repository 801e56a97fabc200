"""Integration tests of the logit lens, previous-token attention and component norms on the real models.

Budgets are tiny (two windows per model) so the file runs in about a minute; each test
asserts only what must hold on any sane pretrained model, plus a few facts checked on
these two models (noted where they appear).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformer_lens.model_bridge import TransformerBridge

from stages_of_inference.analyses.attention import previous_token_attention
from stages_of_inference.analyses.logit_lens import (
    METRICS,
    logit_lens,
    logit_lens_top_tokens,
)
from stages_of_inference.analyses.norms import COMPONENTS, component_norms
from stages_of_inference.corpus import load_corpus
from stages_of_inference.tokens import bos_token_id

pytestmark = pytest.mark.integration

WINDOW = {"smollm2-135m": 64, "gemma-3-270m": 32, "qwen2.5-coder-0.5b": 32}
"""Tokens per window; Gemma's 262k and Qwen's 152k vocabularies make each lens point costly."""


def two_windows(model: TransformerBridge) -> torch.Tensor:
    name = model.soi_source.name
    return load_corpus("python-docs", model, n_tokens=2 * WINDOW[name], seq_len=WINDOW[name])


def test_logit_lens_last_point_is_the_output_and_metrics_are_sane(real_model) -> None:
    table = logit_lens(real_model, two_windows(real_model))
    n_layers = real_model.cfg.n_layers
    assert len(table) == n_layers + 1
    assert np.isfinite(table[list(METRICS)].to_numpy()).all()
    last = table.iloc[-1]
    assert abs(last.kl_to_final) < 1e-4 and last.agreement_with_final == 1.0
    assert (table.kl_to_final.iloc[:-1] > 1e-3).all()  # no earlier point is already the output
    assert table.entropy_bits.between(0, math.log2(real_model.cfg.d_vocab)).all()
    assert last.accuracy > 0.1  # a pretrained model predicts English text far above chance


def test_top_tokens_of_the_last_point_are_the_greedy_prediction(real_model) -> None:
    prompt = "The capital of France is"
    top = logit_lens_top_tokens(real_model, prompt)
    final = top[top.point == top.point.max()].sort_values("position")
    ids = real_model.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    tokens = torch.tensor([[bos_token_id(real_model.tokenizer), *ids]])
    with torch.inference_mode():
        greedy = real_model(tokens)[0, -1].argmax().item()
    assert final.top_token.iloc[-1] == real_model.tokenizer.decode([greedy])


def test_previous_token_attention_is_a_probability(real_model) -> None:
    table = previous_token_attention(real_model, two_windows(real_model), k=5)
    assert len(table) == real_model.cfg.n_layers
    assert table["mean"].between(0, 1).all() and (table["sem"] >= 0).all()
    assert (table.n_documents == 2).all()


def test_early_smollm2_layers_attend_locally_more_than_the_average_layer(smollm2) -> None:
    """Detokenization evidence (paper section 4); measured here: ~0.063 vs ~0.043."""
    table = previous_token_attention(smollm2, two_windows(smollm2), k=5)
    early = table[table.relative_depth <= 0.1]["mean"].mean()
    assert early > table["mean"].mean()


def test_component_norms_are_positive_and_finite(real_model) -> None:
    table = component_norms(real_model, two_windows(real_model))
    values = table[list(COMPONENTS)].to_numpy()
    assert len(table) == real_model.cfg.n_layers
    assert np.isfinite(values).all() and (values > 0).all()
    # The residual stream grows across depth on both models (the paper's late norm growth).
    assert table.resid_post_norm.iloc[-1] > table.resid_post_norm.iloc[0]
