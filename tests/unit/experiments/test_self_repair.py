"""Unit tests of the self_repair experiment on a tiny model: its budget, tables, summary and figures."""

from __future__ import annotations

import pytest
import torch

from stages_of_inference.errors import ConfigError
from stages_of_inference.experiments import self_repair
from stages_of_inference.experiments.self_repair import SelfRepairConfig, repair_windows

pytestmark = pytest.mark.usefixtures("single_thread")


def test_compute_deletes_the_chosen_layers_on_the_repair_budget(tiny_model, tiny_tokens) -> None:
    config = SelfRepairConfig(model="tiny", repair_tokens=48, repair_layers=[0, 2])  # 2 windows of 24
    results = self_repair.compute(tiny_model, tiny_tokens, config)
    table = results.tables["self_repair"]
    assert table.intervention.unique().tolist() == ["delete layer 0", "delete layer 2"]
    assert results.summary["n_tokens"] == 2 * (tiny_tokens.shape[1] - 2)
    assert results.summary["deleted_layers"] == [0, 2]
    assert set(results.summary["damage"]) == {0, 2}
    by_layer = results.tables["self_repair_by_layer"]
    assert results.summary["top_repair_layers"][0] == int(by_layer.loc[by_layer.mean_repair.idxmax(), "layer"])
    assert set(results.figures) == {"self_repair_curve", "self_repair_heatmap", "self_repair_by_layer"}


def test_every_layer_is_deleted_by_default(tiny_model, tiny_tokens) -> None:
    results = self_repair.compute(tiny_model, tiny_tokens, SelfRepairConfig(model="tiny", repair_tokens=24))
    assert results.summary["deleted_layers"] == list(range(tiny_model.cfg.n_layers))


def test_repair_windows() -> None:
    tokens = torch.zeros(5, 10, dtype=torch.long)
    assert repair_windows(tokens, 0).shape[0] == 5
    assert repair_windows(tokens, 3).shape[0] == 1  # at least one window
    assert repair_windows(tokens, 25).shape[0] == 2
    with pytest.raises(ConfigError, match="repair-tokens"):
        repair_windows(tokens, -1)
