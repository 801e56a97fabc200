"""Unit tests of stages_of_inference.metrics against hand-computed values on tiny vocabularies."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from stages_of_inference.errors import NumericalError
from stages_of_inference.scoring import metrics as metrics_module
from stages_of_inference.scoring import summary as summary_module
from stages_of_inference.scoring.metrics import (
    TOKEN_METRICS,
    Distribution,
    check_entropy,
    compare_predictions,
    token_metrics,
)
from stages_of_inference.scoring.summary import SUMMARY_METRICS, summarize
from stages_of_inference.scoring.workspace import Workspace
from stages_of_inference.tokens import prediction_targets, scored_positions


def logits_of(probabilities) -> torch.Tensor:
    return torch.tensor(np.log(np.asarray(probabilities, dtype=np.float64)), dtype=torch.float32)


def kl_np(p, q) -> float:
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    return float(np.sum(p * (np.log(p) - np.log(q))))


def entropy_bits_np(p) -> float:
    p = np.asarray(p, np.float64)
    return float(-np.sum(p * np.log2(p)))


def test_doctests_pass() -> None:
    assert doctest.testmod(metrics_module).failed == 0
    assert doctest.testmod(summary_module).failed == 0


# ---------------------------------------------------------------- Distribution


def test_distribution_of_known_probabilities() -> None:
    p = [[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]]
    dist = Distribution.from_logits(logits_of(p) + 3.0)  # a shift does not change the distribution
    np.testing.assert_allclose(dist.probs.numpy(), p, atol=1e-6)
    np.testing.assert_allclose(dist.log_probs.numpy(), np.log(p), atol=1e-6)
    np.testing.assert_allclose(dist.entropy_bits.numpy(), [1.5, entropy_bits_np(p[1])], atol=1e-6)
    assert dist.top1.tolist() == [0, 2]


@pytest.mark.parametrize("vocab", [2, 3, 4, 5])
def test_uniform_distribution_has_log2_vocab_bits(vocab) -> None:
    dist = Distribution.from_logits(torch.full((2, vocab), 7.0))
    np.testing.assert_allclose(dist.entropy_bits.numpy(), [math.log2(vocab)] * 2, atol=1e-6)


def test_peaked_distribution_has_near_zero_entropy() -> None:
    dist = Distribution.from_logits(torch.tensor([[60.0, 0.0, 0.0, 0.0]]))
    assert 0.0 <= float(dist.entropy_bits[0]) < 1e-20


# ---------------------------------------------------------------- compare_predictions


def test_compare_predictions_against_hand_computed_values() -> None:
    p = [[0.5, 0.25, 0.25], [0.2, 0.2, 0.6], [0.7, 0.2, 0.1]]
    q = [[0.25, 0.5, 0.25], [0.1, 0.3, 0.6], [0.6, 0.3, 0.1]]
    targets = torch.tensor([1, 0, 0])
    baseline = Distribution.from_logits(logits_of(p))
    got = compare_predictions(baseline, logits_of(q), targets)
    assert list(got) == list(TOKEN_METRICS)
    expected = {
        "kl": [kl_np(a, b) for a, b in zip(p, q, strict=True)],
        # argmax p = 0, 2, 0; argmax q = 1, 2, 0
        "agreement": [0.0, 1.0, 1.0],
        "correct": [1.0, 0.0, 1.0],
        "baseline_correct": [0.0, 0.0, 1.0],
        "loss": [-math.log(0.5), -math.log(0.1), -math.log(0.6)],
        "baseline_loss": [-math.log(0.25), -math.log(0.2), -math.log(0.7)],
        "entropy_bits": [entropy_bits_np(r) for r in q],
        "baseline_entropy_bits": [entropy_bits_np(r) for r in p],
    }
    assert expected["kl"][0] == pytest.approx(0.25 * math.log(2))
    assert expected["entropy_bits"][0] == pytest.approx(1.5)
    for name, values in expected.items():
        np.testing.assert_allclose(got[name].numpy(), values, atol=1e-6, err_msg=name)


def test_kl_is_zero_for_identical_and_direction_is_original_to_intervened() -> None:
    p, q = [[0.9, 0.05, 0.05]], [[1 / 3, 1 / 3, 1 / 3]]
    same = compare_predictions(Distribution.from_logits(logits_of(p)), logits_of(p), torch.tensor([0]))
    assert float(same["kl"][0]) == 0.0
    forward = compare_predictions(Distribution.from_logits(logits_of(p)), logits_of(q), torch.tensor([0]))
    backward = compare_predictions(Distribution.from_logits(logits_of(q)), logits_of(p), torch.tensor([0]))
    assert float(forward["kl"][0]) == pytest.approx(kl_np(p[0], q[0]), abs=1e-6)
    assert float(backward["kl"][0]) == pytest.approx(kl_np(q[0], p[0]), abs=1e-6)
    assert kl_np(p[0], q[0]) != pytest.approx(kl_np(q[0], p[0]), abs=1e-3)


# ---------------------------------------------------------------- BOS policy


def test_scored_positions_and_targets() -> None:
    assert scored_positions(5) == slice(1, 4)
    assert list(range(10)[scored_positions(10)]) == list(range(1, 9))
    tokens = torch.tensor([[0, 3, 1, 4, 2], [0, 2, 2, 1, 3]])
    assert prediction_targets(tokens).tolist() == [[1, 4, 2], [2, 1, 3]]


def aligned_logits(tokens: torch.Tensor, vocab: int, shift: int) -> torch.Tensor:
    """Logits whose argmax at position p is tokens[p + shift] (clamped)."""
    batch, pos = tokens.shape
    logits = torch.zeros(batch, pos, vocab)
    for b in range(batch):
        for p in range(pos):
            logits[b, p, tokens[b, min(p + shift, pos - 1)]] = 5.0
    return logits


def test_metrics_pair_each_position_with_the_next_token() -> None:
    tokens = torch.tensor([[0, 3, 1, 4, 2], [0, 2, 4, 1, 3]])
    right = aligned_logits(tokens, 5, shift=1)
    wrong = aligned_logits(tokens, 5, shift=0)  # predicts the current token: never the next here
    got = token_metrics(right, wrong, tokens)
    assert got["kl"].shape == (2, 3)
    assert got["baseline_correct"].tolist() == [[1.0] * 3] * 2
    assert got["correct"].tolist() == [[0.0] * 3] * 2
    assert got["agreement"].tolist() == [[0.0] * 3] * 2


def test_prediction_at_bos_and_at_the_last_position_is_never_scored() -> None:
    torch.manual_seed(0)
    tokens = torch.tensor([[0, 3, 1, 4, 2, 1], [0, 2, 4, 1, 3, 3]])
    base, other = torch.randn(2, 6, 5), torch.randn(2, 6, 5)
    reference = token_metrics(base, other, tokens)
    for position in (0, 5):
        for which in ("base", "other", "both"):
            b, o = base.clone(), other.clone()
            if which in ("base", "both"):
                b[:, position] = torch.randn(2, 5) * 10
            if which in ("other", "both"):
                o[:, position] = torch.randn(2, 5) * 10
            changed = token_metrics(b, o, tokens)
            for name in TOKEN_METRICS:
                assert torch.equal(changed[name], reference[name]), (position, which, name)
    # ...whereas a scored position does change the metrics
    o = other.clone()
    o[:, 1] = torch.randn(2, 5) * 10
    assert not torch.equal(token_metrics(base, o, tokens)["kl"], reference["kl"])


# ---------------------------------------------------------------- numerical guards


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_logits_raise_naming_the_token(bad) -> None:
    logits = torch.zeros(4, 3)
    logits[2, 1] = bad
    with pytest.raises(NumericalError, match="at token 2"):
        Distribution.from_logits(logits, where="my baseline")
    with pytest.raises(NumericalError, match="my baseline"):
        Distribution.from_logits(logits, where="my baseline")
    baseline = Distribution.from_logits(torch.zeros(4, 3))
    with pytest.raises(NumericalError, match=r"delete layer 7 at token 2"):
        compare_predictions(baseline, logits, torch.zeros(4, dtype=torch.long), where="delete layer 7")
    tokens = torch.zeros(1, 6, dtype=torch.long)
    full = torch.zeros(1, 6, 3)
    full[0, 3, 0] = bad  # position 3 is the third scored token (index 2)
    with pytest.raises(NumericalError, match="at token 2"):
        token_metrics(torch.zeros(1, 6, 3), full, tokens)
    with pytest.raises(NumericalError):
        token_metrics(full, torch.zeros(1, 6, 3), tokens)


def test_non_finite_logits_at_unscored_positions_are_ignored() -> None:
    tokens = torch.zeros(1, 6, dtype=torch.long)
    logits = torch.zeros(1, 6, 3)
    logits[0, 0] = float("nan")
    logits[0, 5] = float("inf")
    assert float(token_metrics(logits, logits, tokens)["kl"].sum()) == 0.0


def test_entropy_guard() -> None:
    check_entropy(torch.tensor([0.0, 2.0, 1.0]), 4, "x")  # within [0, log2 4]
    with pytest.raises(NumericalError, match=r"token 1 is outside"):
        check_entropy(torch.tensor([1.0, 2.1, 0.5]), 4, "x")
    with pytest.raises(NumericalError, match="token 2"):
        check_entropy(torch.tensor([1.0, 0.5, -0.01]), 4, "x")


def test_kl_guard_raises_on_negative_kl_and_clamps_rounding() -> None:
    q = logits_of([[0.9, 0.1]])
    inconsistent = Distribution(
        log_probs=torch.log(torch.tensor([[0.1, 0.9]])),
        probs=torch.tensor([[1.0, 0.0]]),
        top1=torch.tensor([0]),
        entropy_bits=torch.tensor([0.0]),
    )
    with pytest.raises(NumericalError, match=r"KL .* < 0 for swap 3 at token 0"):
        compare_predictions(inconsistent, q, torch.tensor([0]), where="swap 3")
    p = torch.tensor([[0.9, 0.1]])
    rounding = Distribution(
        log_probs=torch.log(p) - 1e-6, probs=p, top1=torch.tensor([0]), entropy_bits=torch.tensor([0.47])
    )
    kl = compare_predictions(rounding, torch.log(p), torch.tensor([0]))["kl"]
    assert float(kl[0]) == 0.0


# ---------------------------------------------------------------- summarize


def sums_for(n_sequences: int, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    n_tokens = rng.integers(5, 30, size=n_sequences).astype(float)
    sums = {name: rng.uniform(0, 1, n_sequences) * n_tokens for name in TOKEN_METRICS}
    sums["correct"] = np.floor(sums["correct"])
    sums["baseline_correct"] = np.ceil(sums["baseline_correct"])
    return sums, n_tokens


def test_summarize_means_are_token_weighted() -> None:
    n_tokens = np.array([1.0, 3.0])
    sums = {name: np.array([1.0, 0.0]) for name in TOKEN_METRICS}
    sums["baseline_correct"] = np.array([1.0, 3.0])
    summary = summarize(sums, n_tokens, n_bootstrap=0)
    assert summary["kl"] == pytest.approx(0.25)  # not (1/1 + 0/3) / 2 = 0.5
    assert summary["baseline_accuracy"] == 1.0
    assert summary["relative_accuracy"] == pytest.approx(0.25)
    assert summary["n_tokens"] == 4.0 and summary["n_sequences"] == 2.0


def test_summarize_columns_and_intervals_bracket_the_mean() -> None:
    sums, n_tokens = sums_for(20)
    summary = summarize(sums, n_tokens, n_bootstrap=300, seed=1)
    columns = [*SUMMARY_METRICS, "relative_accuracy"]
    for column in columns:
        point = summary[column]
        low, high = summary[f"{column}_ci_low"], summary[f"{column}_ci_high"]
        assert low <= point <= high, column
        assert low < high, column
    for column, metric in SUMMARY_METRICS.items():
        assert summary[column] == pytest.approx(sums[metric].sum() / n_tokens.sum())
    assert summary["relative_accuracy"] == pytest.approx(summary["accuracy"] / summary["baseline_accuracy"])


def test_summarize_without_bootstrap_gives_nan_intervals() -> None:
    sums, n_tokens = sums_for(6)
    summary = summarize(sums, n_tokens, n_bootstrap=0)
    for column in [*SUMMARY_METRICS, "relative_accuracy"]:
        assert math.isfinite(summary[column])
        assert math.isnan(summary[f"{column}_ci_low"]) and math.isnan(summary[f"{column}_ci_high"])


def test_summarize_is_deterministic_for_a_seed() -> None:
    sums, n_tokens = sums_for(10)
    first = summarize(sums, n_tokens, n_bootstrap=200, seed=3)
    again = summarize(sums, n_tokens, n_bootstrap=200, seed=3)
    other = summarize(sums, n_tokens, n_bootstrap=200, seed=4)
    assert first == again
    assert first["kl_ci_low"] != other["kl_ci_low"]
    assert first["kl"] == other["kl"]


def test_relative_accuracy_is_nan_when_the_baseline_never_is_right() -> None:
    sums, n_tokens = sums_for(5)
    sums["baseline_correct"] = np.zeros(5)
    summary = summarize(sums, n_tokens, n_bootstrap=20)
    assert math.isnan(summary["relative_accuracy"])


def test_wider_confidence_gives_wider_intervals() -> None:
    sums, n_tokens = sums_for(15)
    narrow = summarize(sums, n_tokens, n_bootstrap=300, confidence=0.5)
    wide = summarize(sums, n_tokens, n_bootstrap=300, confidence=0.99)
    assert wide["loss_ci_low"] < narrow["loss_ci_low"] < narrow["loss_ci_high"] < wide["loss_ci_high"]


# ---------------------------------------------------------------- properties


@st.composite
def logit_pairs(draw):
    vocab = draw(st.integers(2, 50))
    n = draw(st.integers(1, 4))
    values = st.floats(-30, 30, allow_nan=False, allow_infinity=False, width=32)
    shape = st.lists(st.lists(values, min_size=vocab, max_size=vocab), min_size=n, max_size=n)
    first, second = torch.tensor(draw(shape)), torch.tensor(draw(shape))
    targets = torch.tensor(draw(st.lists(st.integers(0, vocab - 1), min_size=n, max_size=n)))
    return first, second, targets


@settings(max_examples=60, deadline=None)
@given(logit_pairs())
def test_metric_ranges_for_random_logits(pair) -> None:
    first, second, targets = pair
    vocab = first.shape[-1]
    baseline = Distribution.from_logits(first)
    got = compare_predictions(baseline, second, targets)
    assert (got["kl"] >= 0).all()
    for name in ("agreement", "correct", "baseline_correct"):
        assert set(got[name].tolist()) <= {0.0, 1.0}
    for name in ("entropy_bits", "baseline_entropy_bits"):
        assert (got[name] >= 0).all() and (got[name] <= math.log2(vocab) + 1e-4).all()
    assert (got["loss"] >= 0).all() and (got["baseline_loss"] >= 0).all()
    same = compare_predictions(baseline, first.clone(), targets)
    assert (same["kl"] == 0).all()
    assert (same["agreement"] == 1).all()
    assert torch.equal(same["loss"], same["baseline_loss"])
    assert torch.equal(same["correct"], same["baseline_correct"])


def test_a_reused_workspace_gives_the_same_metrics_and_leaves_logits_alone() -> None:
    generator = torch.Generator().manual_seed(1)
    workspace = Workspace()
    for rows in (7, 3, 7):  # a shorter chunk, then a full one again, through the same buffers
        base = Distribution.from_logits(torch.randn(rows, 13, generator=generator))
        logits = torch.randn(rows, 13, generator=generator)
        untouched = logits.clone()
        targets = torch.randint(0, 13, (rows,), generator=generator)
        reused = compare_predictions(base, logits, targets, workspace=workspace)
        fresh = compare_predictions(base, logits, targets)
        assert torch.equal(logits, untouched)
        for name in TOKEN_METRICS:
            assert torch.equal(reused[name], fresh[name]), name
