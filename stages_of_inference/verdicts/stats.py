"""The statistics behind the verdicts: the bootstrap over sequences and Bonferroni's correction.

One home for both. :func:`bootstrap_sequences` resamples whole sequences (the unit that
is independent: tokens of one window share their context) *jointly* for every quantity
of one model, so any comparison between two interventions of that model is paired: both
are averaged over the same resampled sequences. Across models the resamples are drawn
independently (:func:`mean_difference`), as the models saw different draws.

The correction is Bonferroni's over a family of claims (the claims of one model, or the
cross-model claims): with ``k`` claims each is tested at ``alpha / k``, i.e. each
interval has coverage ``1 - alpha / k`` (:func:`bonferroni`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from jaxtyping import Float

from stages_of_inference.errors import ConfigError

ALPHA = 0.05
"""The family-wise error rate of each family of claims."""
N_BOOTSTRAP = 4000
"""Resamples of the sequences; the interval's tails at ``alpha / k`` need a few thousand."""
MIN_SEQUENCES = 10
"""Fewer sequences (or documents) than this make a bootstrap or a sem meaningless: the verdict is inconclusive."""

Statistic = Callable[[Float[np.ndarray, "draw quantity"]], Float[np.ndarray, " draw"]]
"""Maps token-weighted means of each quantity (one row per draw) to the compared effect."""


@dataclass(frozen=True)
class Bootstrap:
    """A statistic on the full sample and on each resample of the sequences."""

    estimate: float
    draws: Float[np.ndarray, " draw"]

    def interval(self, alpha: float) -> tuple[float, float]:
        """The two-sided percentile interval of coverage ``1 - alpha`` (NaN draws left out)."""
        return percentile_interval(self.draws, alpha)


def bonferroni(alpha: float, n_claims: int) -> float:
    """The per-claim level that keeps the family-wise error rate of ``n_claims`` claims at ``alpha``.

    Example:
        >>> bonferroni(0.05, 10)
        0.005

    Raises:
        ConfigError: ``n_claims`` is below 1.
    """
    if n_claims < 1:
        raise ConfigError(f"a family of claims needs at least one claim, got {n_claims}; pass a positive count")
    return alpha / n_claims


def bootstrap_sequences(
    sums: Float[np.ndarray, "quantity sequence"],
    n_tokens: Float[np.ndarray, " sequence"],
    statistic: Statistic,
    *,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
) -> Bootstrap:
    """Paired bootstrap over sequences of a statistic of token-weighted means.

    Each resample draws sequences with replacement once and applies the draw to every
    quantity (row of ``sums``), so quantities compared by ``statistic`` stay paired.

    Args:
        sums: Per-sequence sums of each quantity (e.g. the KL of one intervention).
        n_tokens: Scored tokens of each sequence (the weights of the means).
        statistic: Means ``[draw, quantity]`` -> the effect ``[draw]``.
        n_bootstrap: Resamples.
        seed: Seed of the resampling (the same inputs and seed give the same draws).

    Example:
        >>> sums = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
        >>> result = bootstrap_sequences(sums, np.ones(3), lambda m: m[:, 0] - m[:, 1], n_bootstrap=50)
        >>> result.estimate, result.interval(0.05)
        (0.0, (0.0, 0.0))
    """
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, sums.shape[1], size=(n_bootstrap, sums.shape[1]))
    estimate = statistic((sums.sum(1) / n_tokens.sum())[None, :])[0]
    means = sums[:, samples].sum(2) / n_tokens[samples].sum(1)  # [quantity, draw]
    return Bootstrap(float(estimate), np.asarray(statistic(means.T), dtype=np.float64))


def percentile_interval(draws: Float[np.ndarray, " draw"], alpha: float) -> tuple[float, float]:
    """The ``alpha / 2`` and ``1 - alpha / 2`` quantiles of the finite draws (NaN when there are none).

    Example:
        >>> percentile_interval(np.arange(101.0), 0.1)
        (5.0, 95.0)
    """
    finite = draws[np.isfinite(draws)]
    if not finite.size:
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def normal_interval(estimate: float, sd: float, alpha: float) -> tuple[float, float]:
    """The two-sided normal interval ``estimate ± z(1 - alpha / 2) sd``.

    Example:
        >>> [round(x, 3) for x in normal_interval(0.0, 1.0, 0.05)]
        [-1.96, 1.96]
    """
    z = NormalDist().inv_cdf(1 - alpha / 2)
    return estimate - z * sd, estimate + z * sd


def mean_difference(pairs: list[tuple[Bootstrap, Bootstrap]], alpha: float) -> tuple[float, float, float]:
    """Estimate and interval of the mean over pairs of ``first - second``, each from its own bootstrap.

    The bootstraps of different models are independent (unpaired across models); the
    draws of one model are shared by every pair it is in.

    Example:
        >>> a, b = Bootstrap(2.0, np.full(10, 2.0)), Bootstrap(1.0, np.full(10, 1.0))
        >>> mean_difference([(a, b)], 0.05)
        (1.0, 1.0, 1.0)
    """
    estimate = float(np.mean([first.estimate - second.estimate for first, second in pairs]))
    draws = np.mean([first.draws - second.draws for first, second in pairs], axis=0)
    low, high = percentile_interval(draws, alpha)
    return estimate, low, high


def bootstrap_neuron_counts(
    counts: Float[np.ndarray, "layer kind"], n_bootstrap: int = N_BOOTSTRAP, seed: int = 0
) -> Float[np.ndarray, "draw layer kind"]:
    """Bootstrap over neurons: each layer's neurons resampled with replacement, recounted by kind.

    Resampling a layer's ``d`` neurons and counting each kind is one multinomial draw
    with the layer's observed shares, so the kinds of one layer are resampled jointly.

    Args:
        counts: Neurons of each kind per layer (e.g. prediction, suppression, other).

    Example:
        >>> draws = bootstrap_neuron_counts(np.array([[0.0, 4.0], [2.0, 2.0]]), n_bootstrap=5)
        >>> draws.shape, bool((draws[:, 0, 0] == 0).all()), bool((draws.sum(2) == 4).all())
        ((5, 2, 2), True, True)
    """
    sizes = counts.sum(1).astype(np.int64)
    shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    rng = np.random.default_rng(seed)
    return rng.multinomial(sizes, shares, size=(n_bootstrap, counts.shape[0])).astype(np.float64)
