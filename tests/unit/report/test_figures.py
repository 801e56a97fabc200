"""Unit tests of stages_of_inference.report.figures: the settling figures appear when their tables exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from stages_of_inference.experiments import commit_depth, self_repair
from stages_of_inference.experiments.config import ExperimentConfig
from stages_of_inference.experiments.self_repair import SelfRepairConfig
from stages_of_inference.report import build_report
from stages_of_inference.report.figures import depth_figures
from stages_of_inference.report.results import find_models
from tests.unit.report.conftest import attention, robustness, write_results

SETTLING_TITLES = (
    "Where the prediction settles: tokens committing at each point",
    "Exit at point ℓ",
    "Commit depth by token class",
    "Which layers repair a deletion",
    "Self-repair: tiny",
)


def test_without_their_tables_the_settling_figures_are_absent(results_dir: Path) -> None:
    titles = [title for title, _ in depth_figures(find_models(results_dir), [])]
    assert not set(SETTLING_TITLES) & set(titles)


@pytest.mark.usefixtures("single_thread")
def test_the_settling_figures_are_drawn_from_saved_tables(tiny_model, tiny_tokens, tmp_path: Path) -> None:
    commit = commit_depth.compute(tiny_model, tiny_tokens, ExperimentConfig(model="tiny"))
    repair = self_repair.compute(tiny_model, tiny_tokens, SelfRepairConfig(model="tiny", repair_tokens=24))
    tables = {"robustness": robustness(), "attention": attention(), **commit.tables, **repair.tables}
    results = write_results(tmp_path / "results", "tiny", tables)
    figures = dict(depth_figures(find_models(results), []))
    for title in SETTLING_TITLES:
        assert not isinstance(figures[title], str), title
    assert "Exit at point ℓ" in build_report(results).read_text()
