"""Neuron moments, layer CKA and subjoiner heads on the embedded real models, at a small budget."""

from __future__ import annotations

import numpy as np
import pytest

from stages_of_inference.analyses.cka import cka_matrix
from stages_of_inference.analyses.neurons import (
    class_neurons,
    classify_neurons,
    neuron_counts,
    neuron_vocab_moments,
)
from stages_of_inference.analyses.subjoiner import subjoiner_heads
from stages_of_inference.corpus import load_corpus

pytestmark = pytest.mark.integration


def test_neuron_moments_of_the_last_layer(real_model) -> None:
    last = real_model.cfg.n_layers - 1  # one layer: Gemma's 262k vocabulary makes each layer ~15 s
    moments = neuron_vocab_moments(real_model, layers=[last])
    assert len(moments) == real_model.cfg.d_mlp
    values = moments[["mean", "variance", "skew", "kurtosis"]].to_numpy()
    assert np.isfinite(values).all()
    assert (moments["variance"] > 0).all()
    assert (moments["kurtosis"] >= moments["skew"] ** 2 + 1 - 1e-3).all()
    counts = neuron_counts(classify_neurons(moments))
    assert counts["layer"].tolist() == [last] and counts["relative_depth"].tolist() == [1.0]


def test_ing_neurons(real_model) -> None:
    top = class_neurons(real_model, lambda s: s.endswith("ing"), top_k=10)
    assert len(top) == 10 and np.isfinite(top["score"]).all() and (top["score"].abs() > 0).all()


def test_layer_cka(real_model) -> None:
    tokens = load_corpus("python-docs", real_model, n_tokens=64, seq_len=32, seed=0)
    matrix = cka_matrix(real_model, tokens, batch_size=2).to_numpy()
    n_layers = real_model.cfg.n_layers
    assert matrix.shape == (n_layers, n_layers)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-9)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-9)
    assert matrix.min() >= -0.1 and matrix.max() <= 1.05


def test_subjoiner_heads(real_model) -> None:
    ranking, details = subjoiner_heads(real_model, n_prompts=4, target_subtokens=3)
    assert len(ranking) == real_model.cfg.n_layers * real_model.cfg.n_heads
    assert len(details.targets) == 4
    best = ranking.iloc[0]
    assert best["target_attention"] > best["control_attention"]
