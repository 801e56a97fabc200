"""Unit tests of stages_of_inference.analyses.commit_depth on tiny random models of four architectures."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch

from stages_of_inference.analyses import commit_depth as commit_module
from stages_of_inference.analyses.commit_depth import (
    TOKEN_CLASSES,
    commit_depth,
    commit_points,
    token_class,
    token_classes,
)
from stages_of_inference.analyses.logit_lens import logit_lens

pytestmark = pytest.mark.usefixtures("single_thread")


def test_doctests_pass() -> None:
    assert doctest.testmod(commit_module).failed == 0


def brute_force_commit(agreement: list[list[bool]]) -> list[int]:
    """The rule spelled out: the first point from which every later point agrees (the last always does)."""
    n_points = len(agreement)
    commits = []
    for token in range(len(agreement[0])):
        agrees = [agreement[p][token] or p == n_points - 1 for p in range(n_points)]
        commits.append(next(p for p in range(n_points) if all(agrees[p:])))
    return commits


def test_commit_points_follow_the_rule_on_hand_built_top1_sequences() -> None:
    final = 7
    top1 = [  # lens top-1 at points 0..4 of five tokens (the last point is the output: 7)
        [3, 7, 7, 7, 7],  # settles at 1
        [7, 7, 7, 7, 7],  # at the embedding
        [7, 3, 7, 3, 7],  # only the output agrees for good
        [3, 3, 3, 3, 7],  # commits at the output
        [7, 7, 2, 7, 7],  # a late wobble
    ]
    agreement = torch.tensor(top1).t() == final
    assert commit_points(agreement).tolist() == [1, 0, 4, 4, 3]


def test_commit_points_match_brute_force_on_random_agreement() -> None:
    generator = torch.Generator().manual_seed(0)
    agreement = torch.rand(9, 200, generator=generator) < 0.7
    assert commit_points(agreement).tolist() == brute_force_commit(agreement.tolist())


@pytest.mark.parametrize(
    ("token", "text", "expected"),
    [
        ("Ġthe", " the", "word_initial"),  # byte-level BPE (SmolLM2)
        ("the", "the", "continuation"),
        ("ing", "ing", "continuation"),
        ("Ġ2024", " 2024", "digits"),
        ("7", "7", "digits"),
        (".", ".", "punctuation"),
        ("Ġ(", " (", "punctuation"),
        ("Ġ+", " +", "punctuation"),  # symbols count as punctuation
        ("Ċ", "\n", "other"),
        ("ĠĠ", "  ", "other"),
        ("▁the", "the", "word_initial"),  # SentencePiece (Gemma 3): decode may drop the space
        ("▁The", " The", "word_initial"),
        ("ation", "ation", "continuation"),
        ("▁", " ", "other"),
        ("3", "3", "digits"),
        ("▁1", " 1", "digits"),
        ("▁—", " —", "punctuation"),
        ("…", "…", "punctuation"),
        ("\n\n", "\n\n", "other"),
    ],
)
def test_token_class_rule_on_both_conventions(token, text, expected) -> None:
    assert token_class(token, text) == expected


def test_special_tokens_are_other(tiny_tokenizer) -> None:
    ids = [tiny_tokenizer.bos_token_id, *tiny_tokenizer(" the", add_special_tokens=False)["input_ids"]]
    assert token_classes(tiny_tokenizer, ids)[0] == "other"
    assert token_classes(tiny_tokenizer, ids)[1] == "word_initial"


def test_per_token_table_and_the_exit_curve(tiny_model, tiny_tokens) -> None:
    result = commit_depth(tiny_model, tiny_tokens, batch_size=2, progress=False)
    per_token = result.per_token
    batch, pos = tiny_tokens.shape
    n_layers = tiny_model.cfg.n_layers
    assert len(per_token) == batch * (pos - 2)
    assert per_token.sequence.tolist() == np.repeat(np.arange(batch), pos - 2).tolist()
    assert per_token.position.tolist() == list(range(1, pos - 1)) * batch
    assert per_token.target.tolist() == tiny_tokens[:, 2:].flatten().tolist()
    assert per_token.commit_point.between(0, n_layers).all()
    assert set(per_token.token_class) <= set(TOKEN_CLASSES)

    curve = result.exit_curve(n_bootstrap=200)
    assert curve.point.tolist() == list(range(n_layers + 1))
    last = curve.iloc[-1]
    assert last.accuracy == per_token.correct.mean()  # exiting at the output is the model itself, exactly
    assert last.agreement == 1.0
    for column in ("accuracy", "agreement", "kl_to_final"):
        assert (curve[f"{column}_ci_low"] <= curve[column] + 1e-12).all()
        assert (curve[column] <= curve[f"{column}_ci_high"] + 1e-12).all()

    lens = logit_lens(tiny_model, tiny_tokens, batch_size=2, progress=False)
    np.testing.assert_allclose(curve.accuracy, lens.accuracy, rtol=0, atol=1e-12)
    np.testing.assert_allclose(curve.agreement, lens.agreement_with_final, rtol=0, atol=1e-12)
    np.testing.assert_allclose(curve.kl_to_final, lens.kl_to_final, rtol=1e-9, atol=1e-12)
    # a token committed by point p agrees at p: the committed share never exceeds the agreement
    committed = result.distribution().fraction.cumsum().to_numpy()
    assert (committed <= lens.agreement_with_final.to_numpy() + 1e-12).all()


def test_distribution_and_classes_account_for_every_token(tiny_model, tiny_tokens) -> None:
    result = commit_depth(tiny_model, tiny_tokens, progress=False)
    distribution = result.distribution()
    assert distribution.n_tokens.sum() == len(result.per_token)
    assert distribution.fraction.sum() == pytest.approx(1.0)
    by_class = result.by_class()
    assert by_class.n_tokens.sum() == len(result.per_token)
    assert (by_class.q25_depth <= by_class.median_depth).all()
    assert (by_class.median_depth <= by_class.q75_depth).all()
    assert by_class.token_class.tolist() == [c for c in TOKEN_CLASSES if c in set(result.per_token.token_class)]
