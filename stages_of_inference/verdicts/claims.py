"""The paper's claims, one function per claim: ``(evidence, alpha) -> Verdict``.

``alpha`` is the per-claim level, already corrected for the number of claims
(:func:`~stages_of_inference.verdicts.stats.bonferroni`). Each function states in its
verdict's ``test`` the operationalisation and the test it used; ``docs/verdicts.md``
gives the reasons. Claims on the robustness sweep use the paired bootstrap over
sequences; the logit lens, attention and neuron tables hold no per-sequence values, so
their claims use the step test of :mod:`stages_of_inference.stages`, a normal interval
from the stated standard errors, or a bootstrap over neurons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd

from stages_of_inference.layers import relative_depth
from stages_of_inference.stages import PAPER_RETENTION, PAPER_TOLERANCE, detect_stages, jitter_sd, middle_median
from stages_of_inference.verdicts.evidence import (
    ModelEvidence,
    interventions_of,
    sequence_sums,
    sequence_tokens,
)
from stages_of_inference.verdicts.stats import (
    MIN_SEQUENCES,
    Bootstrap,
    Statistic,
    bootstrap_neuron_counts,
    bootstrap_sequences,
    normal_interval,
)
from stages_of_inference.verdicts.verdict import Verdict, above, untested, within

LATE = 0.5
"""Relative depth from which a fall counts as late: the paper's prediction ensembling starts near 50 %."""
PREDICTION_PEAK = (0.85 - PAPER_TOLERANCE, 1.0)
"""Window of relative depth for "prediction neurons peak near 85 %" (the stage tolerance either side)."""
LAST_LAYERS = 0.85
"""Relative depth from which layers count as "the last layers" (the paper's residual sharpening)."""
EARLY = 0.2
"""Relative depth up to which layers count as early (the paper's detokenization, first ~20 %)."""

Claim = Callable[[ModelEvidence, float], Verdict]
Decision = Callable[[float, float], str]


# ---------------------------------------------------------------- the robustness sweep (per sequence)


def _sequences(evidence: ModelEvidence, claim: str, test: str, alpha: float) -> pd.DataFrame | Verdict:
    """The sweep's per-sequence rows, or an inconclusive verdict saying why they cannot be bootstrapped."""
    rows = evidence.per_sequence
    if rows is None:
        return untested(claim, evidence.model, test, alpha, "robustness", evidence.per_sequence_missing)
    n = len(sequence_tokens(rows))
    if n < MIN_SEQUENCES:
        why = (
            f"{n} sequences; a bootstrap needs at least {MIN_SEQUENCES} (run with more --tokens or a shorter --seq-len)"
        )
        return untested(claim, evidence.model, test, alpha, "robustness", why)
    return rows


def _from_bootstrap(
    evidence: ModelEvidence, claim: str, test: str, alpha: float, result: Bootstrap, decide: Decision
) -> Verdict:
    low, high = result.interval(alpha)
    n = len(sequence_tokens(evidence.per_sequence)) if evidence.per_sequence is not None else 0
    return Verdict(claim, evidence.model, decide(low, high), result.estimate, low, high, test, alpha, n, "robustness")


def retention_bootstrap(rows: pd.DataFrame, *, seed: int = 0) -> Bootstrap:
    """Mean over every deletion and swap of the accuracy retained, bootstrapped over sequences (paired).

    Accuracy retained is the intervention's top-1 accuracy on the true next token over the
    original model's (``relative_accuracy`` of the sweep table), both from the same resample.
    """
    interventions = interventions_of(rows, "delete") + interventions_of(rows, "swap")
    correct = sequence_sums(rows, interventions, "correct")
    baseline = sequence_sums(rows, interventions[:1], "baseline_correct")
    statistic: Statistic = lambda m: (m[:, :-1] / m[:, -1:]).mean(1)
    return bootstrap_sequences(np.vstack([correct, baseline]), sequence_tokens(rows), statistic, seed=seed)


