"""Unit tests of stages_of_inference.norms on tiny random models of four architectures."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
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


def _scale_position(position: int | slice, factor: float):
    def hook(activation: torch.Tensor, hook: object) -> torch.Tensor:
        activation = activation.clone()
        activation[:, position] *= factor
        return activation

    return hook


def test_a_hook_doubling_mlp_out_doubles_the_measured_norm_exactly(tiny_model, tiny_tokens) -> None:
    """Positive control: the norms are read from the hooked activations, not recomputed around them.

    Doubling is exact in binary floating point (until overflow), so the last layer's MLP
    norm must be exactly twice the unhooked one; nothing upstream of the hook moves.
    """
    last = tiny_model.cfg.n_layers - 1
    base = component_norms(tiny_model, tiny_tokens)
    with tiny_model.hooks(fwd_hooks=[(f"blocks.{last}.hook_mlp_out", _scale_position(slice(None), 2.0))]):
        doubled = component_norms(tiny_model, tiny_tokens)
    assert doubled.loc[last, "mlp_out_norm"] == 2 * base.loc[last, "mlp_out_norm"]
    assert doubled.loc[last, "attn_out_norm"] == base.loc[last, "attn_out_norm"]
    assert doubled.loc[last, "resid_post_norm"] != base.loc[last, "resid_post_norm"]
    pd.testing.assert_frame_equal(doubled.iloc[:last], base.iloc[:last], check_exact=True)


def test_bos_position_is_excluded(tiny_model, tiny_tokens) -> None:
    """Blowing up the last block's outputs at position 0 alone leaves its row unchanged.

    The same hook at position 1 (the control) changes every norm of that row.
    """
    last = tiny_model.cfg.n_layers - 1
    base = component_norms(tiny_model, tiny_tokens)
    rows = {}
    for position in (0, 1):
        hooks = [(f"blocks.{last}.{hook}", _scale_position(position, 1000.0)) for hook in COMPONENTS.values()]
        with tiny_model.hooks(fwd_hooks=hooks):
            rows[position] = component_norms(tiny_model, tiny_tokens).loc[last, list(COMPONENTS)]
    pd.testing.assert_series_equal(rows[0], base.loc[last, list(COMPONENTS)], check_exact=True)
    assert (rows[1] > 10 * base.loc[last, list(COMPONENTS)]).all()


@pytest.mark.parametrize(
    ("tokens", "match"),
    [
        (torch.zeros(0, 8, dtype=torch.long), r"non-empty \[batch, pos\].*got shape \(0, 8\)"),
        (torch.zeros(3, 1, dtype=torch.long), "at least 2 tokens, BOS included, got windows of 1"),
        (torch.zeros(5, dtype=torch.long), r"non-empty \[batch, pos\].*got shape \(5,\)"),
    ],
    ids=["empty", "bos-only", "1-d"],
)
@pytest.mark.usefixtures("unchecked_shapes")  # malformed on purpose: our ConfigError must answer
def test_bad_tokens_raise_config_error(tiny_model, tokens, match) -> None:
    with pytest.raises(ConfigError, match=f"^component_norms needs .*{match}"):
        component_norms(tiny_model, tokens)


@pytest.mark.oracle
def test_norms_equal_torch_linalg_norm_of_a_full_cache(tiny_model, tiny_tokens) -> None:
    """One forward of all windows on both sides, so the activations are bit-identical.

    Both sides then reduce them in float64: ``d_model`` squares per norm and
    ``n_tokens`` norms per mean, each sum exact to (number of terms) x eps64 relative
    (all terms are positive), so the two agree to ``(d_model + n_tokens) eps64``.
    """
    table = component_norms(tiny_model, tiny_tokens, batch_size=len(tiny_tokens))
    with torch.inference_mode():
        _, cache = tiny_model.run_with_cache(tiny_tokens)
    n_tokens = tiny_tokens.shape[0] * (tiny_tokens.shape[1] - 1)
    bound = 2 * (tiny_model.cfg.d_model + n_tokens) * np.finfo(np.float64).eps
    for layer in range(tiny_model.cfg.n_layers):
        for column, hook in COMPONENTS.items():
            activation = cache[f"blocks.{layer}.{hook}"][:, 1:].double()
            expected = torch.linalg.norm(activation, dim=-1).mean().item()
            assert table.loc[layer, column] == pytest.approx(expected, rel=bound, abs=0), (layer, column)
