"""Stage detection on synthetic evidence tables whose stages are known by construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots

from stages_of_inference.errors import ConfigError
from stages_of_inference.plots.stages import add_stage_bands
from stages_of_inference.stages import COMBINED_MIDDLE, STAGES, detect_stages

N = 20
"""Layers of the synthetic model: detokenization 0-2, features 3-9, ensembling 10-17, sharpening 18-19."""


def sweep(kl: list[float], *, ci: float = 0.0, swap_kl: list[float] | None = None) -> pd.DataFrame:
    rows = [
        {"intervention": "delete", "layer": layer, "kl": value, "kl_ci_low": value - ci, "kl_ci_high": value + ci,
         "relative_accuracy": 0.9}
        for layer, value in enumerate(kl)
    ]
    rows += [
        {"intervention": "swap", "layer": layer, "kl": value, "kl_ci_low": value, "kl_ci_high": value,
         "relative_accuracy": 0.9}
        for layer, value in enumerate(swap_kl or [0.1] * (len(kl) - 1))
    ]
    return pd.DataFrame(rows)


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


def test_all_evidence_places_the_four_known_stages() -> None:
    table, _ = detect_stages(sweep(deletion_kl()), attention(), logit_lens(), neurons())
    assert list(table.stage) == list(STAGES)
    assert span(table, "detokenization") == (0, 2)  # deletion and attention agree
    assert span(table, "feature engineering") == (3, 9)
    assert span(table, "prediction ensembling") == (10, 17)
    assert span(table, "residual sharpening") == (18, 19)
    assert table.first_relative_depth.iloc[3] == pytest.approx(18 / 19)


def test_disagreeing_evidence_is_averaged_and_counted_as_uncertainty() -> None:
    local = attention()
    local.loc[3:5, "mean"] = 0.11  # local attention lasts to layer 5, deletion fragility to layer 2
    table, _ = detect_stages(sweep(deletion_kl()), local, n_bootstrap=0)
    row = table.set_index("stage").loc["detokenization"]
    assert (row.first_layer, row.last_layer) == (0, 4)  # mean of 2 and 5, rounded half up
    assert row.uncertainty_layers == pytest.approx(1.5)
    assert "layer 2" in row.evidence and "layer 5" in row.evidence


def test_bootstrap_widens_uncertainty_when_the_ci_straddles_the_threshold() -> None:
    kl = deletion_kl()
    kl[2] = 0.42  # just above 2x the middle median 0.2
    certain, _ = detect_stages(sweep(kl, ci=0.0))
    noisy, _ = detect_stages(sweep(kl, ci=0.2))
    assert certain.uncertainty_layers.iloc[0] == 0.0
    assert noisy.uncertainty_layers.iloc[0] >= 0.5


def test_stages_without_evidence_are_absent_not_forced() -> None:
    flat = [0.2] * N
    table, findings = detect_stages(sweep(flat))
    by_stage = table.set_index("stage")
    assert by_stage.loc["detokenization", "status"] == "absent"
    assert by_stage.loc["residual sharpening", "status"] == "absent"
    assert span(table, COMBINED_MIDDLE) == (0, N - 1)
    assert any("detokenization is absent" in finding for finding in findings)
    assert any("first layer is not fragile" in finding for finding in findings)


def test_neurons_alone_separate_ensembling_from_sharpening() -> None:
    table, _ = detect_stages(neurons=neurons())
    assert table.set_index("stage").loc["detokenization", "status"] == "absent"
    assert span(table, "feature engineering") == (0, 9)
    assert span(table, "prediction ensembling") == (10, 17)
    assert span(table, "residual sharpening") == (18, 19)


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


def test_bands_cover_every_subplot_and_meet_between_stages() -> None:
    table, _ = detect_stages(sweep(deletion_kl()), attention(), logit_lens(), neurons())
    figure = make_subplots(rows=2, cols=2)
    for row in (1, 2):
        for col in (1, 2):
            figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1]), row=row, col=col)
    add_stage_bands(figure, table)
    shapes = figure.layout.shapes
    assert len(shapes) == 4 * 4
    first = [s for s in shapes if s.xref == "x"]
    assert [s.yref for s in first] == ["y domain"] * 4
    assert np.isclose(first[0].x1, first[1].x0) and np.isclose(first[0].x0, -0.5 / 19)


def test_bands_on_logit_lens_points() -> None:
    table, _ = detect_stages(neurons=neurons())
    figure = add_stage_bands(go.Figure(go.Scatter(x=[0, 1], y=[0, 1])), table, lens_points=True)
    last = figure.layout.shapes[-1]
    assert (last.x0, last.x1) == pytest.approx((18.5 / N, 20.5 / N))