def accuracy_retained(evidence: ModelEvidence, alpha: float) -> Verdict:
    """Deleting or swapping one layer keeps 72-95 % of top-1 accuracy (mean over all of them)."""
    claim = "deleting or swapping one layer keeps 72-95 % of top-1 accuracy"
    test = (
        "mean over all single-layer deletions and adjacent swaps of accuracy retained (intervened / original "
        "top-1 accuracy on the true next token); paired bootstrap over sequences; holds if the CI lies in "
        f"[{PAPER_RETENTION[0]:.0%}, {PAPER_RETENTION[1]:.0%}], fails if it lies outside"
    )
    rows = _sequences(evidence, claim, test, alpha)
    if isinstance(rows, Verdict):
        return rows
    decide: Decision = lambda low, high: within(low, high, PAPER_RETENTION)
    return _from_bootstrap(evidence, claim, test, alpha, retention_bootstrap(rows), decide)


def edges_fragile(evidence: ModelEvidence, alpha: float) -> Verdict:
    """The first and last layers are more fragile than the middle ones."""
    claim = "the first and last layers are more fragile than the middle"
    test = (
        "min(KL of deleting layer 0, KL of deleting the last layer) - median deletion KL over the middle layers "
        "(relative depth 0.25-0.75), nats; paired bootstrap over sequences; holds if the CI is above 0"
    )
    rows = _sequences(evidence, claim, test, alpha)
    if isinstance(rows, Verdict):
        return rows
    kl = sequence_sums(rows, interventions_of(rows, "delete"), "kl")
    statistic: Statistic = lambda m: np.minimum(m[:, 0], m[:, -1]) - np.apply_along_axis(middle_median, 1, m)
    return _from_bootstrap(
        evidence, claim, test, alpha, bootstrap_sequences(kl, sequence_tokens(rows), statistic), above
    )


def swaps_milder(evidence: ModelEvidence, alpha: float) -> Verdict:
    """Swapping two adjacent layers hurts less than deleting one."""
    claim = "swapping adjacent layers is milder than deleting one"
    test = (
        "mean KL over all single-layer deletions - mean KL over all adjacent swaps, nats; "
        "paired bootstrap over sequences; holds if the CI is above 0"
    )
    rows = _sequences(evidence, claim, test, alpha)
    if isinstance(rows, Verdict):
        return rows
    deletions, swaps = interventions_of(rows, "delete"), interventions_of(rows, "swap")
    kl = sequence_sums(rows, deletions + swaps, "kl")
    statistic: Statistic = lambda m: m[:, : len(deletions)].mean(1) - m[:, len(deletions) :].mean(1)
    return _from_bootstrap(
        evidence, claim, test, alpha, bootstrap_sequences(kl, sequence_tokens(rows), statistic), above
    )


# ---------------------------------------------------------------- the logit lens (per layer)


def _lens(evidence: ModelEvidence, claim: str, test: str, alpha: float, column: str) -> pd.DataFrame | Verdict:
    """The lens table's layers 0..L-1 with ``column``, or an inconclusive verdict saying why not."""
    lens = evidence.table("logit_lens")
    if lens is None or column not in lens.columns:
        return untested(claim, evidence.model, test, alpha, "logit_lens", f"no logit_lens table with {column}")
    layers = lens[lens.layer >= 0].sort_values("layer")
    if len(layers) < 4:
        return untested(claim, evidence.model, test, alpha, "logit_lens", f"{len(layers)} lens layers; need 4")
    return layers


def _late_fall(evidence: ModelEvidence, alpha: float, claim: str, column: str, *, drop_last: bool) -> Verdict:
    """Whether ``column`` of the lens has a supported falling step, placed in the second half of depth."""
    what = {"kl_to_final": "KL to final", "entropy_bits": "entropy"}.get(column, column)
    test = (
        f"clean falling step of the lens {what} over layers"
        + (" 0..L-2 (the last layer has its own claim)" if drop_last else " 0..L-1")
        + "; step test of stages.py (p from 999 no-step curves, compared with alpha); holds if the step's "
        f"5-95 % boundary interval lies at relative depth >= {LATE}, fails if below; effect = the step's relative depth"
    )
    layers = _lens(evidence, claim, test, alpha, column)
    if isinstance(layers, Verdict):
        return layers
    n_layers = int(layers.layer.max()) + 1
    curve = layers.iloc[:-1] if drop_last else layers
    fit = _lens_step(curve.layer.to_numpy(), curve[column].to_numpy(np.float64))
    depth = lambda layer: relative_depth(int(layer), n_layers)
    if pd.isna(fit.layer):
        return untested(claim, evidence.model, test, alpha, "logit_lens", f"the lens {what} has no clean falling step")
    if fit.p_value > alpha or pd.isna(fit.interval_low):
        note = f"the step at layer {int(fit.layer)} is not significant (p = {fit.p_value:.3g} > alpha)"
        untested_step = untested(claim, evidence.model, test, alpha, "logit_lens", note)
        return replace(untested_step, effect=depth(fit.layer), n=len(curve))
    low, high = depth(fit.interval_low), depth(fit.interval_high)
    decision = within(low, high, (LATE, 1.0))
    return Verdict(claim, evidence.model, decision, depth(fit.layer), low, high, test, alpha, len(curve), "logit_lens")


