"""Stage detection on synthetic evidence tables whose stages are known by construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stages_of_inference.errors import ConfigError
from stages_of_inference.stages import COMBINED_MIDDLE, STAGES, detect_stages, fit_step

N = 20
"""Layers of the synthetic model: detokenization 0-2, features 3-9, ensembling 10-17, sharpening 18-19."""


def sweep(kl: list[float], *, ci: float = 0.0, swap_kl: list[float] | None = None) -> pd.DataFrame:
    rows = [
        {
            "intervention": "delete",
            "layer": layer,
            "kl": value,
            "kl_ci_low": value - ci,
            "kl_ci_high": value + ci,
            "relative_accuracy": 0.9,
        }
        for layer, value in enumerate(kl)
    ]
    rows += [
        {
            "intervention": "swap",
            "layer": layer,
            "kl": value,
            "kl_ci_low": value,
            "kl_ci_high": value,
            "relative_accuracy": 0.9,
        }
        for layer, value in enumerate(swap_kl or [0.1] * (len(kl) - 1))
    ]
    return pd.DataFrame(rows)


def noisy_sweep(levels: np.ndarray, *, sd: float, seed: int) -> pd.DataFrame:
    """Deletion KLs ``levels x exp(sd z)`` with the matching 95 % CI, as the sweep reports them."""
    kl = levels * np.exp(sd * np.random.default_rng(seed).standard_normal(levels.size))
    return pd.DataFrame(
        {
            "intervention": "delete",
            "layer": range(levels.size),
            "kl": kl,
            "kl_ci_low": kl * np.exp(-1.96 * sd),
            "kl_ci_high": kl * np.exp(1.96 * sd),
        }
    )


def deletion_kl() -> list[float]:
    return [5.0, 3.0, 1.0] + [0.2] * 15 + [1.5, 4.0]


def attention() -> pd.DataFrame:
    means = [0.2, 0.15, 0.12] + [0.05] * (N - 3)
    return pd.DataFrame({"layer": range(N), "mean": means, "sem": 0.001})


def logit_lens() -> pd.DataFrame:
    kl = [8.0] + [8.0] * 10 + [3.0] * 7 + [1.0, 0.0, 0.0]  # embedding, then layers 0..19
    return pd.DataFrame({"layer": range(-1, N), "kl_to_final": kl[: N + 1]})


def neurons() -> pd.DataFrame:
    prediction = [0] * 10 + [15, 18, 12, 20, 30, 40, 35, 25, 10, 4]
    suppression = [0] * 10 + [1, 1, 2, 3, 4, 5, 6, 8, 30, 50]
    return pd.DataFrame({"layer": range(N), "prediction": prediction, "suppression": suppression})


def span(table: pd.DataFrame, stage: str) -> tuple[int, int]:
    row = table.set_index("stage").loc[stage]
    return int(row.first_layer), int(row.last_layer)


def row_of(table: pd.DataFrame, stage: str) -> pd.Series:
    return table.set_index("stage").loc[stage]


# ---------------------------------------------------------------- the step fit


def test_fit_step_is_the_least_squares_clean_step() -> None:
    step = fit_step(np.array([4.0, 4.0, 4.0, 1.0, 1.0]))
    assert (step.change, step.levels) == (3, (4.0, 1.0))
    assert step.gain == pytest.approx(3 * 2 / 5 * 3.0**2)
    assert fit_step(np.array([1.0, 1.0, 2.0, 5.0]), rising=True).change == 3
    assert fit_step(np.array([1.0, 1.0, 1.0])) is None  # flat: no split separates the segments
    assert fit_step(np.array([1.0, 1.0, 6.0, 1.0, 1.0]), rising=True) is None  # a spike is not a step
    assert fit_step(np.array([-5.0, -5.0, -1.0, -1.0]), rising=True, floor=0.0) is None  # high level below floor


# ---------------------------------------------------------------- known boundaries


def test_all_evidence_places_the_four_known_stages() -> None:
    estimate = detect_stages(sweep(deletion_kl()), attention(), logit_lens(), neurons())
    table = estimate.table
    assert list(table.stage) == list(STAGES)
    assert list(table.status) == ["found"] * 4
    assert span(table, "detokenization") == (0, 2)  # deletion and attention agree
    assert span(table, "feature engineering") == (3, 9)
    assert span(table, "prediction ensembling") == (10, 17)
    assert span(table, "residual sharpening") == (18, 19)
    assert table.first_relative_depth.iloc[3] == pytest.approx(18 / 19)
    assert estimate.boundaries.supported.all() and len(estimate.boundaries) == 6


@pytest.mark.parametrize(("detok_end", "sharpening_start"), [(0, 23), (2, 18), (5, 14), (10, 13)])
def test_noisy_steps_recover_their_known_boundaries(detok_end: int, sharpening_start: int) -> None:
    n = 24
    levels = np.full(n, 0.2)
    levels[: detok_end + 1] = 3.0
    levels[sharpening_start:] = 2.0
    estimate = detect_stages(noisy_sweep(levels, sd=0.1, seed=detok_end))
    assert span(estimate.table, "detokenization") == (0, detok_end)
    assert span(estimate.table, "residual sharpening") == (sharpening_start, n - 1)
    assert span(estimate.table, COMBINED_MIDDLE) == (detok_end + 1, sharpening_start - 1)


def test_curves_without_a_step_are_absent_not_forced() -> None:
    table, findings = detect_stages(sweep([0.2] * N))
    assert row_of(table, "detokenization").status == "absent"
    assert row_of(table, "residual sharpening").status == "absent"
    assert span(table, COMBINED_MIDDLE) == (0, N - 1)
    assert any("detokenization is absent" in finding for finding in findings)
    assert any("first layer is not fragile" in finding for finding in findings)
    assert any("last layer is not fragile" in finding for finding in findings)


def test_the_null_holds_its_level_on_noise_only_curves() -> None:
    found = [
        detect_stages(noisy_sweep(np.full(24, 0.2), sd=0.1, seed=seed), n_bootstrap=0).table.status
        for seed in range(40)
    ]
    false_positives = sum(int((status.iloc[[0, 2]] == "found").sum()) for status in found)
    assert false_positives <= 6  # 80 tests at 5 %: about 4 expected, more than 6 happens with p < 0.05


def test_the_threshold_scales_with_the_noise_not_a_constant() -> None:
    kl = [0.3, 0.3] + [0.2] * (N - 2)  # the same 1.5x step, with a tight then a loose CI
    tight, _ = detect_stages(noisy_sweep(np.array(kl), sd=0.01, seed=1))
    loose, _ = detect_stages(noisy_sweep(np.array(kl), sd=0.5, seed=1))
    assert span(tight, "detokenization") == (0, 1)
    assert row_of(loose, "detokenization").status == "absent"


def test_uncertainty_comes_from_the_ci_and_the_interval_holds_the_truth() -> None:
    levels = np.array([3.0, 3.0, 3.0] + [0.2] * 21)
    levels[2] = 0.8  # a layer half-way, so the redraws can move the boundary by one
    certain, _ = detect_stages(noisy_sweep(levels, sd=1e-4, seed=0))
    estimate = detect_stages(noisy_sweep(levels, sd=0.6, seed=0))
    assert certain.uncertainty_layers.iloc[0] == 0.0
    assert estimate.table.uncertainty_layers.iloc[0] >= 0.5
    deletion = estimate.boundaries.set_index(["boundary", "evidence"]).loc[("detokenization end", "deletion KL")]
    assert deletion.interval_low <= 1 <= deletion.interval_high


def test_deterministic_given_the_seed() -> None:
    inputs = (noisy_sweep(np.array([3.0, 1.0] + [0.2] * 22), sd=0.3, seed=3), attention(), logit_lens(), neurons())
    first, second = detect_stages(*inputs, seed=7), detect_stages(*inputs, seed=7)
    pd.testing.assert_frame_equal(first.table, second.table)
    pd.testing.assert_frame_equal(first.boundaries, second.boundaries)
    assert first.findings == second.findings


# ---------------------------------------------------------------- the counter-examples


@pytest.mark.parametrize(("tail", "expected"), [([4.0, 0.2, 0.2], "absent"), ([4.0, 0.3, 0.3], "found")])
def test_sharpening_from_deletion_implies_a_fragile_last_layer(tail: list[float], expected: str) -> None:
    """Issue 14 counter-example 1: a fragile layer in the last 20 %, the last layer not fragile."""
    table, findings = detect_stages(sweep([5.0, 3.0, 1.0] + [0.2] * 14 + tail))
    sharpening = row_of(table, "residual sharpening")
    placed_by_deletion = sharpening.status == "found" and "deletion KL" in sharpening.evidence
    says_robust = any("last layer is not fragile" in finding for finding in findings)
    assert placed_by_deletion != says_robust  # exactly one of the two, never both
    assert sharpening.status == expected
    if expected == "found":
        assert span(table, "residual sharpening") == (17, 19)


@pytest.mark.parametrize("seed", range(12))
def test_findings_about_edge_layers_follow_the_table_rule(seed: int) -> None:
    rng = np.random.default_rng(seed)
    levels = np.exp(rng.normal(np.log(0.2), 1.0, 16))
    estimate = detect_stages(noisy_sweep(levels, sd=0.3, seed=seed), n_bootstrap=0)
    deletion = estimate.boundaries[estimate.boundaries.evidence == "deletion KL"].set_index("boundary").supported
    for boundary, stage, where in (
        ("detokenization end", "detokenization", "first"),
        ("residual sharpening start", "residual sharpening", "last"),
    ):
        says_robust = any(f"{where} layer is not fragile" in finding for finding in estimate.findings)
        assert bool(deletion[boundary]) != says_robust
        assert (row_of(estimate.table, stage).status == "found") == bool(deletion[boundary])


def test_lens_and_neurons_that_disagree_are_disputed_not_averaged() -> None:
    """Issue 14 counter-example 2: the lens says 5, the neurons say 16; the old rule said 11 +- 5.5."""
    lens = pd.DataFrame({"layer": range(-1, N), "kl_to_final": [8.0] * 6 + [1.0] * 15})
    counts = pd.DataFrame({"layer": range(N), "prediction": [0] * 16 + [20] * 4, "suppression": 0})
    estimate = detect_stages(logit_lens=lens, neurons=counts)
    engineering, ensembling = (
        row_of(estimate.table, "feature engineering"),
        row_of(estimate.table, "prediction ensembling"),
    )
    assert (engineering.status, ensembling.status) == ("disputed", "disputed")
    assert engineering.first_layer == 0 and pd.isna(engineering.last_layer)
    assert pd.isna(ensembling.first_layer) and ensembling.last_layer == N - 1
    assert 11 not in set(estimate.table.first_layer.dropna()) | set(estimate.table.last_layer.dropna())
    assert "layer 5 [5, 5]" in ensembling.evidence and "layer 16 [16, 16]" in ensembling.evidence
    assert any("disputed" in f and "layer 5 [5, 5]" in f and "layer 16 [16, 16]" in f for f in estimate.findings)
    per_source = estimate.boundaries.set_index("evidence").layer
    assert (per_source["logit-lens KL to final"], per_source["prediction neurons"]) == (5, 16)


def test_detokenization_evidence_that_disagrees_is_disputed() -> None:
    local = attention()
    local.loc[3:5, "mean"] = 0.11  # local attention lasts to layer 5, deletion fragility to layer 2
    table, findings = detect_stages(sweep(deletion_kl()), local, n_bootstrap=0)
    detok = row_of(table, "detokenization")
    assert detok.status == "disputed" and pd.isna(detok.last_layer) and pd.isna(detok.uncertainty_layers)
    assert "deletion KL: layer 2" in detok.evidence and "previous-token attention: layer 5" in detok.evidence
    assert pd.isna(row_of(table, COMBINED_MIDDLE).first_layer)
    assert any("detokenization end is disputed" in finding for finding in findings)


def test_an_agreed_boundary_lies_inside_every_sources_interval() -> None:
    deletion = noisy_sweep(np.array([3.0, 3.0, 1.0] + [0.2] * 15 + [1.5, 4.0]), sd=0.5, seed=2)
    estimate = detect_stages(deletion, attention(), logit_lens(), neurons())
    table = estimate.table.set_index("stage")
    starts = {
        "detokenization end": int(table.loc["detokenization", "last_layer"]),
        "prediction ensembling start": int(table.loc["prediction ensembling", "first_layer"]),
        "residual sharpening start": int(table.loc["residual sharpening", "first_layer"]),
    }
    supported = estimate.boundaries[estimate.boundaries.supported]
    assert len(supported) >= 5
    for row in supported.itertuples():
        assert row.interval_low <= starts[row.boundary] <= row.interval_high


# ---------------------------------------------------------------- neurons


def test_neurons_alone_separate_ensembling_from_sharpening() -> None:
    table, _ = detect_stages(neurons=neurons())
    assert row_of(table, "detokenization").status == "absent"
    assert span(table, "feature engineering") == (0, 9)
    assert span(table, "prediction ensembling") == (10, 17)
    assert span(table, "residual sharpening") == (18, 19)


def test_sharpening_needs_suppression_neurons_to_outnumber_prediction_neurons() -> None:
    counts = neurons()
    counts.loc[18:, "suppression"] = [9, 3]  # still rising relative to prediction, but fewer than prediction
    table, _ = detect_stages(neurons=counts)
    assert row_of(table, "residual sharpening").status == "absent"


# ---------------------------------------------------------------- findings and interface


def test_estimate_unpacks_as_table_and_findings() -> None:
    estimate = detect_stages(neurons=neurons())
    table, findings = estimate
    assert table is estimate.table and findings is estimate.findings
    assert set(estimate.boundaries.evidence) == {"prediction neurons", "suppression - prediction neurons"}


def test_load_bearing_middle_layer_and_harsh_swap_are_reported() -> None:
    kl = deletion_kl()
    kl[9] = 2.0  # 10x the middle median
    swaps = [0.1] * (N - 1)
    swaps[12] = 3.0
    _, findings = detect_stages(sweep(kl, swap_kl=swaps))
    assert any("middle layer 9" in f and "10.0x" in f for f in findings)
    assert any("swapping layers 12-13" in f for f in findings)


def test_retention_outside_the_paper_range_is_reported() -> None:
    table = sweep(deletion_kl()).assign(relative_accuracy=0.5)
    _, findings = detect_stages(table)
    assert any("outside the paper's 72%-95%" in f for f in findings)


def test_missing_input_and_missing_columns_raise() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        detect_stages()
    with pytest.raises(ConfigError, match="kl_to_final"):
        detect_stages(logit_lens=pd.DataFrame({"layer": range(5), "kl": 1.0}))
