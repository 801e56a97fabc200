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
    logit_lens,
    logit_lens_top_tokens,
)
from stages_of_inference.errors import ConfigError, NumericalError
from stages_of_inference.scoring.metrics import Distribution


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


def test_point_metrics_match_numpy() -> None:
    generator = torch.Generator().manual_seed(0)
    lens = torch.randn(5, 11, generator=generator) * 3
    final_logits = torch.randn(5, 11, generator=generator) * 3
    targets = torch.tensor([0, 3, 10, 4, 4])
    got = point_metrics(Distribution.from_logits(final_logits), lens, targets).numpy()
    q, p = torch.softmax(lens, -1).double().numpy(), torch.softmax(final_logits, -1).double().numpy()
    rows = np.arange(5)
    expected = {
        "entropy_bits": -(q * np.log2(q)).sum(-1),
        "kl_to_final": (p * np.log(p / q)).sum(-1),
        "loss": -np.log(q[rows, targets]),
        "accuracy": q.argmax(-1) == targets.numpy(),
        "true_token_rank": (q > q[rows, targets][:, None]).sum(-1),
        "agreement_with_final": q.argmax(-1) == p.argmax(-1),
    }
    for column, values in expected.items():
        np.testing.assert_allclose(got[:, METRICS.index(column)], values, rtol=1e-5, atol=1e-6, err_msg=column)


def test_point_metrics_columns_on_a_hand_example() -> None:
    lens = torch.tensor([[0.6, 0.3, 0.1]]).log()
    final = Distribution.from_logits(torch.tensor([[0.1, 0.3, 0.6]]).log())
    row = point_metrics(final, lens, torch.tensor([1]))[0]
    assert row[METRICS.index("loss")].item() == pytest.approx(-math.log(0.3), rel=1e-5)
    assert row[METRICS.index("kl_to_final")].item() == pytest.approx(0.5 * math.log(6), rel=1e-5)
    assert row[METRICS.index("accuracy")].item() == 0.0
    assert row[METRICS.index("true_token_rank")].item() == 1.0
    assert row[METRICS.index("agreement_with_final")].item() == 0.0
    assert true_token_rank(lens, torch.tensor([0])).item() == 0


def test_a_non_finite_lens_logit_raises_naming_the_point() -> None:
    final = Distribution.from_logits(torch.zeros(2, 3))
    lens = torch.zeros(2, 3)
    lens[1, 2] = float("nan")
    with pytest.raises(NumericalError, match="point 4 at token 1"):
        point_metrics(final, lens, torch.tensor([0, 0]), where="the logit lens at point 4")


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
