"""Unit tests of stages_of_inference.logit_lens on tiny random models of four architectures."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import torch

from stages_of_inference.analyses import logit_lens as lens_module
from stages_of_inference.analyses.logit_lens import (
    METRICS,
    lens_input,
    lens_logits,
    lens_token_metrics,
    logit_lens,
    logit_lens_top_tokens,
)
from stages_of_inference.errors import ConfigError, NumericalError
from stages_of_inference.scoring import chunks as chunks_module
from stages_of_inference.scoring import decode
from stages_of_inference.scoring.chunks import LogitsReference, TiledReference, chunk_reference


def test_doctests_pass() -> None:
    assert doctest.testmod(lens_module).failed == 0


def test_table_has_one_row_per_point_with_every_column(tiny_model, tiny_tokens) -> None:
    table = logit_lens(tiny_model, tiny_tokens, batch_size=2)
    n_layers = tiny_model.cfg.n_layers
    assert table.columns.tolist() == [
        "layer",
        "point",
        "relative_depth",
        *METRICS,
        "n_tokens",
    ]
    assert table.layer.tolist() == list(range(-1, n_layers))
    assert table.point.tolist() == list(range(n_layers + 1))
    assert table.relative_depth.iloc[0] == 0.0 and table.relative_depth.iloc[-1] == 1.0
    batch, pos = tiny_tokens.shape
    assert (table.n_tokens == batch * (pos - 2)).all()


def test_metrics_are_in_range(tiny_model, tiny_tokens) -> None:
    table = logit_lens(tiny_model, tiny_tokens)
    d_vocab = tiny_model.cfg.d_vocab
    assert table[list(METRICS)].notna().all().all()
    assert ((table.entropy_bits >= 0) & (table.entropy_bits <= math.log2(d_vocab) + 1e-6)).all()
    assert (table.kl_to_final >= -1e-6).all()
    assert (table.loss >= 0).all()
    for column in ("accuracy", "agreement_with_final"):
        assert table[column].between(0, 1).all()
    assert table.true_token_rank.between(0, d_vocab - 1).all()


def test_last_point_is_the_model_output(tiny_model, tiny_tokens) -> None:
    last = logit_lens(tiny_model, tiny_tokens).iloc[-1]
    assert abs(last.kl_to_final) < 1e-5
    assert last.agreement_with_final == 1.0


def test_batch_size_does_not_change_the_result(tiny_model, tiny_tokens) -> None:
    one = logit_lens(tiny_model, tiny_tokens, batch_size=1)
    three = logit_lens(tiny_model, tiny_tokens, batch_size=3)
    np.testing.assert_allclose(one[list(METRICS)], three[list(METRICS)], atol=1e-5)


def test_small_chunks_give_the_same_result(tiny_model, tiny_tokens, monkeypatch) -> None:
    whole = logit_lens(tiny_model, tiny_tokens)
    monkeypatch.setattr(lens_module, "chunk_rows", lambda d_vocab: 7)
    chunked = logit_lens(tiny_model, tiny_tokens)
    np.testing.assert_allclose(whole[list(METRICS)], chunked[list(METRICS)], atol=1e-5)


def test_final_scale_shortcut_agrees_only_at_the_last_point(tiny_model, tiny_tokens) -> None:
    correct = logit_lens(tiny_model, tiny_tokens)
    shortcut = logit_lens(tiny_model, tiny_tokens, reuse_final_norm_scale=True)
    assert abs(shortcut.kl_to_final.iloc[-1]) < 1e-5
    assert not np.allclose(correct.kl_to_final.iloc[:-1], shortcut.kl_to_final.iloc[:-1], atol=1e-6)


@pytest.mark.parametrize(
    "tokens",
    [torch.zeros(0, 8, dtype=torch.long), torch.zeros(2, 2, dtype=torch.long), torch.zeros(5, dtype=torch.long)],
    ids=["empty", "too-short", "1-d"],
)
@pytest.mark.usefixtures("unchecked_shapes")  # malformed on purpose: our ConfigError must answer
def test_bad_tokens_raise_config_error(tiny_model, tokens) -> None:
    with pytest.raises(ConfigError):
        logit_lens(tiny_model, tokens)


LENS_BOUND = 1e-4
"""The stated bound (``lens_token_metrics``) of entropy, KL and loss against float64, per token."""


def _float64_lens(model, residuals: list[torch.Tensor], targets: torch.Tensor) -> np.ndarray:
    """The :data:`METRICS` of every point and token in float64 numpy, from the same float32 normed residuals."""
    linear = model.unembed.original_component
    weight = linear.weight.detach().double().numpy()
    bias = 0.0 if linear.bias is None else linear.bias.detach().double().numpy()
    log_softmax = lambda z: (
        z - z.max(-1, keepdims=True) - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True))
    )
    with torch.inference_mode():
        logits = [lens_input(model, resid).double().numpy() @ weight.T + bias for resid in residuals]
    rows, t = np.arange(len(targets)), targets.numpy()
    final = logits[-1]
    log_p = log_softmax(final)
    points = []
    for z in logits:
        log_q = log_softmax(z)
        columns = {
            "entropy_bits": -(np.exp(log_q) * log_q).sum(-1) / math.log(2),
            "kl_to_final": (np.exp(log_p) * (log_p - log_q)).sum(-1),
            "loss": -log_q[rows, t],
            "accuracy": z.argmax(-1) == t,
            "true_token_rank": (z > z[rows, t][:, None]).sum(-1),
            "agreement_with_final": z.argmax(-1) == final.argmax(-1),
        }
        points.append(np.stack([columns[name] for name in METRICS], axis=-1).astype(float))
    return np.stack(points)


@pytest.mark.parametrize("head", ["tiles", "full logits"])
def test_lens_metrics_match_float64_within_the_bound(tiny_model, head: str, monkeypatch) -> None:
    """Several vocabulary tiles, the last one partial; the full-logits path (a hooked head) as well."""
    d_vocab, d_model = tiny_model.cfg.d_vocab, tiny_model.cfg.d_model
    assert d_vocab > 96 and d_vocab % 96 != 0
    monkeypatch.setattr(decode, "VOCABULARY_TILE", 96)
    used = []
    monkeypatch.setattr(
        lens_module,
        "chunk_reference",
        lambda *args, **kwargs: used.append(chunk_reference(*args, **kwargs)) or used[-1],
    )
    generator = torch.Generator().manual_seed(0)
    residuals = [torch.randn(9, d_model, generator=generator) * scale for scale in (1.0, 3.0, 10.0)]
    targets = torch.randint(0, d_vocab, (9,), generator=generator)
    hooks = [("unembed.hook_out", lambda value, hook: value)] if head == "full logits" else []
    with torch.inference_mode(), tiny_model.hooks(fwd_hooks=hooks):
        [(_, got, _)] = list(lens_token_metrics(tiny_model, residuals, residuals[-1], targets))
    assert isinstance(used[0], TiledReference if head == "tiles" else LogitsReference)
    expected = _float64_lens(tiny_model, residuals, targets)
    for index, column in enumerate(METRICS):
        bound = LENS_BOUND if column in ("entropy_bits", "kl_to_final", "loss") else 0
        np.testing.assert_allclose(got[..., index].numpy(), expected[..., index], rtol=0, atol=bound, err_msg=column)


@pytest.mark.parametrize("head", ["tiles", "full logits"])
def test_the_last_point_reuses_the_reference_bit_for_bit(tiny_model, head: str, monkeypatch) -> None:
    """Passing the final residual itself as the last point gives what decoding a copy of it gives, and its top-1."""
    monkeypatch.setattr(decode, "VOCABULARY_TILE", 96)
    generator = torch.Generator().manual_seed(2)
    residuals = [torch.randn(7, tiny_model.cfg.d_model, generator=generator) * scale for scale in (1.0, 4.0)]
    targets = torch.randint(0, tiny_model.cfg.d_vocab, (7,), generator=generator)
    hooks = [("unembed.hook_out", lambda value, hook: value)] if head == "full logits" else []
    with torch.inference_mode(), tiny_model.hooks(fwd_hooks=hooks):
        [(_, reused, top1)] = list(lens_token_metrics(tiny_model, residuals, residuals[-1], targets))
        [(_, decoded, _)] = list(lens_token_metrics(tiny_model, residuals, residuals[-1].clone(), targets))
        final_logits = lens_logits(tiny_model, residuals[-1])
    assert torch.equal(reused, decoded)
    assert reused[-1, :, METRICS.index("kl_to_final")].eq(0).all()
    assert reused[-1, :, METRICS.index("agreement_with_final")].eq(1).all()
    assert torch.equal(top1, final_logits.argmax(-1))


def test_lens_columns_on_a_hand_example(tiny_model, monkeypatch) -> None:
    """A stand-in norm and head give the lens chosen probabilities: 0.6, 0.3, 0.1 against a final 0.1, 0.3, 0.6."""
    head = torch.nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.eye(3))
    monkeypatch.setattr(lens_module, "lens_input", lambda model, resid, scale=None: resid)
    monkeypatch.setattr(chunks_module, "tiled_linear", lambda model, residual: head)
    monkeypatch.setattr(tiny_model.cfg, "d_vocab", 3)
    lens, final = torch.tensor([[0.6, 0.3, 0.1]]).log(), torch.tensor([[0.1, 0.3, 0.6]]).log()
    with torch.inference_mode():
        [(_, metrics, _)] = list(lens_token_metrics(tiny_model, [lens], final, torch.tensor([1])))
    row = metrics[0, 0]
    assert row[METRICS.index("loss")].item() == pytest.approx(-math.log(0.3), rel=1e-5)
    assert row[METRICS.index("kl_to_final")].item() == pytest.approx(0.5 * math.log(6), rel=1e-5)
    assert row[METRICS.index("entropy_bits")].item() == pytest.approx(
        -sum(p * math.log2(p) for p in (0.6, 0.3, 0.1)), rel=1e-5
    )
    assert row[METRICS.index("accuracy")].item() == 0.0
    assert row[METRICS.index("true_token_rank")].item() == 1.0
    assert row[METRICS.index("agreement_with_final")].item() == 0.0


def test_a_non_finite_lens_logit_raises_naming_the_point(tiny_model) -> None:
    generator = torch.Generator().manual_seed(1)
    residuals = [torch.randn(2, tiny_model.cfg.d_model, generator=generator) for _ in range(5)]
    residuals[4][1, 2] = float("nan")
    with torch.inference_mode(), pytest.raises(NumericalError, match="point 4 at token 1"):
        list(lens_token_metrics(tiny_model, residuals, residuals[0], torch.tensor([0, 0])))


def test_top_tokens_has_a_row_per_point_position_and_rank(tiny_model) -> None:
    top = logit_lens_top_tokens(tiny_model, "The for statement", k=2)
    n_positions = len(tiny_model.tokenizer("The for statement", add_special_tokens=False)["input_ids"])
    assert len(top) == (tiny_model.cfg.n_layers + 1) * n_positions * 2
    assert top.position.min() == 1  # BOS gets no row
    assert top.probability.between(0, 1).all()
    first, second = top[top["rank"] == 0], top[top["rank"] == 1]
    assert (first.probability.to_numpy() >= second.probability.to_numpy()).all()
    assert top.top_token.map(lambda text: isinstance(text, str)).all()


@pytest.mark.parametrize("k", [0, -1])
def test_top_tokens_rejects_bad_k(tiny_model, k) -> None:
    with pytest.raises(ConfigError, match="k="):
        logit_lens_top_tokens(tiny_model, "text", k=k)


def test_top_tokens_rejects_an_empty_prompt(tiny_model) -> None:
    with pytest.raises(ConfigError, match="empty"):
        logit_lens_top_tokens(tiny_model, "")
