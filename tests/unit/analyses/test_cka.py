"""Unit tests of the CKA estimators' interfaces and of the layer x layer CKA matrix (tiny models).

The values (minibatches accumulated, not concatenated) are checked against a numpy
minibatch CKA in ``tests/oracle/test_cka_oracle.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from stages_of_inference.analyses.cka import (
    MinibatchCKA,
    cka_matrix,
    hook_template,
    hsic_unbiased,
    linear_cka,
)
from stages_of_inference.errors import ConfigError


def test_cka_matrix_is_a_symmetric_layer_table_with_unit_diagonal(tiny_model, tiny_tokens) -> None:
    matrix = cka_matrix(tiny_model, tiny_tokens, batch_size=2)
    layers = list(range(tiny_model.cfg.n_layers))
    assert matrix.index.tolist() == layers and matrix.columns.tolist() == layers
    values = matrix.to_numpy()
    np.testing.assert_allclose(np.diag(values), 1.0, atol=1e-9)
    np.testing.assert_allclose(values, values.T, atol=1e-12)
    assert np.isfinite(values).all() and (values > -0.5).all() and (values < 1.0 + 1e-9).all()


def test_a_layer_subset_is_a_submatrix(tiny_model, tiny_tokens) -> None:
    full = cka_matrix(tiny_model, tiny_tokens, hook="mlp_out")
    part = cka_matrix(tiny_model, tiny_tokens, hook="blocks.{layer}.hook_mlp_out", layers=[3, 1])
    assert part.index.tolist() == [1, 3]
    pd.testing.assert_frame_equal(part, full.loc[[1, 3], [1, 3]], atol=1e-9)


@pytest.mark.parametrize("hook", ["resid", "blocks.0.hook_resid_post", "blocks.{layer}.hook_nothing"])
def test_cka_matrix_rejects_unknown_hooks(tiny_model, tiny_tokens, hook) -> None:
    with pytest.raises(ConfigError):
        cka_matrix(tiny_model, tiny_tokens, hook=hook)


def test_cka_matrix_rejects_minibatches_under_four_tokens(tiny_model, tiny_tokens) -> None:
    with pytest.raises(ConfigError, match="minibatch"):
        cka_matrix(tiny_model, tiny_tokens[:, :4], batch_size=1)
    with pytest.raises(ConfigError, match="minibatch"):  # 3 windows in batches of 2: the last has 1
        cka_matrix(tiny_model, tiny_tokens[:, :4], batch_size=2)


def test_cka_matrix_rejects_bad_layers(tiny_model, tiny_tokens) -> None:
    with pytest.raises(ConfigError):
        cka_matrix(tiny_model, tiny_tokens, layers=[0, 4])


def test_hook_template_expands_short_names() -> None:
    assert hook_template("attn_out") == "blocks.{layer}.hook_attn_out"


@pytest.mark.parametrize(
    ("x", "y"),
    [
        (np.zeros((10, 3)), np.zeros((9, 3))),  # different examples
        (np.zeros((3, 3)), np.zeros((3, 3))),  # too few examples
        (np.zeros(10), np.zeros(10)),  # not 2-d
    ],
)
def test_linear_cka_rejects_bad_shapes(x, y) -> None:
    with pytest.raises(ConfigError):
        linear_cka(x, y)


@pytest.mark.usefixtures("unchecked_shapes")  # malformed on purpose: our ConfigError must answer
def test_hsic_rejects_non_square_grams() -> None:
    with pytest.raises(ConfigError):
        hsic_unbiased(torch.zeros(5, 4), torch.zeros(5, 4))


def test_accumulator_needs_updates_of_a_fixed_size() -> None:
    accumulator = MinibatchCKA()
    with pytest.raises(ConfigError):
        accumulator.matrix()
    accumulator.update([torch.randn(8, 2), torch.randn(8, 3)])
    with pytest.raises(ConfigError):
        accumulator.update([torch.randn(8, 2)])
    assert accumulator.n_minibatches == 1 and accumulator.matrix().shape == (2, 2)
