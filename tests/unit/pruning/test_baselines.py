"""Unit tests of stages_of_inference.pruning.baselines: the layers each ranking deletes, and budget checks.

The scores themselves are checked against Hugging Face in
tests/oracle/test_pruning_baselines_oracle.py.
"""

from __future__ import annotations

import pandas as pd
import pytest

from stages_of_inference.errors import ConfigError
from stages_of_inference.pruning.baselines import angular_distance_plan, block_influence_plan, check_budget


def test_block_influence_deletes_the_least_influential_layers_ties_to_the_lower() -> None:
    scores = pd.DataFrame({"layer": [0, 1, 2, 3, 4], "block_influence": [0.5, 0.1, 0.2, 0.1, 0.9]})
    assert block_influence_plan(scores, 1) == [1]
    assert block_influence_plan(scores, 2) == [1, 3]
    assert block_influence_plan(scores, 3) == [1, 2, 3]


def test_angular_distance_deletes_the_closest_block_of_that_size() -> None:
    distances = pd.DataFrame(
        {
            "block_start": [0, 1, 2, 0, 1],
            "n_layers": [1, 1, 1, 2, 2],
            "angular_distance": [0.3, 0.1, 0.1, 0.2, 0.4],
        }
    )
    assert angular_distance_plan(distances, 1) == [1]  # tie with layer 2: the lower start
    assert angular_distance_plan(distances, 2) == [0, 1]
    with pytest.raises(ConfigError, match="blocks of 3 layers"):
        angular_distance_plan(distances, 3)


@pytest.mark.parametrize("budget", [0, 4, -1, 1.0, True])
def test_a_budget_outside_the_model_is_refused(budget: object, unchecked_shapes: None) -> None:
    with pytest.raises(ConfigError, match="pass an integer between 1 and 3"):
        check_budget(budget, 4)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="between 1 and 3"):
        block_influence_plan(pd.DataFrame({"layer": range(4), "block_influence": 0.0}), budget)  # type: ignore[arg-type]
