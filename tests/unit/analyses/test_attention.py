"""Unit tests of stages_of_inference.attention on tiny random models and hand-made patterns."""

from __future__ import annotations

import doctest

import pytest
import torch

from stages_of_inference.analyses import attention as attention_module
from stages_of_inference.analyses.attention import (
    first_query,
    previous_token_attention,
    previous_token_weight,
)
from stages_of_inference.errors import ConfigError


def test_doctests_pass() -> None:
    assert doctest.testmod(attention_module).failed == 0


def test_layer_table_has_one_row_per_layer(tiny_model, tiny_tokens) -> None:
    table = previous_token_attention(tiny_model, tiny_tokens, k=3)
    n_layers = tiny_model.cfg.n_layers
    assert table.columns.tolist() == ["layer", "relative_depth", "mean", "sem", "n_documents"]
    assert table.layer.tolist() == list(range(n_layers))
    assert table.relative_depth.tolist() == [layer / (n_layers - 1) for layer in range(n_layers)]
    assert (table.n_documents == tiny_tokens.shape[0]).all()


def test_weights_are_probabilities_and_sem_is_nonnegative(tiny_model, tiny_tokens) -> None:
    table = previous_token_attention(tiny_model, tiny_tokens, k=5, by="head")
    assert table["mean"].between(0, 1).all()
    assert (table["sem"] >= 0).all()


def test_head_table_averages_to_the_layer_table(tiny_model, tiny_tokens) -> None:
    heads = previous_token_attention(tiny_model, tiny_tokens, k=2, by="head")
    layers = previous_token_attention(tiny_model, tiny_tokens, k=2, by="layer")
    assert len(heads) == tiny_model.cfg.n_layers * tiny_model.cfg.n_heads
    assert heads.groupby("layer")["mean"].mean().tolist() == pytest.approx(layers["mean"].tolist())


def test_a_single_document_has_nan_sem(tiny_model, tiny_tokens) -> None:
    table = previous_token_attention(tiny_model, tiny_tokens[:1], k=2)
    assert table["sem"].isna().all() and table["mean"].notna().all()


def test_uniform_causal_attention_gives_one_over_q_plus_one() -> None:
    """Query q spreads 1/(q+1) over keys 0..q; the counted queries are k+1..T-1."""
    n_pos, k = 8, 2
    pattern = torch.tril(torch.ones(n_pos, n_pos)) / torch.arange(1, n_pos + 1).unsqueeze(1)
    weight = previous_token_weight(pattern.reshape(1, 1, n_pos, n_pos), k, first_query(k))
    expected = sum(1 / (q + 1) for q in range(k + 1, n_pos)) / (n_pos - k - 1)
    assert weight.item() == pytest.approx(expected)


def test_bos_keys_are_never_counted() -> None:
    """All attention on BOS (key 0) gives 0 with exclude_bos, > 0 without."""
    pattern = torch.zeros(1, 1, 6, 6)
    pattern[..., 0] = 1.0
    assert previous_token_weight(pattern, 3, first_query(3, exclude_bos=True)).item() == 0.0
    assert previous_token_weight(pattern, 3, first_query(3, exclude_bos=False)).item() > 0.0


@pytest.mark.parametrize(
    ("k", "seq_len", "exclude_bos", "match"),
    [(0, 10, True, "at least 1"), (-3, 10, True, "at least 1"), (9, 10, True, "k <= 8"), (10, 10, False, "k <= 9")],
)
def test_bad_k_raises_config_error(tiny_model, k, seq_len, exclude_bos, match) -> None:
    tokens = torch.zeros(2, seq_len, dtype=torch.long)
    with pytest.raises(ConfigError, match=match):
        previous_token_attention(tiny_model, tokens, k=k, exclude_bos=exclude_bos)


def test_largest_allowed_k_runs(tiny_model) -> None:
    tokens = torch.arange(2, 12).reshape(1, 10)
    assert len(previous_token_attention(tiny_model, tokens, k=8)) == tiny_model.cfg.n_layers


@pytest.mark.parametrize(
    ("tokens", "by"),
    [
        (torch.zeros(0, 8, dtype=torch.long), "layer"),
        (torch.zeros(8, dtype=torch.long), "layer"),
        (torch.zeros(2, 8, dtype=torch.long), "heads"),
    ],
    ids=["empty", "1-d", "bad-by"],
)
@pytest.mark.usefixtures("unchecked_shapes")  # malformed on purpose: our ConfigError must answer
def test_bad_input_raises_config_error(tiny_model, tokens, by) -> None:
    with pytest.raises(ConfigError):
        previous_token_attention(tiny_model, tokens, k=2, by=by)
