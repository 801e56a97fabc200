"""Per-sequence metric sums -> token-weighted means with bootstrap confidence intervals.

Resampling is over whole sequences (windows), the unit that is independent: tokens of
one window share their context. The same inputs and seed give the same intervals.
"""

from __future__ import annotations

import numpy as np

SUMMARY_METRICS = {
    "kl": "kl",
    "top1_agreement": "agreement",
    "accuracy": "correct",
    "baseline_accuracy": "baseline_correct",
    "loss": "loss",
    "baseline_loss": "baseline_loss",
    "entropy_bits": "entropy_bits",
    "baseline_entropy_bits": "baseline_entropy_bits",
}
"""Summary column -> the per-token metric it averages."""


def summarize(
    sums: dict[str, np.ndarray],
    n_tokens: np.ndarray,
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Token-weighted means of per-sequence sums, with bootstrap confidence intervals.

    Args:
        sums: Per-token metric name -> per-sequence sums ``[n_sequences]``.
        n_tokens: Scored tokens per sequence ``[n_sequences]``.
        n_bootstrap: Resamples of whole sequences (0 disables the intervals).
        confidence: Coverage of the percentile intervals.
        seed: Seed of the resampling (fixed: the same inputs give the same intervals).

    Returns:
        For each summary column (:data:`SUMMARY_METRICS` plus ``relative_accuracy`` =
        accuracy / baseline accuracy): its mean, and ``<column>_ci_low`` /
        ``<column>_ci_high``; also ``n_tokens`` and ``n_sequences``.

    Example:
        >>> from stages_of_inference.scoring.metrics import TOKEN_METRICS
        >>> ones = np.ones(4)
        >>> s = summarize({m: ones for m in TOKEN_METRICS}, ones, n_bootstrap=10)
        >>> s["relative_accuracy"], s["kl_ci_low"]
        (1.0, 1.0)
    """
    totals = float(n_tokens.sum())
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(n_tokens), size=(n_bootstrap, len(n_tokens))) if n_bootstrap else None
    alpha = (1 - confidence) / 2
    summary: dict[str, float] = {"n_tokens": totals, "n_sequences": float(len(n_tokens))}

    def add(column: str, point: float, resampled: np.ndarray | None) -> None:
        summary[column] = point
        low, high = np.quantile(resampled, [alpha, 1 - alpha]) if resampled is not None else (np.nan, np.nan)
        summary[f"{column}_ci_low"], summary[f"{column}_ci_high"] = float(low), float(high)

    token_weights = n_tokens[samples].sum(1) if samples is not None else None
    means: dict[str, np.ndarray | None] = {}
    for column, metric in SUMMARY_METRICS.items():
        means[column] = sums[metric][samples].sum(1) / token_weights if samples is not None else None
        add(column, float(sums[metric].sum()) / totals, means[column])
    ratio = _safe_ratio(means["accuracy"], means["baseline_accuracy"])
    add("relative_accuracy", float(_safe_ratio(summary["accuracy"], summary["baseline_accuracy"])), ratio)
    return summary


def _safe_ratio(numerator, denominator):
    if numerator is None or denominator is None:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.asarray(denominator) > 0, np.asarray(numerator) / np.asarray(denominator), np.nan)
