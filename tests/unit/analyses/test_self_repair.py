"""Unit tests of stages_of_inference.analyses.self_repair on tiny random models of four architectures."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
import torch

from stages_of_inference.analyses import self_repair as repair_module
from stages_of_inference.analyses.logit_lens import METRICS, logit_lens
from stages_of_inference.analyses.self_repair import (
    aligned_slots,
    first_changed_point,
    repair_by_layer,
    self_repair,
)
from stages_of_inference.errors import ConfigError
from stages_of_inference.interventions import Intervention, delete_layers
from stages_of_inference.interventions.hooks import component_deletion_hooks
from stages_of_inference.scoring.metrics import token_metrics

pytestmark = pytest.mark.usefixtures("single_thread")


def test_doctests_pass() -> None:
    assert doctest.testmod(repair_module).failed == 0


@pytest.mark.parametrize(
    ("order", "hooked", "slots", "changed"),
    [
        ([0, 1, 2, 3], None, [0, 1, 2, 3, 4], None),  # the original order
        ([1, 2, 3], None, [0, 0, 1, 2, 3], 1),  # delete layer 0
        ([0, 1, 2], None, [0, 1, 2, 3, 3], 4),  # delete the last layer
        ([0, 1, 2, 2, 3], None, [0, 1, 2, 4, 5], 3),  # repeat layer 2: point 3 follows the repeat
        ([0, 3], None, [0, 1, 1, 1, 2], 2),  # delete layers 1-2
        ([0, 1, 2, 3], 1, [0, 1, 2, 3, 4], 2),  # a component of layer 1 deleted
    ],
)
def test_alignment_and_first_changed_point(order, hooked, slots, changed) -> None:
    assert aligned_slots(order, 4) == slots
    assert first_changed_point(order, hooked, 4) == changed


def test_an_intervention_that_changes_nothing_has_no_excess_and_no_repair(tiny_model, tiny_tokens) -> None:
    # with layer 1's attention and MLP outputs zeroed in both runs, deleting layer 1 is the identity
    n_layers = tiny_model.cfg.n_layers
    silenced = component_deletion_hooks([1], "attn") + component_deletion_hooks([1], "mlp")
    with tiny_model.hooks(fwd_hooks=silenced):
        table = self_repair(tiny_model, tiny_tokens, Intervention("delete", 1), progress=False)
    assert len(table) == n_layers + 1
    assert (table.changed_point == 2).all()
    assert (table.excess_kl == 0).all() and (table.repair == 0).all() and (table.damage == 0).all()
    assert table.repair_fraction.isna().all()  # no damage: nothing to be a fraction of
    for metric in METRICS:
        assert (table[f"intervened_{metric}"] == table[f"original_{metric}"]).all()


def test_the_original_curve_is_the_logit_lens(tiny_model, tiny_tokens) -> None:
    table = self_repair(tiny_model, tiny_tokens, Intervention("delete", 1), batch_size=2, progress=False)
    lens = logit_lens(tiny_model, tiny_tokens, batch_size=2, progress=False)
    for metric in METRICS:
        np.testing.assert_array_equal(table[f"original_{metric}"], lens[metric])


def test_deleting_the_last_layer_matches_a_full_forward(tiny_model, tiny_tokens) -> None:
    last = tiny_model.cfg.n_layers - 1
    table = self_repair(tiny_model, tiny_tokens, Intervention("delete", last), progress=False)
    with torch.inference_mode():
        original = tiny_model(tiny_tokens)
        with delete_layers(tiny_model, last):
            deleted = tiny_model(tiny_tokens)
    expected = token_metrics(original, deleted, tiny_tokens)
    output = table.iloc[-1]
    assert output.intervened_kl_to_final == pytest.approx(float(expected["kl"].double().mean()), rel=1e-4, abs=1e-6)
    assert output.intervened_agreement_with_final == pytest.approx(float(expected["agreement"].double().mean()))
    # the output of the deleted model is the original's residual before the last layer
    assert output.intervened_kl_to_final == pytest.approx(table.iloc[-2].original_kl_to_final, rel=1e-5, abs=1e-7)
    assert output.changed_point == last + 1 and output.damage == pytest.approx(output.excess_kl)


def test_repairs_add_up_to_the_damage_undone(tiny_model, tiny_tokens) -> None:
    table = self_repair(tiny_model, tiny_tokens, progress=False)  # every single deletion
    n_layers = tiny_model.cfg.n_layers
    assert table.intervention.unique().tolist() == [f"delete layer {i}" for i in range(n_layers)]
    for layer, rows in table.groupby("intervened_layer"):
        before = rows[rows.point <= layer]
        assert (before.excess_kl == 0).all() and (before.repair == 0).all()
        assert (before.intervened_resid_norm == before.original_resid_norm).all()
        assert np.isnan(rows.intervened_attn_out_norm.iloc[layer + 1])  # the deleted layer does not run
        undone = rows.damage.iloc[0] - rows.excess_kl.iloc[-1]
        assert rows.repair.sum() == pytest.approx(undone, abs=1e-12)
    by_layer = repair_by_layer(table)
    assert by_layer.layer.tolist() == list(range(1, n_layers))
    assert by_layer.n_interventions.tolist() == list(range(1, n_layers))


def test_component_deletions_and_swaps_are_aligned(tiny_model, tiny_tokens) -> None:
    interventions = [Intervention("delete_mlp", 1), Intervention("swap", 1)]
    table = self_repair(tiny_model, tiny_tokens, interventions, progress=False)
    mlp, swap = (rows for _, rows in table.groupby("intervention", sort=False))
    assert mlp.changed_point.iloc[0] == 2 and swap.changed_point.iloc[0] == 2
    assert mlp.intervened_mlp_out_norm.iloc[2] == 0.0  # layer 1's MLP output is zeroed
    assert (mlp.excess_kl.iloc[:2] == 0).all()
    # at point 2 the swap has run neither layer 1 nor layer 2: its residual is the original point 1
    assert swap.intervened_resid_norm.iloc[2] == swap.original_resid_norm.iloc[1]


def test_an_intervention_that_does_not_fit_is_refused(tiny_model, tiny_tokens) -> None:
    with pytest.raises(ConfigError, match="layer"):
        self_repair(tiny_model, tiny_tokens, Intervention("delete", 99), progress=False)


def test_repair_by_layer_ignores_unchanged_interventions() -> None:
    table = pd.DataFrame(
        {
            "point": [1, 2],
            "layer": [0, 1],
            "relative_depth": [0.5, 1.0],
            "changed_point": [-1, -1],
            "repair": [0.0, 0.0],
            "repair_fraction": np.nan,
        }
    )
    assert repair_by_layer(table).empty
