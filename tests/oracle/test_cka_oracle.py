"""CKA estimators against their defining properties and formulas written out in numpy.

The minibatch oracle is Nguyen, Raghu & Kornblith (2021) written out from the paper:
per minibatch, the unbiased HSIC of Song et al. (2012) of every pair of feature sets
(explicit loops, uncentred Gram matrices); the three HSIC terms averaged over
minibatches; the ratio taken once. It shares no code with ``analyses/cka.py``.

Tolerances: everything is float64 on bit-identical inputs, so the only difference is
the order of float64 operations. A sum of ``m`` terms is exact to ``m * eps64`` times
the sum of the terms' absolute values (Higham, ch. 3), so each oracle HSIC comes
with that bound (:func:`_unbiased_hsic_and_bound` returns it), and a CKA ratio's
relative error is at most its numerator's plus half of each denominator term's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stages_of_inference.analyses.cka import (
    MinibatchCKA,
    cka_matrix,
    gram,
    hsic_biased,
    hsic_matrix,
    hsic_unbiased,
    linear_cka,
)

pytestmark = pytest.mark.oracle

EPS64 = float(np.finfo(np.float64).eps)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _related(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng(seed)
    x = rng.normal(size=(n, 12))
    y = np.tanh(x @ rng.normal(size=(12, 7))) + 0.5 * rng.normal(size=(n, 7))
    return x, y


def _biased_cka_reference(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def _unbiased_hsic_and_bound(K: np.ndarray, L: np.ndarray) -> tuple[float, float]:
    """Song et al. (2012), eq. 5, written out with explicit loops over the sums.

    Returns the estimate and a bound on its float64 rounding error: ``2 n^2 eps64``
    times the sum of the absolute values of everything summed (each of the three
    terms is a sum of at most ``n^2`` products; the bound covers both sides' sums).
    """
    n = K.shape[0]
    Kt, Lt = K.copy(), L.copy()
    np.fill_diagonal(Kt, 0.0)
    np.fill_diagonal(Lt, 0.0)
    ones = np.ones(n)
    trace = sum(Kt[i, j] * Lt[j, i] for i in range(n) for j in range(n))
    term2 = (ones @ Kt @ ones) * (ones @ Lt @ ones) / ((n - 1) * (n - 2))
    term3 = 2.0 / (n - 2) * (ones @ Kt @ Lt @ ones)
    magnitude = (
        np.abs(Kt * Lt.T).sum()
        + np.abs(Kt).sum() * np.abs(Lt).sum() / ((n - 1) * (n - 2))
        + 2.0 / (n - 2) * (np.abs(Kt) @ np.abs(Lt)).sum()
    )
    scale = 1.0 / (n * (n - 3))
    return (trace + term2 - term3) * scale, 2 * n * n * EPS64 * magnitude * scale


def minibatch_cka_reference(minibatches: list[list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Minibatch CKA (Nguyen et al. 2021, eq. 3) of ``k`` feature sets, and its error bound.

    Args:
        minibatches: Per minibatch, ``k`` arrays ``[n_b, d_i]`` of the same ``n_b`` examples.

    Returns:
        The ``k x k`` CKA matrix: mean HSIC(i, j) / sqrt(mean HSIC(i, i) mean HSIC(j, j)),
        and a bound on each entry's float64 rounding error.
    """
    k = len(minibatches[0])
    hsic, bound = np.zeros((k, k)), np.zeros((k, k))
    for features in minibatches:
        grams = [f @ f.T for f in features]
        for i in range(k):
            for j in range(k):
                value, error = _unbiased_hsic_and_bound(grams[i], grams[j])
                hsic[i, j] += value / len(minibatches)
                bound[i, j] += error / len(minibatches)
    self_terms = np.diag(hsic)
    cka = hsic / np.sqrt(np.outer(self_terms, self_terms))
    relative = bound / np.abs(hsic) + 0.5 * (np.add.outer(np.diag(bound) / self_terms, np.diag(bound) / self_terms))
    return cka, np.abs(cka) * relative


def test_cka_of_a_representation_with_itself_is_one() -> None:
    x, _ = _related()
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x, unbiased=False) == pytest.approx(1.0, abs=1e-12)


