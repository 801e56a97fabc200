"""What survives an intervention: per-token metrics, their means and confidence intervals.

Every metric is computed on the same (position -> next token) pairs. The BOS policy
(see :mod:`stages_of_inference.corpus`): position 0 of every window is BOS, and the
prediction made *at* BOS is not scored, so a window of ``T`` tokens scores the pairs
``p -> p + 1`` for ``p = 1 .. T - 2`` (:func:`scored_positions`).

Per token, comparing an intervened model with the original one:

* ``kl``: KL(original || intervened) in nats, ``sum p_orig (log p_orig - log p_int)``;
* ``agreement``: the intervened argmax equals the original argmax (top-1 agreement);
* ``correct`` / ``baseline_correct``: the argmax equals the true next token;
* ``loss`` / ``baseline_loss``: cross-entropy of the true next token, nats;
* ``entropy_bits`` / ``baseline_entropy_bits``: entropy of the next-token distribution.

The functions work on any chunk of tokens so that callers can stream a
262,144-wide vocabulary through memory a few hundred tokens at a time. Means over
many sequences come with percentile-bootstrap confidence intervals that resample
whole sequences (tokens within a sequence are not independent).

A non-finite logit, a probability row that does not sum to one, a negative KL or an
entropy above ``log2(vocab)`` raises :class:`NumericalError` naming where it happened,
instead of entering an average.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from stages_of_inference.errors import NumericalError
from stages_of_inference.scoring.workspace import Workspace
from stages_of_inference.tokens import n_scored, prediction_targets, scored_positions

LN2 = math.log(2.0)
KL_TOLERANCE = 1e-4
"""How far below zero a KL may fall from float32 rounding before it counts as an error."""
PROBABILITY_SUM_TOLERANCE = 1e-3

TOKEN_METRICS = (
    "kl",
    "agreement",
    "correct",
    "baseline_correct",
    "loss",
    "baseline_loss",
    "entropy_bits",
    "baseline_entropy_bits",
)
"""The per-token metrics, in the order :func:`compare_predictions` returns them."""


@dataclass
class Distribution:
    """A chunk of next-token distributions with the statistics every comparison needs."""

    log_probs: Float[Tensor, "n d_vocab"]
    probs: Float[Tensor, "n d_vocab"]
    top1: Int[Tensor, " n"]
    entropy_bits: Float[Tensor, " n"]

    @classmethod
    def from_logits(cls, logits: Float[Tensor, "n d_vocab"], where: str = "the original model") -> Distribution:
        """Normalise logits; raise NumericalError on non-finite values or bad rows."""
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        probs = log_probs.exp()
        entropy = -(probs * log_probs).sum(-1) / LN2
        row_sums = probs.sum(-1)
        _check_rows_finite(logits, where, entropy, row_sums)
        check_probability_sums(row_sums, where)
        check_entropy(entropy, logits.shape[-1], where)
        return cls(log_probs=log_probs, probs=probs, top1=logits.argmax(-1), entropy_bits=entropy)


def check_finite(logits: Tensor, where: str) -> None:
    """Raise NumericalError naming the first token whose logits contain NaN or infinity."""
    check_finite_rows(torch.isfinite(logits).all(dim=-1), where)


def check_finite_rows(finite: Bool[Tensor, " n"], where: str) -> None:
    """Raise NumericalError naming the first token whose row (of logits, or of metrics) is not finite."""
    if not bool(finite.all()):
        token = int((~finite).nonzero()[0, 0]) if finite.ndim else 0
        raise NumericalError(f"non-finite logit in {where} at token {token}; the run is stopped, not averaged")


def _check_rows_finite(logits: Tensor, where: str, *row_values: Tensor) -> None:
    """Check per-row results, not every logit: a NaN or infinite logit makes them non-finite.

    Only when a row is bad are the logits scanned, to name the token.
    """
    if all(bool(torch.isfinite(values).all()) for values in row_values):
        return
    check_finite(logits, where)
    raise NumericalError(f"a non-finite metric in {where} from finite logits; the run is stopped, not averaged")


def check_probability_sums(row_sums: Float[Tensor, " n"], where: str) -> None:
    """Raise NumericalError if a token's probabilities do not sum to one within :data:`PROBABILITY_SUM_TOLERANCE`."""
    row_error = (row_sums - 1).abs()
    if float(row_error.max()) > PROBABILITY_SUM_TOLERANCE:
        row = int(row_error.argmax())
        raise NumericalError(f"probabilities of {where} sum to {1 + float(row_error[row]):.6f} at token {row}")


def check_entropy(entropy: Float[Tensor, " n"], vocab: int, where: str) -> None:
    """Raise NumericalError if an entropy (bits) lies outside ``[0, log2(vocab)]`` beyond rounding."""
    limit = math.log2(vocab) + 1e-3
    if float(entropy.max()) > limit or float(entropy.min()) < -1e-3:
        token = int((entropy - limit).argmax()) if float(entropy.max()) > limit else int(entropy.argmin())
        raise NumericalError(
            f"entropy {float(entropy[token]):.4f} bits of {where} at token {token} is outside [0, log2(vocab)]"
        )


