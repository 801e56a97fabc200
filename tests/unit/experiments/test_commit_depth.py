"""Unit tests of the commit_depth experiment on a tiny model: its tables, summary and figures."""

from __future__ import annotations

import pytest

from stages_of_inference.experiments import commit_depth
from stages_of_inference.experiments.config import ExperimentConfig

pytestmark = pytest.mark.usefixtures("single_thread")


def test_compute_returns_the_tables_summary_and_figures(tiny_model, tiny_tokens) -> None:
    results = commit_depth.compute(tiny_model, tiny_tokens, ExperimentConfig(model="tiny", batch_size=2))
    assert set(results.tables) == {
        "commit_depth_tokens",
        "commit_depth_exit",
        "commit_depth_distribution",
        "commit_depth_by_class",
    }
    per_token = results.tables["commit_depth_tokens"]
    assert results.summary["n_tokens"] == len(per_token) == tiny_tokens.shape[0] * (tiny_tokens.shape[1] - 2)
    assert results.summary["median_relative_commit_depth"] == per_token.relative_commit_depth.median()
    exit_curve = results.tables["commit_depth_exit"]
    assert exit_curve.accuracy.iloc[-1] == per_token.correct.mean()
    assert set(results.figures) == {"commit_depth_distribution", "commit_depth_exit", "commit_depth_by_class"}
