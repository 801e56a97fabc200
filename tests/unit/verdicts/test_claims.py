"""Each claim on synthetic evidence where the right verdict is known: holds, fails, inconclusive."""

from __future__ import annotations

import numpy as np
import pytest

from stages_of_inference.stages import jitter_sd
from stages_of_inference.verdicts import ModelEvidence, model_verdicts
from stages_of_inference.verdicts.claims import (
    MODEL_CLAIMS,
    accuracy_retained,
    edges_fragile,
    entropy_rises_at_last_layer,
    lens_entropy_falls_late,
    lens_kl_falls_late,
    local_attention_early,
    prediction_neurons_peak,
    suppression_in_last_layers,
    swaps_milder,
)
from stages_of_inference.verdicts.stats import bonferroni
from tests.unit.verdicts.synthetic import (
    attention_evidence,
    lens_evidence,
    neuron_evidence,
    robustness_evidence,
    shard_rows,
)

ALPHA = bonferroni(0.05, len(MODEL_CLAIMS))
N_LAYERS = 12
EDGES = [3.0, 0.5] + [0.1] * (N_LAYERS - 3) + [3.0]
"""Deletion KL per layer: fragile first and last layers, robust middle."""


def _noisy(values: list[float], sd: float = 0.05, seed: int = 0) -> list[float]:
    return list(np.asarray(values) + sd * np.random.default_rng(seed).standard_normal(len(values)))


@pytest.mark.parametrize(
    ("retained", "n_sequences", "verdict"),
    [(0.85, 40, "holds"), (0.3, 40, "fails"), (0.72, 40, "inconclusive"), (0.85, 4, "inconclusive")],
)
def test_accuracy_retained(retained: float, n_sequences: int, verdict: str) -> None:
    rows = shard_rows(EDGES, [0.2] * (N_LAYERS - 1), retained=retained, n_sequences=n_sequences)
    result = accuracy_retained(robustness_evidence(rows), ALPHA)
    assert result.verdict == verdict
    if n_sequences >= 10:
        assert result.effect == pytest.approx(retained, abs=0.02)
        assert result.ci_low <= result.effect <= result.ci_high
        assert result.n == n_sequences
    else:
        assert "4 sequences" in result.note


@pytest.mark.parametrize(
    ("delete_kl", "verdict"),
    [(EDGES, "holds"), ([0.1] + [1.0] * (N_LAYERS - 2) + [0.1], "fails"), ([0.2] * N_LAYERS, "inconclusive")],
)
def test_edges_fragile(delete_kl: list[float], verdict: str) -> None:
    rows = shard_rows(delete_kl, [0.2] * (N_LAYERS - 1))
    assert edges_fragile(robustness_evidence(rows), ALPHA).verdict == verdict


def test_without_shards_the_robustness_claims_are_inconclusive_and_say_why() -> None:
    result = edges_fragile(ModelEvidence("tiny"), ALPHA)
    assert result.verdict == "inconclusive" and "robustness_shards" in result.note


@pytest.mark.parametrize(("swap", "verdict"), [(0.2, "holds"), (2.0, "fails"), (None, "inconclusive")])
def test_swaps_milder(swap: float | None, verdict: str) -> None:
    swaps = [swap] * (N_LAYERS - 1) if swap is not None else [float(np.mean(EDGES))] * (N_LAYERS - 1)
    rows = shard_rows(EDGES, swaps, noise=0.5)
    result = swaps_milder(robustness_evidence(rows), ALPHA)
    assert result.verdict == verdict


@pytest.mark.parametrize(
    ("kl", "verdict"),
    [
        (_noisy([15.0] * 20 + [2.0] * 10), "holds"),
        (_noisy([15.0] * 3 + [2.0] * 27), "fails"),
        (_noisy([5.0] * 30, sd=1.0), "inconclusive"),
    ],
)
def test_lens_kl_falls_late(kl: list[float], verdict: str) -> None:
    result = lens_kl_falls_late(lens_evidence(kl), ALPHA)
    assert result.verdict == verdict
    if verdict != "inconclusive":
        assert result.ci_low <= result.effect <= result.ci_high


