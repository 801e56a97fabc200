"""The bootstrap over sequences is paired; Bonferroni divides alpha by the number of claims."""

from __future__ import annotations

import numpy as np
import pytest

from stages_of_inference.errors import ConfigError
from stages_of_inference.verdicts.stats import (
    bonferroni,
    bootstrap_neuron_counts,
    bootstrap_sequences,
    mean_difference,
    normal_interval,
)


@pytest.mark.parametrize("n_claims", [1, 2, 9])
def test_bonferroni_tests_each_of_k_claims_at_alpha_over_k(n_claims: int) -> None:
    assert bonferroni(0.05, n_claims) == pytest.approx(0.05 / n_claims)


def test_a_family_without_claims_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="at least one claim"):
        bonferroni(0.05, 0)


def test_a_difference_significant_only_when_paired() -> None:
    """Two quantities sharing a large per-sequence level, one higher by a small constant."""
    level = np.random.default_rng(0).normal(10.0, 5.0, size=50)
    sums = np.vstack([level + 0.1, level])
    tokens = np.ones(50)
    paired = bootstrap_sequences(sums, tokens, lambda m: m[:, 0] - m[:, 1])
    low, high = paired.interval(0.05)
    assert paired.estimate == pytest.approx(0.1)
    assert 0 < low <= high
    first = bootstrap_sequences(sums[:1], tokens, lambda m: m[:, 0], seed=1)
    second = bootstrap_sequences(sums[1:], tokens, lambda m: m[:, 0], seed=2)
    effect, low, high = mean_difference([(first, second)], 0.05)
    assert effect == pytest.approx(0.1)
    assert low < 0 < high


def test_the_bootstrap_weights_sequences_by_their_tokens() -> None:
    result = bootstrap_sequences(np.array([[10.0, 0.0]]), np.array([10.0, 30.0]), lambda m: m[:, 0], n_bootstrap=10)
    assert result.estimate == pytest.approx(0.25)


def test_the_neuron_bootstrap_keeps_each_layers_size_and_empty_kinds() -> None:
    counts = np.array([[0.0, 5.0, 95.0], [30.0, 0.0, 70.0]])
    draws = bootstrap_neuron_counts(counts, n_bootstrap=200)
    assert (draws.sum(2) == 100).all()
    assert (draws[:, 0, 0] == 0).all() and (draws[:, 1, 1] == 0).all()
    assert draws[:, 1, 0].mean() == pytest.approx(30, abs=2)


def test_the_normal_interval_narrows_as_alpha_grows() -> None:
    wide, narrow = normal_interval(0.0, 1.0, 0.01), normal_interval(0.0, 1.0, 0.1)
    assert wide[0] < narrow[0] < 0 < narrow[1] < wide[1]
