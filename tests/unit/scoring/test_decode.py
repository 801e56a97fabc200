"""Unit tests of stages_of_inference.scoring.decode: decoding residuals, through the head or by vocabulary tiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stages_of_inference.scoring import decode
from stages_of_inference.scoring.decode import linear_by_vocabulary_tiles, product_tiles, unembed, vocabulary_tiles
from stages_of_inference.scoring.workspace import Workspace


def _residual(model, rows: int = 6) -> torch.Tensor:
    return torch.randn(rows, model.cfg.d_model, generator=torch.Generator().manual_seed(0))


def test_unembed_with_a_workspace_equals_the_head(tiny_model) -> None:
    residual = _residual(tiny_model)
    workspace = Workspace()
    with torch.inference_mode():
        expected = unembed(tiny_model, residual)
        got = unembed(tiny_model, residual, workspace)
        assert got.data_ptr() == workspace.buffer("logits", tuple(expected.shape)).data_ptr()
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
        assert torch.equal(tiny_model(torch.tensor([[0, 1, 2]]))[0], unembed(tiny_model, _final(tiny_model)))


def test_unembed_runs_the_head_when_a_hook_is_attached(tiny_model) -> None:
    residual = _residual(tiny_model)
    seen = []
    with torch.inference_mode():
        doubled = lambda value, hook: seen.append(hook.name) or value * 2
        with tiny_model.hooks(fwd_hooks=[("unembed.hook_out", doubled)]):
            got = unembed(tiny_model, residual, Workspace())
        assert seen == ["unembed.hook_out"]
        assert torch.equal(got, 2 * unembed(tiny_model, residual))


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("tile", [7, 64, 1000])
def test_vocabulary_tiles_match_a_float64_product(bias: bool, tile: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole tiles, a last partial tile and a single tile all give ``x @ W.T + b``; a reused workspace too."""
    monkeypatch.setattr(decode, "VOCABULARY_TILE", tile)
    generator = torch.Generator().manual_seed(1)
    linear = torch.nn.Linear(16, 100, bias=bias)
    workspace = Workspace()
    for rows in (5, 3):
        x = torch.randn(rows, 16, generator=generator)
        got = linear_by_vocabulary_tiles(x, linear, workspace)
        weight = linear.weight.detach().double().numpy()
        expected = x.double().numpy() @ weight.T
        if bias:
            expected += linear.bias.detach().double().numpy()
        assert got.shape == (rows, 100)
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("nonzero", [False, True])
def test_a_zero_bias_changes_no_bit_and_any_other_is_added(nonzero: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """TransformerLens gives a bias-free head zeros (+0 and -0 here), which the tiles skip; one nonzero entry is added."""
    monkeypatch.setattr(decode, "VOCABULARY_TILE", 64)
    generator = torch.Generator().manual_seed(3)
    linear = torch.nn.Linear(16, 150)
    with torch.no_grad():
        linear.bias.copy_(torch.where(torch.arange(150) % 2 == 0, 0.0, -0.0))
        linear.bias[100] = 1e-3 if nonzero else 0.0
    x = torch.randn(5, 16, generator=generator)
    bias = linear.bias.detach()[:, None]
    expected = torch.cat(
        [tile + bias[start : start + 64] for start, tile in product_tiles(x, linear.weight.detach(), Workspace())]
    )
    got = torch.cat([tile.clone() for _, tile in vocabulary_tiles(x, linear, Workspace())])
    assert torch.equal(got, expected)


def test_product_tiles_cover_every_row_of_any_weight(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain weight (no linear layer): tiles in order, the last one short, each ``weight[tile] @ rows.T``."""
    monkeypatch.setattr(decode, "VOCABULARY_TILE", 64)
    generator = torch.Generator().manual_seed(2)
    weight, rows = torch.randn(150, 16, generator=generator), torch.randn(5, 16, generator=generator)
    tiles = [(start, tile.clone()) for start, tile in product_tiles(rows, weight, Workspace())]
    assert [(start, tile.shape) for start, tile in tiles] == [(0, (64, 5)), (64, (64, 5)), (128, (22, 5))]
    expected = weight.double().numpy() @ rows.double().numpy().T
    np.testing.assert_allclose(torch.cat([tile for _, tile in tiles]).numpy(), expected, rtol=1e-5, atol=1e-5)


def _final(model) -> torch.Tensor:
    """The unembedding's input for the tokens 0, 1, 2, via a hook."""
    captured = {}
    model.run_with_hooks(
        torch.tensor([[0, 1, 2]]),
        fwd_hooks=[("unembed.hook_in", lambda value, hook: captured.setdefault("x", value[0].clone()))],
    )
    return captured["x"]