def _lens_step(layers: np.ndarray, values: np.ndarray) -> pd.Series:
    """The falling-step test of :func:`~stages_of_inference.stages.detect_stages` on one lens curve.

    Given only a logit-lens table, ``detect_stages`` fits and tests the ensembling
    boundary's falling step on every layer given; the curve (KL or entropy) is passed in
    its ``kl_to_final`` column. Returns that source's row of the boundary table.
    """
    curve = pd.DataFrame({"layer": layers, "kl_to_final": values})
    boundaries = detect_stages(logit_lens=curve, n_layers=len(curve)).boundaries
    return boundaries[boundaries.evidence == "logit-lens KL to final"].iloc[0]


def lens_kl_falls_late(evidence: ModelEvidence, alpha: float) -> Verdict:
    """The logit-lens KL to the final output falls late (a phase transition in the second half)."""
    return _late_fall(
        evidence, alpha, "logit-lens KL to final falls late (phase transition)", "kl_to_final", drop_last=False
    )


def lens_entropy_falls_late(evidence: ModelEvidence, alpha: float) -> Verdict:
    """The logit-lens entropy falls late."""
    return _late_fall(evidence, alpha, "logit-lens entropy falls late", "entropy_bits", drop_last=True)


def entropy_rises_at_last_layer(evidence: ModelEvidence, alpha: float) -> Verdict:
    """The logit-lens entropy rises again at the last layer."""
    claim = "logit-lens entropy rises again at the last layer"
    test = (
        "entropy at the last layer - entropy at the layer before, bits; normal interval with the sd of a "
        "layer-to-layer difference (MAD of first differences, stages.jitter_sd x sqrt 2); holds if above 0"
    )
    layers = _lens(evidence, claim, test, alpha, "entropy_bits")
    if isinstance(layers, Verdict):
        return layers
    entropy = layers.entropy_bits.to_numpy(np.float64)
    rise = float(entropy[-1] - entropy[-2])
    low, high = normal_interval(rise, np.sqrt(2.0) * jitter_sd(entropy), alpha)
    return Verdict(claim, evidence.model, above(low, high), rise, low, high, test, alpha, len(entropy), "logit_lens")


# ---------------------------------------------------------------- neurons (bootstrap over neurons)


def _neuron_draws(
    evidence: ModelEvidence, claim: str, test: str, alpha: float
) -> tuple[np.ndarray, np.ndarray] | Verdict:
    """Per-layer (prediction, suppression, other) counts and their bootstrap over neurons, or why not."""
    counts, neurons = evidence.table("neuron_counts"), evidence.table("neurons")
    if counts is None or neurons is None:
        return untested(claim, evidence.model, test, alpha, "neurons", "needs the per-neuron table (neurons.parquet)")
    counts = counts.set_index("layer").sort_index()
    sizes = neurons.groupby("layer").size().reindex(counts.index).to_numpy(np.float64)
    kinds = counts[["prediction", "suppression"]].to_numpy(np.float64)
    table = np.column_stack([kinds, sizes - kinds.sum(1)])
    return table, bootstrap_neuron_counts(table)


