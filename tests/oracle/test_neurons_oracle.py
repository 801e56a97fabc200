"""Neuron statistics against plain numpy computations written out independently."""

from __future__ import annotations

import numpy as np
import pytest

from stages_of_inference.analyses.neurons import class_neurons, neuron_vocab_moments

pytestmark = pytest.mark.oracle

NEURONS = [(0, 0), (1, 17), (3, 63)]


def _numpy_moments(w_out_row: np.ndarray, W_U: np.ndarray, center: bool) -> list[float]:
    """Cosines with every (optionally centred) unembedding column, then population moments.

    A zero column (tiny Gemma's padding token, uncentred) has cosine 0 by convention.
    """
    if center:
        W_U = W_U - W_U.mean(axis=1, keepdims=True)
    cosines = np.array(
        [
            0.0 if not W_U[:, t].any() else w_out_row @ W_U[:, t] / (np.linalg.norm(w_out_row) * np.linalg.norm(W_U[:, t]))
            for t in range(W_U.shape[1])
        ]
    )
    mean = cosines.mean()
    variance = ((cosines - mean) ** 2).mean()
    z = (cosines - mean) / np.sqrt(variance)
    return [mean, variance, (z**3).mean(), (z**4).mean()]


@pytest.mark.parametrize("center", [True, False])
def test_moments_equal_numpy(tiny_model, center: bool) -> None:
    W_out = tiny_model.W_out.detach().double().numpy()
    W_U = tiny_model.W_U.detach().double().numpy()
    moments = neuron_vocab_moments(tiny_model, center_unembed=center, neuron_chunk=5).set_index(["layer", "neuron"])
    for layer, neuron in NEURONS:
        expected = _numpy_moments(W_out[layer, neuron], W_U, center)
        got = moments.loc[(layer, neuron), ["mean", "variance", "skew", "kurtosis"]].to_numpy(dtype=float)
        np.testing.assert_allclose(got, expected, rtol=2e-4, atol=1e-6)


def test_class_scores_equal_the_difference_of_means(tiny_model) -> None:
    ids = list(range(40, 60))
    top = class_neurons(tiny_model, ids, top_k=5)
    W_out = tiny_model.W_out.detach().double().numpy()
    W_U = tiny_model.W_U.detach().double().numpy()
    rest = [t for t in range(W_U.shape[1]) if t not in ids]
    all_scores = []
    for layer in range(W_out.shape[0]):
        logits = W_out[layer] @ W_U  # [d_mlp, vocab]
        all_scores.append(logits[:, ids].mean(axis=1) - logits[:, rest].mean(axis=1))
    all_scores = np.stack(all_scores)
    for row in top.itertuples():
        assert row.score == pytest.approx(all_scores[row.layer, row.neuron], rel=1e-4, abs=1e-6)
    assert abs(top["score"].iloc[0]) == pytest.approx(np.abs(all_scores).max(), rel=1e-4)
