"""The report's tables: accuracy retained against the paper's range, and HTML escaping."""

from __future__ import annotations

import doctest
from pathlib import Path

import pandas as pd
import pytest

from stages_of_inference.report import tables as tables_module
from stages_of_inference.report.results import ModelResults
from stages_of_inference.report.tables import html_table, outside_paper, retention_table
from tests.unit.report.conftest import robustness


def test_doctests_pass() -> None:
    assert doctest.testmod(tables_module).failed == 0


def test_retention_summarises_each_model_and_intervention() -> None:
    sweep = robustness()
    sweep.loc[sweep.intervention == "delete", "top1_agreement"] = [0.5] + [1.0] * 9
    models = [ModelResults("a", Path("a"), {"robustness": sweep}), ModelResults("b", Path("b"))]
    table = retention_table(models)
    assert table[["model", "intervention", "layers"]].values.tolist() == [["a", "delete", 10], ["a", "swap", 9]]
    delete = table.iloc[0]
    assert (delete["top1_agreement min"], delete["top1_agreement max"]) == (0.5, 1.0)
    assert delete["top1_agreement mean"] == pytest.approx(0.95)
    assert retention_table(models[1:]).empty


def test_means_outside_the_paper_range_are_flagged() -> None:
    assert outside_paper("top1_agreement mean", 0.5) and outside_paper("relative_accuracy mean", 0.99)
    assert not outside_paper("top1_agreement mean", 0.8) and not outside_paper("top1_agreement min", 0.1)
    page = html_table(
        pd.DataFrame({"top1_agreement mean": [0.5, 0.8]}), percent=["top1_agreement mean"], flag=outside_paper
    )
    assert page.count("class=outside") == 1 and "50.0%" in page and "80.0%" in page


def test_html_table_escapes_text_and_leaves_missing_values_blank() -> None:
    page = html_table(pd.DataFrame({"text": ["<script>", None], "x": [float("nan"), 1.5]}))
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<td></td>" in page and "<td>1.5</td>" in page