def check_kl(kl: Float[Tensor, " n"], where: str) -> Float[Tensor, " n"]:
    """The KL divergences with float32 rounding below zero clamped to 0; NumericalError below -KL_TOLERANCE."""
    if float(kl.min()) < -KL_TOLERANCE:
        token = int(kl.argmin())
        raise NumericalError(f"KL {float(kl[token]):.3g} < 0 for {where} at token {token}")
    return kl.clamp_min(0.0)


def compare_predictions(
    baseline: Distribution,
    logits: Float[Tensor, "n d_vocab"],
    targets: Int[Tensor, " n"],
    where: str = "the intervened model",
    *,
    workspace: Workspace | None = None,
) -> dict[str, Float[Tensor, " n"]]:
    """Per-token metrics of intervened logits against the original distribution.

    The metrics are measurements, computed without gradients; ``logits`` are not
    modified. Every full-vocabulary intermediate is written into ``workspace``'s
    buffers, so a caller scoring many chunks of the same shape allocates them once.

    Args:
        baseline: The original model's distribution on the same tokens.
        logits: The intervened model's logits.
        targets: The true next tokens.
        where: Named in a NumericalError (e.g. "delete layer 5").
        workspace: Buffers to reuse across calls (a fresh one when omitted).

    Returns:
        One float tensor per name of :data:`TOKEN_METRICS`.

    Example:
        >>> base = Distribution.from_logits(torch.tensor([[2.0, 0.0, 0.0]]))
        >>> metrics = compare_predictions(base, torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([0]))
        >>> float(metrics["kl"][0]), float(metrics["agreement"][0]), float(metrics["correct"][0])
        (0.0, 1.0, 1.0)
    """
    workspace = workspace or Workspace()
    with torch.no_grad():
        logits = logits.float()
        log_probs = torch.log_softmax(logits, dim=-1, out=workspace.like("log_probs", logits))
        scratch = workspace.like("scratch", logits)
        kl = torch.sub(baseline.log_probs, log_probs, out=scratch).mul_(baseline.probs).sum(-1)
        entropy = -torch.exp(log_probs, out=scratch).mul_(log_probs).sum(-1) / LN2
        _check_rows_finite(logits, where, kl, entropy)
        kl = check_kl(kl, where)
        check_entropy(entropy, logits.shape[-1], where)
        top1 = logits.argmax(-1)
        targets = targets.unsqueeze(-1)
        return {
            "kl": kl,
            "agreement": (top1 == baseline.top1).float(),
            "correct": (top1 == targets[:, 0]).float(),
            "baseline_correct": (baseline.top1 == targets[:, 0]).float(),
            "loss": -log_probs.gather(-1, targets)[:, 0],
            "baseline_loss": -baseline.log_probs.gather(-1, targets)[:, 0],
            "entropy_bits": entropy,
            "baseline_entropy_bits": baseline.entropy_bits,
        }


def true_token_rank(
    scores: Float[Tensor, "rows d_vocab"], targets: Int[Tensor, " rows"], out: Tensor | None = None
) -> Int[Tensor, " rows"]:
    """How many tokens score strictly higher than the target (0 = the target is top-1).

    ``scores`` are logits or log-probabilities (the ranking is the same); ``out``, a
    boolean buffer of their shape, avoids allocating the comparison.

    Example:
        >>> true_token_rank(torch.tensor([[0.1, 0.7, 0.2]]).log(), torch.tensor([2])).tolist()
        [1]
    """
    target_scores = scores.gather(-1, targets.unsqueeze(-1))
    return torch.gt(scores, target_scores, out=out).sum(-1)


def token_metrics(
    baseline_logits: Float[Tensor, "batch pos d_vocab"],
    logits: Float[Tensor, "batch pos d_vocab"],
    tokens: Int[Tensor, "batch pos"],
) -> dict[str, Float[Tensor, "batch scored"]]:
    """Per-token metrics of a whole intervened forward pass (BOS policy applied).

    Convenient for single interventions in a notebook; the sweep streams the same
    computation chunk by chunk.

    Example:
        >>> tokens = torch.tensor([[0, 1, 2, 1]])
        >>> logits = torch.randn(1, 4, 3)
        >>> token_metrics(logits, logits, tokens)["kl"].shape
        torch.Size([1, 2])
    """
    positions = scored_positions(tokens.shape[1])
    batch, scored = tokens.shape[0], n_scored(tokens.shape[1])
    flat = lambda x: x[:, positions].reshape(batch * scored, -1)
    baseline = Distribution.from_logits(flat(baseline_logits))
    metrics = compare_predictions(baseline, flat(logits), prediction_targets(tokens).reshape(-1))
    return {name: values.reshape(batch, scored) for name, values in metrics.items()}
