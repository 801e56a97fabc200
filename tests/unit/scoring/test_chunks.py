"""Unit tests of stages_of_inference.chunk_scoring: metrics from vocabulary tiles against float64 and full logits."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from stages_of_inference.errors import ConfigError, NumericalError
from stages_of_inference.scoring import chunks, decode
from stages_of_inference.scoring.chunks import (
    LogitsReference,
    TiledReference,
    chunk_reference,
    target_logit_band,
)
from stages_of_inference.scoring.metrics import TOKEN_METRICS
from stages_of_inference.scoring.workspace import Workspace

IDENTITY = SimpleNamespace(adapter=SimpleNamespace(apply_output_logits_transform=lambda logits: logits))
"""The part of a bridge TiledReference uses, with no logit transform."""


def _float64_metrics(linear: torch.nn.Linear, base: torch.Tensor, other: torch.Tensor, targets: torch.Tensor) -> dict:
    """Every token metric by the textbook formulas, in float64 numpy."""
    weight = linear.weight.detach().double().numpy()
    bias = 0.0 if linear.bias is None else linear.bias.detach().double().numpy()

    def log_softmax(x: torch.Tensor) -> np.ndarray:
        logits = x.double().numpy() @ weight.T + bias
        shifted = logits - logits.max(-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))

    log_p, log_q = log_softmax(base), log_softmax(other)
    top_p, top_q = log_p.argmax(-1), log_q.argmax(-1)
    rows = np.arange(len(targets))
    entropy = lambda log: -(np.exp(log) * log).sum(-1) / math.log(2)
    return {
        "kl": (np.exp(log_p) * (log_p - log_q)).sum(-1),
        "agreement": (top_q == top_p).astype(float),
        "correct": (top_q == targets.numpy()).astype(float),
        "baseline_correct": (top_p == targets.numpy()).astype(float),
        "loss": -log_q[rows, targets.numpy()],
        "baseline_loss": -log_p[rows, targets.numpy()],
        "entropy_bits": entropy(log_q),
        "baseline_entropy_bits": entropy(log_p),
    }


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("tile", [7, 64, 1000])
@pytest.mark.usefixtures("unchecked_shapes")  # a stand-in model object, not a bridge
def test_tiled_metrics_match_float64_formulas(bias: bool, tile: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole tiles, a last partial tile and a single tile; a workspace reused by a shorter chunk too."""
    monkeypatch.setattr(decode, "VOCABULARY_TILE", tile)
    generator = torch.Generator().manual_seed(2)
    linear = torch.nn.Linear(16, 100, bias=bias)
    workspace = Workspace()
    for rows in (9, 4):
        base = torch.randn(rows, 16, generator=generator) * 3
        other = base + torch.randn(rows, 16, generator=generator)
        targets = torch.randint(0, 100, (rows,), generator=generator)
        reference = TiledReference(IDENTITY, linear, base, targets, workspace)
        got = reference.compare(other, "test")
        expected = _float64_metrics(linear, base, other, targets)
        assert set(got) == set(TOKEN_METRICS)
        for name in TOKEN_METRICS:
            np.testing.assert_allclose(got[name].double().numpy(), expected[name], rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.usefixtures("unchecked_shapes")  # a stand-in model object, not a bridge
def test_an_unchanged_residual_scores_exactly_like_the_reference() -> None:
    generator = torch.Generator().manual_seed(3)
    linear = torch.nn.Linear(8, 50)
    base = torch.randn(5, 8, generator=generator)
    targets = torch.randint(0, 50, (5,), generator=generator)
    got = TiledReference(IDENTITY, linear, base, targets, Workspace()).compare(base.clone(), "nothing changed")
    assert torch.equal(got["kl"], torch.zeros(5))
    assert torch.equal(got["agreement"], torch.ones(5))
    assert torch.equal(got["entropy_bits"], got["baseline_entropy_bits"])
    assert torch.equal(got["loss"], got["baseline_loss"])


def several_tiles(monkeypatch: pytest.MonkeyPatch, vocabulary: int, tile: int) -> None:
    """Score by tiles of ``tile`` entries, checking the vocabulary spans several, the last one partial."""
    assert vocabulary > tile and vocabulary % tile != 0
    monkeypatch.setattr(decode, "VOCABULARY_TILE", tile)


@pytest.mark.usefixtures("unchecked_shapes")  # a stand-in model object, not a bridge
def test_top1_is_the_first_largest_logit_across_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ties resolve to the lowest vocabulary index, within a tile and across tiles, as argmax does."""
    several_tiles(monkeypatch, 43, 8)
    linear = torch.nn.Linear(4, 43)
    torch.nn.init.zeros_(linear.weight)
    bias = torch.zeros(43)
    bias[[11, 13, 30]] = 2.0  # the largest logit three times: tiles 1, 1 and 3
    bias[2] = 1.0  # the largest of the first tile only
    linear.bias.data = bias
    residual = torch.randn(3, 4)
    targets = torch.tensor([11, 13, 30])
    reference = TiledReference(IDENTITY, linear, residual, targets, Workspace())
    assert reference.totals.top1.tolist() == [11, 11, 11]
    assert reference.compare(residual, "test")["baseline_correct"].tolist() == [1.0, 0.0, 0.0]


def test_chunk_reference_tiles_and_agrees_with_full_logits(tiny_model, monkeypatch: pytest.MonkeyPatch) -> None:
    generator = torch.Generator().manual_seed(4)
    d_model, vocabulary = tiny_model.cfg.d_model, tiny_model.cfg.d_vocab
    several_tiles(monkeypatch, vocabulary, 96)
    base = torch.randn(6, d_model, generator=generator)
    other = base + 0.5 * torch.randn(6, d_model, generator=generator)
    targets = torch.randint(0, vocabulary, (6,), generator=generator)
    with torch.inference_mode():
        tiled = chunk_reference(tiny_model, base, targets, Workspace())
        full = LogitsReference(tiny_model, base, targets, Workspace())
        assert isinstance(tiled, TiledReference)
        got, expected = tiled.compare(other, "test"), full.compare(other, "test")
    for name in TOKEN_METRICS:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-5, msg=name)


def test_every_tile_goes_through_the_logit_transform(tiny_model, monkeypatch: pytest.MonkeyPatch) -> None:
    """A softcap (Gemma 2 style) reaches the tiled metrics exactly as it reaches full logits."""
    several_tiles(monkeypatch, tiny_model.cfg.d_vocab, 96)
    softcap = lambda logits: 0.5 * torch.tanh(logits / 0.5)
    monkeypatch.setattr(tiny_model.adapter, "apply_output_logits_transform", softcap)
    generator = torch.Generator().manual_seed(5)
    base = torch.randn(4, tiny_model.cfg.d_model, generator=generator)
    other = base + torch.randn(4, tiny_model.cfg.d_model, generator=generator)
    targets = torch.zeros(4, dtype=torch.long)
    with torch.inference_mode():
        tiled = chunk_reference(tiny_model, base, targets, Workspace())
        assert isinstance(tiled, TiledReference)
        got = tiled.compare(other, "test", rank=True)
        expected = LogitsReference(tiny_model, base, targets, Workspace()).compare(other, "test", rank=True)
        plain = LogitsReference(tiny_model, base, targets, Workspace())
        monkeypatch.undo()
        uncapped = plain.compare(other, "test")
    torch.testing.assert_close(got["kl"], expected["kl"], rtol=1e-4, atol=1e-6)
    assert torch.equal(got["true_token_rank"], expected["true_token_rank"])  # the band goes through the softcap too
    assert not torch.allclose(got["loss"], uncapped["loss"])


def test_a_hooked_head_or_a_float64_model_scores_through_full_logits(tiny_model) -> None:
    base = torch.randn(3, tiny_model.cfg.d_model)
    targets = torch.zeros(3, dtype=torch.long)
    with torch.inference_mode():
        with tiny_model.hooks(fwd_hooks=[("unembed.hook_out", lambda value, hook: value)]):
            assert isinstance(chunk_reference(tiny_model, base, targets, Workspace()), LogitsReference)
        tiny_model.to(torch.float64)
        reference = chunk_reference(tiny_model, base.double(), targets, Workspace())
        assert isinstance(reference, LogitsReference)
        assert torch.equal(reference.compare(base.double(), "test")["kl"], torch.zeros(3))


@pytest.mark.parametrize("bad", [math.nan, math.inf])
@pytest.mark.usefixtures("unchecked_shapes")  # a stand-in model object, not a bridge
def test_a_non_finite_logit_names_its_token(bad: float) -> None:
    linear = torch.nn.Linear(4, 30)
    residual = torch.randn(5, 4)
    targets = torch.zeros(5, dtype=torch.long)
    broken = residual.clone()
    broken[3, 1] = bad
    with pytest.raises(NumericalError, match="non-finite logit in the original model at token 3"):
        TiledReference(IDENTITY, linear, broken, targets, Workspace())
    reference = TiledReference(IDENTITY, linear, residual, targets, Workspace())
    with pytest.raises(NumericalError, match="non-finite logit in delete layer 2 at token 3"):
        reference.compare(broken, "delete layer 2")


@pytest.mark.usefixtures("unchecked_shapes")  # a stand-in model object, not a bridge
def test_targets_outside_the_vocabulary_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"\[0, 30\)"):
        TiledReference(IDENTITY, torch.nn.Linear(4, 30), torch.randn(2, 4), torch.tensor([0, 30]), Workspace())


def _tie_prone_linear(vocabulary: int, d_model: int, targets: torch.Tensor) -> torch.nn.Linear:
    """A head whose other rows copy the targets' rows exactly or within an ulp: ties and near-ties in every tile."""
    generator = torch.Generator().manual_seed(6)
    linear = torch.nn.Linear(d_model, vocabulary)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(vocabulary, d_model, generator=generator))
        linear.bias.zero_()
        for offset, target in enumerate(targets.tolist()):
            copies = torch.arange(offset, vocabulary, 9)
            copies = copies[copies != target]
            row = linear.weight[target].clone()
            linear.weight[copies] = row
            linear.weight[copies[::2], 0] = torch.nextafter(row[0], torch.tensor(math.inf))
    return linear