def test_cka_is_symmetric_and_allows_different_widths() -> None:
    x, y = _related()
    assert x.shape[1] != y.shape[1]
    assert linear_cka(x, y) == pytest.approx(linear_cka(y, x), abs=1e-12)
    assert 0.2 < linear_cka(x, y) < 1.0


def test_cka_is_invariant_to_rotation_scaling_and_shift() -> None:
    x, y = _related()
    rotation, _ = np.linalg.qr(_rng(1).normal(size=(12, 12)))
    base = linear_cka(x, y)
    assert linear_cka(7.5 * x @ rotation + 3.0, y) == pytest.approx(base, abs=1e-10)
    assert linear_cka(x, -0.01 * y) == pytest.approx(base, abs=1e-10)


def test_cka_is_not_invariant_to_anisotropic_scaling() -> None:
    x, y = _related()
    stretch = np.diag(np.linspace(0.1, 10.0, 12))
    assert abs(linear_cka(x @ stretch, y) - linear_cka(x, y)) > 1e-3


def test_unbiased_cka_is_near_zero_for_independent_features_where_the_biased_one_is_not() -> None:
    """Independent Gaussian features, n = 64 examples of d = 32 features.

    Unbiased: mean 0, standard deviation about sqrt(2) / n = 0.022 (the numerator sums
    n^2 products of variance d^2, the denominator terms are about d), so |CKA| < 0.1
    is 4.5 standard deviations. Biased: about d / (n + d) = 1/3, since
    ||Y'X||^2 ~ n d^2 and ||X'X||^2 ~ d n^2 + d^2 n; 0.25 is 4 standard deviations below.
    """
    unbiased, biased = [], []
    for seed in range(10):
        rng = _rng(seed)
        x, y = rng.normal(size=(64, 32)), rng.normal(size=(64, 32))
        unbiased.append(linear_cka(x, y))
        biased.append(linear_cka(x, y, unbiased=False))
    assert max(abs(v) for v in unbiased) < 0.1
    assert min(biased) > 0.25


def test_biased_cka_equals_the_feature_space_formula() -> None:
    x, y = _related(n=15)
    assert linear_cka(x, y, unbiased=False) == pytest.approx(_biased_cka_reference(x, y), rel=1e-10)


def test_unbiased_hsic_and_cka_equal_song_et_al_written_out() -> None:
    x, y = _related(n=12, seed=3)
    K, L = x @ x.T, y @ y.T
    expected, bound = _unbiased_hsic_and_bound(K, L)
    assert abs(float(hsic_unbiased(torch.tensor(K), torch.tensor(L))) - expected) <= bound
    cka, cka_bound = minibatch_cka_reference([[x, y]])
    assert abs(linear_cka(x, y) - cka[0, 1]) <= cka_bound[0, 1]


def test_biased_hsic_equals_the_centred_trace() -> None:
    x, y = _related(n=10)
    n = 10
    H = np.eye(n) - np.ones((n, n)) / n
    expected = np.trace(x @ x.T @ H @ y @ y.T @ H) / (n - 1) ** 2
    got = float(hsic_biased(torch.tensor(x @ x.T), torch.tensor(y @ y.T)))
    assert got == pytest.approx(expected, rel=1e-10)


def test_hsic_matrix_equals_pairwise_hsic() -> None:
    x, y = _related(n=20)
    z = _rng(5).normal(size=(20, 3))
    sets = [x, y, z]
    matrix = hsic_matrix([torch.tensor(a) for a in sets])
    for i in range(3):
        for j in range(3):
            expected, bound = _unbiased_hsic_and_bound(sets[i] @ sets[i].T, sets[j] @ sets[j].T)
            assert abs(float(matrix[i, j]) - expected) <= bound, (i, j)


