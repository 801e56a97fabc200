"""build_report: missing tables and rejected evidence become notes; bugs propagate (issue 14, item 5)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from stages_of_inference.errors import ResultsError
from stages_of_inference.report import REPORT_FILE, build_report, estimates, figures
from tests.unit.report.conftest import robustness, write_results


def test_the_report_shows_each_table_present_and_notes_each_one_missing(results_dir: Path) -> None:
    report = build_report(results_dir)
    assert report == results_dir / REPORT_FILE
    page = report.read_text(encoding="utf-8")
    assert page.count('<div class="figure">') == 2  # robustness, attention
    for missing in ("logit_lens", "neurons", "norms"):
        assert f'<p class="note">no {missing} table</p>' in page
    assert "no stage estimate" not in page and "Findings" in page
    assert "Top-1 accuracy retained" in page and "run.json" in page


def test_evidence_the_toolkit_rejects_is_a_note(tmp_path: Path) -> None:
    results = write_results(tmp_path, "two-layers", {"robustness": robustness(n_layers=2)})
    page = build_report(results).read_text(encoding="utf-8")
    assert '<p class="note">no stage estimate: stages need a model of at least 3 layers, got 2</p>' in page
    assert page.count('<div class="figure">') == 1  # the sweep is still drawn


def test_a_folder_without_models_is_a_results_error(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="run an experiment first"):
        build_report(tmp_path)


def test_a_bug_in_a_plot_function_propagates(results_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def malformed(table: object) -> None:
        raise KeyError("sem")

    broken = tuple(
        dataclasses.replace(spec, plot=malformed) if spec.table == "attention" else spec
        for spec in figures.DEPTH_FIGURES
    )
    monkeypatch.setattr(figures, "DEPTH_FIGURES", broken)
    with pytest.raises(KeyError, match="sem"):
        build_report(results_dir)
    assert not (results_dir / REPORT_FILE).exists()


def test_a_bug_in_the_stage_estimate_propagates(results_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def buggy(*tables: object) -> None:
        raise ValueError("a bug, not bad evidence")

    monkeypatch.setattr(estimates, "detect_stages", buggy)
    with pytest.raises(ValueError, match="a bug"):
        build_report(results_dir)