@pytest.mark.parametrize(
    ("entropy", "verdict"),
    [
        ([*_noisy([5.0] * 20 + [2.0] * 9), 4.0], "holds"),
        ([*_noisy([5.0] * 2 + [2.0] * 27), 4.0], "fails"),
        (_noisy([3.0] * 30, sd=1.0), "inconclusive"),
    ],
)
def test_lens_entropy_falls_late_leaving_out_the_last_layer(entropy: list[float], verdict: str) -> None:
    assert lens_entropy_falls_late(lens_evidence([1.0] * 30, entropy), ALPHA).verdict == verdict


@pytest.mark.parametrize(("rise", "verdict"), [(1.0, "holds"), (-1.0, "fails"), (0.0, "inconclusive")])
def test_entropy_rises_at_last_layer(rise: float, verdict: str) -> None:
    entropy = _noisy([2.0] * 29, sd=0.02)
    entropy.append(entropy[-1] + rise)
    result = entropy_rises_at_last_layer(lens_evidence([1.0] * 30, entropy), ALPHA)
    assert result.verdict == verdict
    assert result.effect == pytest.approx(rise)


def test_the_corrected_alpha_is_what_makes_a_marginal_rise_inconclusive() -> None:
    """A rise of 2.3 sds of a layer-to-layer difference: significant at 0.05, not at 0.05 / 9."""
    entropy = _noisy([2.0] * 29, sd=0.02)
    sd = np.sqrt(2.0) * jitter_sd(np.array([*entropy, entropy[-1]]))
    entropy.append(entropy[-1] + 2.3 * sd)
    evidence = lens_evidence([1.0] * 30, entropy)
    assert entropy_rises_at_last_layer(evidence, 0.05).verdict == "holds"
    assert entropy_rises_at_last_layer(evidence, ALPHA).verdict == "inconclusive"


def test_without_a_lens_table_the_lens_claims_are_inconclusive() -> None:
    for claim in (lens_kl_falls_late, lens_entropy_falls_late, entropy_rises_at_last_layer):
        result = claim(ModelEvidence("tiny"), ALPHA)
        assert result.verdict == "inconclusive" and "logit_lens" in result.note


@pytest.mark.parametrize(
    ("prediction", "verdict"),
    [
        ([0] * 8 + [30, 5], "holds"),  # peak at layer 8 of 10: relative depth 0.89
        ([0, 0, 40] + [2] * 7, "fails"),
        ([0] * 6 + [10, 10, 10, 10], "inconclusive"),  # a tie from depth 0.67 to 1.0: the resampled peak moves
        ([0] * 10, "inconclusive"),
    ],
)
def test_prediction_neurons_peak(prediction: list[int], verdict: str) -> None:
    result = prediction_neurons_peak(neuron_evidence(prediction, [0] * 10), ALPHA)
    assert result.verdict == verdict


@pytest.mark.parametrize(
    ("prediction", "suppression", "verdict"),
    [
        ([0] * 8 + [2, 2], [0] * 8 + [20, 30], "holds"),
        ([0] * 8 + [20, 30], [0] * 8 + [2, 2], "fails"),
        ([0] * 8 + [10, 10], [0] * 8 + [10, 10], "inconclusive"),
    ],
)
def test_suppression_in_last_layers(prediction: list[int], suppression: list[int], verdict: str) -> None:
    assert suppression_in_last_layers(neuron_evidence(prediction, suppression), ALPHA).verdict == verdict


@pytest.mark.parametrize(
    ("means", "n_documents", "verdict"),
    [
        ([0.10, 0.09, 0.08] + [0.03] * 9, 20, "holds"),
        ([0.01, 0.02, 0.02] + [0.05] * 9, 20, "fails"),
        ([0.05, 0.051, 0.05] + [0.05] * 9, 20, "inconclusive"),
        ([0.10, 0.09, 0.08] + [0.03] * 9, 4, "inconclusive"),
    ],
)
def test_local_attention_early(means: list[float], n_documents: int, verdict: str) -> None:
    assert local_attention_early(attention_evidence(means, n_documents=n_documents), ALPHA).verdict == verdict


def test_every_model_claim_is_tested_at_alpha_over_the_number_of_claims() -> None:
    found = model_verdicts(ModelEvidence("tiny"), alpha=0.05)
    assert len(found) == len(MODEL_CLAIMS) == 9
    assert all(verdict.alpha == pytest.approx(0.05 / 9) for verdict in found)
    assert {verdict.verdict for verdict in found} == {"inconclusive"}
    assert all(verdict.note for verdict in found)