def prediction_neurons_peak(evidence: ModelEvidence, alpha: float) -> Verdict:
    """Prediction neurons peak near 85 % of depth."""
    claim = "prediction neurons peak near 85 % depth"
    test = (
        "relative depth of the layer with most prediction neurons; bootstrap over neurons (each layer's "
        f"neurons resampled); holds if the CI lies in [{PREDICTION_PEAK[0]:.2f}, {PREDICTION_PEAK[1]:.2f}], "
        "fails if outside"
    )
    found = _neuron_draws(evidence, claim, test, alpha)
    if isinstance(found, Verdict):
        return found
    table, draws = found
    if table[:, 0].sum() == 0:
        return untested(claim, evidence.model, test, alpha, "neurons", "no prediction neurons in any layer")
    n_layers = table.shape[0]
    depth = lambda peak: np.asarray(peak, dtype=np.float64) / (n_layers - 1)
    peaks = np.where(draws[:, :, 0].sum(1) > 0, depth(draws[:, :, 0].argmax(1)), np.nan)
    low, high = Bootstrap(0.0, peaks).interval(alpha)
    estimate = float(depth(table[:, 0].argmax()))
    decision = within(low, high, PREDICTION_PEAK)
    return Verdict(claim, evidence.model, decision, estimate, low, high, test, alpha, int(table.sum()), "neurons")


def suppression_in_last_layers(evidence: ModelEvidence, alpha: float) -> Verdict:
    """Suppression neurons dominate the last layers."""
    claim = "suppression neurons dominate the last layers"
    test = (
        f"suppression - prediction neurons summed over layers at relative depth >= {LAST_LAYERS}; "
        "bootstrap over neurons (each layer's neurons resampled); holds if the CI is above 0"
    )
    found = _neuron_draws(evidence, claim, test, alpha)
    if isinstance(found, Verdict):
        return found
    table, draws = found
    n_layers = table.shape[0]
    last = np.array([relative_depth(layer, n_layers) >= LAST_LAYERS for layer in range(n_layers)])
    estimate = float((table[last, 1] - table[last, 0]).sum())
    low, high = Bootstrap(estimate, (draws[:, last, 1] - draws[:, last, 0]).sum(1)).interval(alpha)
    return Verdict(
        claim, evidence.model, above(low, high), estimate, low, high, test, alpha, int(table[last].sum()), "neurons"
    )


# ---------------------------------------------------------------- attention (per layer, with sem)


def local_attention_early(evidence: ModelEvidence, alpha: float) -> Verdict:
    """Attention to the previous tokens is highest in the early layers."""
    claim = "attention to the previous tokens is highest early"
    test = (
        f"mean over layers at relative depth <= {EARLY} - mean over the later layers of the mean attention to "
        "the previous k tokens; normal interval from the per-layer sem over documents (layers taken as "
        "independent); holds if above 0"
    )
    table = evidence.table("attention")
    if table is None or "sem" not in table.columns:
        return untested(claim, evidence.model, test, alpha, "attention", "no attention table with sem")
    table = table.sort_values("layer")
    documents = int(table.n_documents.min()) if "n_documents" in table.columns else 0
    if documents < MIN_SEQUENCES:
        why = f"{documents} documents; the sem needs at least {MIN_SEQUENCES}"
        return untested(claim, evidence.model, test, alpha, "attention", why)
    n_layers = len(table)
    early = np.array([relative_depth(layer, n_layers) <= EARLY for layer in range(n_layers)])
    mean, sem = table["mean"].to_numpy(np.float64), table["sem"].to_numpy(np.float64)
    effect = float(mean[early].mean() - mean[~early].mean())
    sd = float(np.sqrt((sem[early] ** 2).sum() / early.sum() ** 2 + (sem[~early] ** 2).sum() / (~early).sum() ** 2))
    low, high = normal_interval(effect, sd, alpha)
    return Verdict(claim, evidence.model, above(low, high), effect, low, high, test, alpha, documents, "attention")


MODEL_CLAIMS: tuple[Claim, ...] = (
    accuracy_retained,
    edges_fragile,
    swaps_milder,
    lens_kl_falls_late,
    lens_entropy_falls_late,
    entropy_rises_at_last_layer,
    prediction_neurons_peak,
    suppression_in_last_layers,
    local_attention_early,
)
"""The claims tested on each model, in the report's order (one family for the correction)."""