def test_one_minibatch_equals_one_shot_cka() -> None:
    x, y = _related()
    accumulator = MinibatchCKA()
    accumulator.update([torch.tensor(x), torch.tensor(y)])
    _, bound = minibatch_cka_reference([[x, y]])
    assert abs(float(accumulator.matrix()[0, 1]) - linear_cka(x, y)) <= 2 * bound[0, 1]


def _minibatches(sizes: tuple[int, ...]) -> list[list[np.ndarray]]:
    """Three related feature sets of widths 12, 7, 3 per minibatch, of the given sizes."""
    batches = []
    for seed, n in enumerate(sizes):
        x, y = _related(n=n, seed=seed)
        z = y[:, :3] + _rng(100 + seed).normal(size=(n, 3))
        batches.append([x, y, z])
    return batches


def test_minibatch_cka_equals_nguyen_et_al_written_out() -> None:
    batches = _minibatches((30, 17, 30))
    accumulator = MinibatchCKA()
    for features in batches:
        accumulator.update([torch.tensor(f) for f in features])
    expected, bound = minibatch_cka_reference(batches)
    got = accumulator.matrix().numpy()
    assert (np.abs(got - expected) <= bound).all(), np.abs(got - expected) / bound
    # the estimator matters: the mean of per-minibatch CKAs, and one CKA of the
    # concatenation, are other numbers, far outside the rounding bound
    ratio_of_means = np.mean([minibatch_cka_reference([features])[0] for features in batches], axis=0)
    concatenated, _ = minibatch_cka_reference([[np.concatenate(f) for f in zip(*batches, strict=True)]])
    off_diagonal = ~np.eye(3, dtype=bool)
    assert (np.abs(got - ratio_of_means)[off_diagonal] > 1e3 * bound[off_diagonal]).all()
    assert (np.abs(got - concatenated)[off_diagonal] > 1e3 * bound[off_diagonal]).all()


def _non_bos_features_by_hand(model, tokens: torch.Tensor, hooks: list[str], batch_size: int) -> list[list[np.ndarray]]:
    """Per batch of windows, each hook's activations at positions 1.. as float64 ``[n, d]``."""
    batches = []
    for start in range(0, tokens.shape[0], batch_size):
        with torch.inference_mode():
            _, cache = model.run_with_cache(tokens[start : start + batch_size])
        batches.append([cache[hook][:, 1:].reshape(-1, cache[hook].shape[-1]).double().numpy() for hook in hooks])
    return batches


@pytest.mark.parametrize("batch_size", [1, 2, 3])
def test_cka_matrix_equals_minibatch_cka_written_out(tiny_model, tiny_tokens, batch_size: int) -> None:
    """One minibatch per batch of windows, BOS dropped; accumulated, not concatenated.

    The hand-made features come from the same float32 forward on the same batches, so
    they are bit-identical to the toolkit's and only float64 rounding remains.
    """
    n_layers = tiny_model.cfg.n_layers
    hooks = [f"blocks.{layer}.hook_resid_post" for layer in range(n_layers)]
    batches = _non_bos_features_by_hand(tiny_model, tiny_tokens, hooks, batch_size)
    expected, bound = minibatch_cka_reference(batches)
    got = cka_matrix(tiny_model, tiny_tokens, batch_size=batch_size).to_numpy()
    assert (np.abs(got - expected) <= bound).all(), np.abs(got - expected) / bound
    if len(batches) > 1:  # the concatenated estimate is a different number
        concatenated, _ = minibatch_cka_reference([[np.concatenate(f) for f in zip(*batches, strict=True)]])
        off_diagonal = ~np.eye(n_layers, dtype=bool)
        assert (np.abs(got - concatenated)[off_diagonal] > 1e3 * bound[off_diagonal]).all()


def test_gram_centres_columns() -> None:
    x, _ = _related(n=8)
    centred = x - x.mean(axis=0)
    np.testing.assert_allclose(gram(torch.tensor(x)).numpy(), centred @ centred.T, atol=1e-12)
