"""Unit tests of stages_of_inference.norms on tiny random models of four architectures."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch

from stages_of_inference.analyses import norms as norms_module
from stages_of_inference.analyses.norms import COMPONENTS, component_norms
from stages_of_inference.errors import ConfigError


def test_doctests_pass() -> None:
    assert doctest.testmod(norms_module).failed == 0


def test_table_has_one_row_per_layer_with_positive_finite_norms(tiny_model, tiny_tokens) -> None:
    table = component_norms(tiny_model, tiny_tokens, batch_size=2)
    n_layers = tiny_model.cfg.n_layers
    assert table.columns.tolist() == ["layer", "relative_depth", *COMPONENTS, "n_tokens"]
    assert table.layer.tolist() == list(range(n_layers))
    values = table[list(COMPONENTS)].to_numpy()
    assert np.isfinite(values).all() and (values > 0).all()
    assert (table.n_tokens == tiny_tokens.shape[0] * (tiny_tokens.shape[1] - 1)).all()


def test_batch_size_does_not_change_the_result(tiny_model, tiny_tokens) -> None:
    one = component_norms(tiny_model, tiny_tokens, batch_size=1)
    all_at_once = component_norms(tiny_model, tiny_tokens, batch_size=len(tiny_tokens))
    np.testing.assert_allclose(one[list(COMPONENTS)], all_at_once[list(COMPONENTS)], rtol=1e-5)


def test_bos_position_is_excluded(tiny_model, tiny_tokens) -> None:
    """Blowing up the last block's outputs at position 0 alone leaves its row unchanged."""
    last = tiny_model.cfg.n_layers - 1

    def scale_bos(activation: torch.Tensor, hook: object) -> torch.Tensor:
        activation = activation.clone()
        activation[:, 0] *= 1000.0
        return activation

    base = component_norms(tiny_model, tiny_tokens)
    hooks = [(f"blocks.{last}.{hook}", scale_bos) for hook in COMPONENTS.values()]
    with tiny_model.hooks(fwd_hooks=hooks):
        scaled = component_norms(tiny_model, tiny_tokens)
    np.testing.assert_allclose(base[list(COMPONENTS)], scaled[list(COMPONENTS)], rtol=1e-6)


@pytest.mark.parametrize(
    "tokens",
    [torch.zeros(0, 8, dtype=torch.long), torch.zeros(3, 1, dtype=torch.long), torch.zeros(5, dtype=torch.long)],
    ids=["empty", "bos-only", "1-d"],
)
def test_bad_tokens_raise_config_error(tiny_model, tokens) -> None:
    with pytest.raises(ConfigError, match="at least 2 positions"):
        component_norms(tiny_model, tokens)


@pytest.mark.oracle
def test_norms_equal_torch_linalg_norm_of_a_full_cache(tiny_model, tiny_tokens) -> None:
    table = component_norms(tiny_model, tiny_tokens, batch_size=2)
    with torch.inference_mode():
        _, cache = tiny_model.run_with_cache(tiny_tokens)
    for layer in range(tiny_model.cfg.n_layers):
        for column, hook in COMPONENTS.items():
            activation = cache[f"blocks.{layer}.{hook}"][:, 1:]
            expected = torch.linalg.norm(activation, dim=-1).mean().item()
            assert table.loc[layer, column] == pytest.approx(expected, rel=1e-5), (layer, column)