@pytest.mark.parametrize("tile", [7, 64])
@pytest.mark.usefixtures("unchecked_shapes")  # a stand-in model object, not a bridge
def test_tiled_rank_equals_the_rank_among_the_tile_products_ties_included(
    tile: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    several_tiles(monkeypatch, 100, tile)
    generator = torch.Generator().manual_seed(7)
    targets = torch.tensor([3, 50, 99, 3, 64, 0])
    linear = _tie_prone_linear(100, 16, targets)
    base = torch.randn(6, 16, generator=generator)
    other = base + torch.randn(6, 16, generator=generator)
    got = TiledReference(IDENTITY, linear, base, targets, Workspace()).compare(other, "test", rank=True)
    logits = decode.linear_by_vocabulary_tiles(other, linear, Workspace())  # the same tile products, copied out
    expected = (logits > logits[torch.arange(6), targets][:, None]).sum(-1)
    assert torch.equal(got["true_token_rank"], expected.float())
    ties = (logits == logits[torch.arange(6), targets][:, None]).sum(-1)
    assert (ties > 1).any()  # the test has ties to count right


@pytest.mark.usefixtures("unchecked_shapes")  # a stand-in model object, not a bridge
@pytest.mark.parametrize("tile", [7, 33])
def test_own_metrics_equal_comparing_the_original_with_itself(tile: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bit for bit, ranks and ties included, without a second pass (the logit lens's last point)."""
    several_tiles(monkeypatch, 100, tile)
    generator = torch.Generator().manual_seed(10)
    targets = torch.tensor([3, 50, 99, 3, 64, 0])
    linear = _tie_prone_linear(100, 16, targets)
    base = torch.randn(6, 16, generator=generator)
    compared = TiledReference(IDENTITY, linear, base, targets, Workspace()).compare(base.clone(), "test", rank=True)
    reference = TiledReference(IDENTITY, linear, base, targets, Workspace(), rank=True)
    monkeypatch.setattr(reference, "_pass", lambda *args, **kwargs: pytest.fail("decoded a second time"))
    own = reference.own_metrics("test", rank=True)
    assert own.keys() == compared.keys()
    for name in own:
        assert torch.equal(own[name], compared[name]), name
    assert own["kl"].eq(0).all() and own["agreement"].eq(1).all()
    without_rank = TiledReference(IDENTITY, linear, base, targets, Workspace())
    assert "true_token_rank" not in without_rank.own_metrics("test")
    with pytest.raises(ValueError, match="rank=True"):
        without_rank.own_metrics("test", rank=True)


def test_full_logits_and_tiles_give_the_same_rank(tiny_model, monkeypatch: pytest.MonkeyPatch) -> None:
    several_tiles(monkeypatch, tiny_model.cfg.d_vocab, 96)
    generator = torch.Generator().manual_seed(8)
    base = torch.randn(7, tiny_model.cfg.d_model, generator=generator)
    other = base + torch.randn(7, tiny_model.cfg.d_model, generator=generator)
    targets = torch.randint(0, tiny_model.cfg.d_vocab, (7,), generator=generator)
    with torch.inference_mode():
        tiled = chunk_reference(tiny_model, base, targets, Workspace()).compare(other, "test", rank=True)
        full = LogitsReference(tiny_model, base, targets, Workspace()).compare(other, "test", rank=True)
    assert torch.equal(tiled["true_token_rank"], full["true_token_rank"])
    assert "true_token_rank" not in LogitsReference(tiny_model, base, targets, Workspace()).compare(other, "test")


@pytest.mark.parametrize("bias", [False, True])
def test_the_target_logit_band_holds_the_tile_product(bias: bool) -> None:
    generator = torch.Generator().manual_seed(9)
    linear = torch.nn.Linear(640, 300, bias=bias)
    residual = torch.randn(50, 640, generator=generator) * 20
    targets = torch.randint(0, 300, (50,), generator=generator)
    low, high = target_logit_band(linear, residual, targets)
    tile = decode.linear_by_vocabulary_tiles(residual, linear, Workspace())[torch.arange(50), targets]
    assert ((low <= tile) & (tile <= high)).all()


@pytest.mark.usefixtures("unchecked_shapes")  # a stand-in model object, not a bridge
def test_a_target_outside_its_band_is_an_error_not_a_wrong_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    linear, residual, targets = torch.nn.Linear(4, 30), torch.randn(3, 4), torch.tensor([1, 2, 3])
    reference = TiledReference(IDENTITY, linear, residual, targets, Workspace())
    monkeypatch.setattr(chunks, "target_logit_band", lambda *args: (torch.full((3,), 1e9), torch.full((3,), 2e9)))
    with pytest.raises(NumericalError, match="delete layer 1 at token 0 left its float32 error bound"):
        reference.compare(residual, "delete layer 1", rank=True)
