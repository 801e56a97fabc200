"""Neuron statistics against plain numpy computations written out independently."""

from __future__ import annotations

import numpy as np
import pytest

from stages_of_inference.analyses.neurons import class_neurons, neuron_vocab_moments
from stages_of_inference.models import bridge_from_hf
from tests.tiny_models import perturb_norm_weights, tiny_hf_model

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
            0.0
            if not W_U[:, t].any()
            else w_out_row @ W_U[:, t] / (np.linalg.norm(w_out_row) * np.linalg.norm(W_U[:, t]))
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


# The direction an MLP neuron writes, read in transformers' modeling code: Gemma3DecoderLayer
# adds post_feedforward_layernorm(mlp(x)) to the residual stream, and Gemma3RMSNorm returns
# x / rms(x) * (1 + weight); LlamaDecoderLayer adds mlp(x) itself, and LlamaRMSNorm returns
# x / rms(x) * weight. NORM_OFFSET is the constant each model's RMSNorm adds to its weight.
NORM_OFFSET = {"gemma3": 1.0, "llama": 0.0}

# Tolerances of the float32 pipeline against this float64 oracle (unit roundoff u = 6e-8).
# Each cosine sums d_model = 32 products: error <= 32u = 2e-6, typically sqrt(32) u = 3e-7.
# Skew and kurtosis standardise the cosines by their std (~0.2 here), which turns that into
# a relative error of a few 1e-6 per z^4 term; averaging over the 500-token vocabulary cancels
# most of it. Measured: <= 2e-8 on mean and variance, 3e-7 on skew, 1.5e-6 on kurtosis (~3).
# A gain ignored or misapplied moves skew and kurtosis by ~0.1 (median), mean by ~4e-4.
MOMENT_RTOL, MOMENT_ATOL = 1e-5, 1e-6
# A class score is one 32-term dot product with a difference of two vocabulary means: measured
# relative error <= 2e-7 on the top scores, which are far from 0.
SCORE_RTOL = 1e-5


def _hf_output_directions(hf_model, architecture: str) -> np.ndarray:
    """``[layer, neuron, d_model]``: each down-projection column times the gain of the norm after the MLP, if any."""
    directions = []
    for layer in hf_model.model.layers:
        W_out = layer.mlp.down_proj.weight.detach().double().numpy().T  # [d_mlp, d_model]
        post_norm = getattr(layer, "post_feedforward_layernorm", None)
        gain = 1.0 if post_norm is None else NORM_OFFSET[architecture] + post_norm.weight.detach().double().numpy()
        directions.append(W_out * gain)
    return np.stack(directions)


def _hf_unembed(hf_model, architecture: str, compatibility_mode: bool) -> np.ndarray:
    """``[d_model, vocab]``: the LM head, with the final norm's gain folded in as compatibility mode does."""
    W_U = hf_model.lm_head.weight.detach().double().numpy().T
    if not compatibility_mode:
        return W_U
    final_gain = NORM_OFFSET[architecture] + hf_model.model.norm.weight.detach().double().numpy()
    return W_U * final_gain[:, None]


def _numpy_moments_of_all(directions: np.ndarray, W_U: np.ndarray) -> np.ndarray:
    """``[neurons, 4]``: moments of the cosines with every centred ``W_U`` column (a zero column: cosine 0)."""
    W_U = W_U - W_U.mean(axis=1, keepdims=True)
    column_norms = np.linalg.norm(W_U, axis=0)
    unit_columns = np.divide(W_U, column_norms, out=np.zeros_like(W_U), where=column_norms > 0)
    cosines = directions / np.linalg.norm(directions, axis=1, keepdims=True) @ unit_columns
    mean = cosines.mean(axis=1, keepdims=True)
    variance = ((cosines - mean) ** 2).mean(axis=1, keepdims=True)
    z = (cosines - mean) / np.sqrt(variance)
    return np.concatenate(
        [mean, variance, (z**3).mean(axis=1, keepdims=True), (z**4).mean(axis=1, keepdims=True)], axis=1
    )


@pytest.fixture(
    params=[("gemma3", False), ("gemma3", True), ("llama", False), ("llama", True)],
    ids=["gemma3-raw", "gemma3-compatibility", "llama-raw", "llama-compatibility"],
)
def bridge_and_reference(request, tiny_tokenizer):
    """A tiny bridge with varied norm gains, and an identical HF model built separately to read weights from.

    The bridge edits the HF model it wraps (compatibility mode folds norms into it), so the
    reference is a second copy from the same seeds.
    """
    architecture, compatibility_mode = request.param
    copies = [
        perturb_norm_weights(tiny_hf_model(architecture, vocab_size=len(tiny_tokenizer)), seed=1) for _ in range(2)
    ]
    bridge = bridge_from_hf(copies[0], tiny_tokenizer, compatibility_mode=compatibility_mode)
    return bridge, copies[1], architecture, compatibility_mode


def test_moments_use_the_direction_the_hf_model_writes(bridge_and_reference) -> None:
    bridge, reference, architecture, compatibility_mode = bridge_and_reference
    directions = _hf_output_directions(reference, architecture)
    W_U = _hf_unembed(reference, architecture, compatibility_mode)
    expected = _numpy_moments_of_all(directions.reshape(-1, directions.shape[-1]), W_U)
    got = neuron_vocab_moments(bridge)[["mean", "variance", "skew", "kurtosis"]].to_numpy(dtype=float)
    np.testing.assert_allclose(got, expected, rtol=MOMENT_RTOL, atol=MOMENT_ATOL)


def test_class_scores_use_the_direction_the_hf_model_writes(bridge_and_reference) -> None:
    bridge, reference, architecture, compatibility_mode = bridge_and_reference
    ids = list(range(40, 60))
    W_U = _hf_unembed(reference, architecture, compatibility_mode)
    in_class = np.isin(np.arange(W_U.shape[1]), ids)
    class_direction = W_U[:, in_class].mean(axis=1) - W_U[:, ~in_class].mean(axis=1)
    expected = _hf_output_directions(reference, architecture) @ class_direction  # [layer, neuron]
    top = class_neurons(bridge, ids, top_k=10)
    np.testing.assert_allclose(top["score"], expected[top["layer"], top["neuron"]], rtol=SCORE_RTOL)
    assert abs(top["score"].iloc[0]) == pytest.approx(np.abs(expected).max(), rel=SCORE_RTOL)
