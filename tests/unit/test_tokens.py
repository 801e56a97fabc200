"""Unit tests of the token policy: scored positions, their targets, and the window checks."""

from __future__ import annotations

import doctest

import pytest
import torch

from stages_of_inference import tokens as tokens_module
from stages_of_inference.errors import ConfigError
from stages_of_inference.tokens import (
    MIN_SEQ_LEN,
    bos_token_id,
    check_windows,
    n_scored,
    prediction_targets,
    scored_positions,
    separator_token_id,
)


def test_doctests_pass() -> None:
    assert doctest.testmod(tokens_module).failed == 0


@pytest.mark.parametrize("seq_len", [MIN_SEQ_LEN, 4, 24, 256])
def test_each_scored_position_predicts_its_target(seq_len: int) -> None:
    """Position p (1 <= p <= seq_len - 2) is scored against token p + 1; BOS never is."""
    windows = torch.arange(2 * seq_len).reshape(2, seq_len)
    positions = range(seq_len)[scored_positions(seq_len)]
    assert list(positions) == list(range(1, seq_len - 1))
    assert n_scored(seq_len) == len(positions) == seq_len - 2
    targets = prediction_targets(windows)
    assert targets.shape == (2, n_scored(seq_len))
    assert torch.equal(targets, windows[:, [p + 1 for p in positions]])


def test_the_shortest_window_scores_exactly_one_prediction() -> None:
    assert n_scored(MIN_SEQ_LEN) == 1
    assert n_scored(MIN_SEQ_LEN - 1) == 0


@pytest.mark.parametrize("shape", [(2, MIN_SEQ_LEN), (1, 64)])
def test_check_windows_accepts_windows_long_enough(shape: tuple[int, int]) -> None:
    check_windows(torch.zeros(shape, dtype=torch.long), what="the test")


@pytest.mark.parametrize(
    ("tokens", "min_len", "match"),
    [
        (torch.zeros(0, 8, dtype=torch.long), MIN_SEQ_LEN, r"non-empty \[batch, pos\] tensor .*got shape \(0, 8\)"),
        (torch.zeros(8, dtype=torch.long), 1, r"non-empty \[batch, pos\] tensor .*got shape \(8,\)"),
        (torch.zeros(2, 2, 2, dtype=torch.long), 1, r"got shape \(2, 2, 2\)"),
        (torch.zeros(2, 2, dtype=torch.long), MIN_SEQ_LEN, "at least 3 tokens, BOS included, got windows of 2"),
        (torch.zeros(2, 1, dtype=torch.long), 2, "at least 2 tokens, BOS included, got windows of 1"),
    ],
    ids=["empty", "1-d", "3-d", "too-short-to-score", "bos-only"],
)
def test_check_windows_names_the_analysis_and_the_problem(tokens: torch.Tensor, min_len: int, match: str) -> None:
    with pytest.raises(ConfigError, match=f"^the logit lens needs .*{match}") as caught:
        check_windows(tokens, what="the logit lens", min_len=min_len)
    assert "\n" not in str(caught.value)


def test_min_len_is_a_floor_not_an_exact_length() -> None:
    check_windows(torch.zeros(3, 1, dtype=torch.long), what="the test", min_len=1)
    with pytest.raises(ConfigError):
        check_windows(torch.zeros(3, 1, dtype=torch.long), what="the test", min_len=2)


class _Tokenizer:
    def __init__(self, bos: int | None, eos: int | None) -> None:
        self.bos_token_id, self.eos_token_id = bos, eos


@pytest.mark.parametrize(("bos", "eos", "opening", "separator"), [(0, 1, 0, 1), (None, 7, 7, 7), (5, None, 5, 5)])
def test_bos_opens_windows_and_eos_separates_documents(bos, eos, opening: int, separator: int) -> None:
    tokenizer = _Tokenizer(bos, eos)
    assert bos_token_id(tokenizer) == opening
    assert separator_token_id(tokenizer) == separator


def test_a_tokenizer_without_bos_or_eos_is_refused() -> None:
    with pytest.raises(ConfigError, match="neither a BOS nor an EOS"):
        bos_token_id(_Tokenizer(None, None))
