"""Unit tests of stages_of_inference.report.figures: family and settling figures appear when their tables exist."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from stages_of_inference.experiments import commit_depth, self_repair
from stages_of_inference.experiments.config import ExperimentConfig
from stages_of_inference.experiments.self_repair import SelfRepairConfig
from stages_of_inference.report import build_report
from stages_of_inference.report.figures import depth_figures, family_figures
from stages_of_inference.report.results import ModelResults, find_models
from stages_of_inference.stages import detect_stages
from tests.unit.plots.test_families import family_table
from tests.unit.report.conftest import attention, robustness, write_results

FAMILY_TABLES = {
    "robustness_blocks": family_table("blocks", 10),
    "robustness_components": family_table("components", 10),
    "robustness_swaps-all": family_table("swaps-all", 10),
}


def test_each_family_table_of_each_model_gets_its_figure() -> None:
    stages = detect_stages(robustness()).table
    models = [
        ModelResults("a", Path("a"), dict(FAMILY_TABLES)),
        ModelResults("b", Path("b"), {"robustness_components": FAMILY_TABLES["robustness_components"]}),
        ModelResults("c", Path("c"), {"robustness": robustness()}),
    ]
    figures = family_figures(models, {"a": stages})
    assert [title for title, _ in figures] == [
        "Deleting a block of layers: a",
        "Deleting a layer's attention, its MLP, or the whole layer: a",
        "Swapping any two layers: a",
        "Deleting a layer's attention, its MLP, or the whole layer: b",
    ]
    shaded = [len(figure.layout.shapes) for _, figure in figures if not isinstance(figure, str)]
    assert shaded[1] == 2 * int((stages.status == "found").sum()) > 0  # a band per stage in each of 2 panels
    assert shaded[3] == 0  # b has no stage estimate


def test_a_family_table_the_plot_rejects_is_a_note() -> None:
    no_swaps = pd.DataFrame({"intervention": ["delete"], "layer": [0], "label": ["delete layer 0"], "kl": [1.0]})
    [(_, figure)] = family_figures([ModelResults("a", Path("a"), {"robustness_swaps-all": no_swaps})], {})
    assert isinstance(figure, str) and figure.startswith("skipped: the table has no 'swap' rows")


def test_the_page_has_a_family_section_only_when_a_folder_holds_a_family(tmp_path: Path) -> None:
    plain = build_report(write_results(tmp_path / "plain", "tiny", {"robustness": robustness()})).read_text()
    assert "Beyond the paper" not in plain
    tables = {"robustness": robustness(), "attention": attention(), **FAMILY_TABLES}
    page = build_report(write_results(tmp_path / "families", "tiny", tables)).read_text()
    section = page[page.index("<h2>Beyond the paper: intervention families</h2>") :]
    assert section.count('<div class="figure">') == 3
    assert page.count('<div class="figure">') == 2 + 3  # robustness and attention, then the families


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
