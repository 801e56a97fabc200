"""CKA estimators against their defining properties and formulas written out in numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stages_of_inference.analyses.cka import (
    MinibatchCKA,
    gram,
    hsic_biased,
    hsic_matrix,
    hsic_unbiased,
    linear_cka,
)

pytestmark = pytest.mark.oracle


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


def _unbiased_hsic_reference(K: np.ndarray, L: np.ndarray) -> float:
    """Song et al. (2012), eq. 5, written out with explicit loops over the sums."""
    n = K.shape[0]
    Kt, Lt = K.copy(), L.copy()
    np.fill_diagonal(Kt, 0.0)
    np.fill_diagonal(Lt, 0.0)
    ones = np.ones(n)
    trace = sum(Kt[i, j] * Lt[j, i] for i in range(n) for j in range(n))
    term2 = (ones @ Kt @ ones) * (ones @ Lt @ ones) / ((n - 1) * (n - 2))
    term3 = 2.0 / (n - 2) * (ones @ Kt @ Lt @ ones)
    return (trace + term2 - term3) / (n * (n - 3))


def _unbiased_cka_reference(x: np.ndarray, y: np.ndarray) -> float:
    K, L = x @ x.T, y @ y.T  # uncentred on purpose: the unbiased HSIC needs no centring
    return _unbiased_hsic_reference(K, L) / np.sqrt(_unbiased_hsic_reference(K, K) * _unbiased_hsic_reference(L, L))


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
    unbiased, biased = [], []
    for seed in range(10):
        rng = _rng(seed)
        x, y = rng.normal(size=(64, 32)), rng.normal(size=(64, 32))
        unbiased.append(linear_cka(x, y))
        biased.append(linear_cka(x, y, unbiased=False))
    assert max(abs(v) for v in unbiased) < 0.1
    assert min(biased) > 0.25  # measured 0.31-0.36 for these seeds


def test_biased_cka_equals_the_feature_space_formula() -> None:
    x, y = _related(n=15)
    assert linear_cka(x, y, unbiased=False) == pytest.approx(_biased_cka_reference(x, y), rel=1e-10)


def test_unbiased_hsic_and_cka_equal_song_et_al_written_out() -> None:
    x, y = _related(n=12, seed=3)
    K, L = x @ x.T, y @ y.T
    assert float(hsic_unbiased(torch.tensor(K), torch.tensor(L))) == pytest.approx(
        _unbiased_hsic_reference(K, L), rel=1e-10
    )
    assert linear_cka(x, y) == pytest.approx(_unbiased_cka_reference(x, y), rel=1e-10)


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
    matrix = hsic_matrix([torch.tensor(a) for a in (x, y, z)])
    sets = [x, y, z]
    for i in range(3):
        for j in range(3):
            expected = _unbiased_hsic_reference(sets[i] @ sets[i].T, sets[j] @ sets[j].T)
            assert float(matrix[i, j]) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_one_minibatch_equals_one_shot_cka() -> None:
    x, y = _related()
    accumulator = MinibatchCKA()
    accumulator.update([torch.tensor(x), torch.tensor(y)])
    assert float(accumulator.matrix()[0, 1]) == pytest.approx(linear_cka(x, y), abs=1e-12)


def test_minibatch_cka_averages_each_hsic_before_the_ratio() -> None:
    halves = [_related(n=30, seed=s) for s in (0, 1)]
    accumulator = MinibatchCKA()
    for x, y in halves:
        accumulator.update([torch.tensor(x), torch.tensor(y)])
    hsic = [
        [_unbiased_hsic_reference(a @ a.T, b @ b.T) for a, b in ((x, y), (x, x), (y, y))] for x, y in halves
    ]
    xy, xx, yy = np.mean(hsic, axis=0)
    assert float(accumulator.matrix()[0, 1]) == pytest.approx(xy / np.sqrt(xx * yy), rel=1e-9)
    ratio_of_means = np.mean([linear_cka(x, y) for x, y in halves])
    assert abs(float(accumulator.matrix()[0, 1]) - ratio_of_means) > 1e-6  # a different estimator


def test_gram_centres_columns() -> None:
    x, _ = _related(n=8)
    centred = x - x.mean(axis=0)
    np.testing.assert_allclose(gram(torch.tensor(x)).numpy(), centred @ centred.T, atol=1e-12)
