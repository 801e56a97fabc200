"""Scoring intervened models against the original one, a chunk of tokens at a time.

The sweep decodes the original model's final residual of a chunk of tokens once, then
compares the final residual of every intervention with it. :func:`chunk_reference`
decodes the original and returns the object whose ``compare`` gives the per-token
metrics of :mod:`stages_of_inference.scoring.metrics` (same names, same definitions, same
checks):

* :class:`TiledReference` when the head can be computed by vocabulary tiles
  (:func:`~stages_of_inference.scoring.decode.tiled_linear`, float32). An intervention's
  logits are never written out whole: each ``[tile, tokens]`` block of them, fresh
  from the matrix product and still in the cache, is reduced to a few per-token
  sums, and the metrics are combined from these sums in float64.
* :class:`LogitsReference` otherwise: full logits through the head, then
  :func:`~stages_of_inference.scoring.metrics.compare_predictions`.

The sums, for vocabulary tile ``k``, token ``j`` and the tile's largest logit ``m_k``::

    s_k = sum exp(z - m_k)      t_k = sum exp(z - m_k) (z - m_k)      c_k = sum p_orig (z_orig - z)

combine, with ``M = max_k m_k`` and ``w_k = exp(m_k - M)``, into::

    s = sum_k w_k s_k            logsumexp = M + log s
    entropy = log s - sum_k w_k (t_k + (m_k - M) s_k) / s
    KL(orig || int) = sum_k c_k + (logsumexp - logsumexp_orig) sum p_orig
    loss = logsumexp - z_target

Every term is a sum of bounded, well-scaled quantities (``z - m_k <= 0``;
``z_orig - z`` is small when the intervention is), so the float32 tiles lose no
accuracy against full-row float32 arithmetic (``docs/design.md`` has the measured
errors against float64), and an intervention that changes nothing has a KL of
exactly 0. Top-1 is the first largest logit, as ``argmax`` gives it.

``compare(..., rank=True)`` adds ``true_token_rank``, the number of vocabulary entries
whose logit is strictly above the target's (what the logit lens reports). The full-logits
path counts it with :func:`~stages_of_inference.scoring.metrics.true_token_rank`; the
tiled path counts it tile by tile, exactly, although the target's own logit is only
known once its tile has been computed:

* before the pass, the target's logit is estimated in float64 from its row of the
  unembedding, with a rigorous bound on how far the float32 tile product can lie from
  it: ``|z_tile - z| <= gamma_(d+1) * (sum_i |w_i x_i| + |b|)``, ``gamma_n = n u / (1 - n u)``,
  ``u = 2^-24``, whatever the order of the sums (Higham, *Accuracy and Stability of
  Numerical Algorithms*, section 3.1); twice that, widened by four float32 ulps for the
  logit transform and rounded outward to float32, makes the band ``[low, high]``;
* each tile adds its count of logits ``> high`` (certainly above the target) and keeps
  the few logits inside the band with their token;
* after the pass the target's logit from its tile is known, checked to lie in the band
  (a NumericalError otherwise, never a wrong rank), and each kept logit adds 1 if it is
  strictly above it.

So the tiled rank equals the rank among the tile product's own logits, ties included,
with no tolerance.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from stages_of_inference.errors import ConfigError, NumericalError
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.scoring import decode
from stages_of_inference.scoring.decode import tiled_linear, unembed, vocabulary_tiles
from stages_of_inference.scoring.metrics import (
    LN2,
    Distribution,
    check_entropy,
    check_finite_rows,
    check_kl,
    check_probability_sums,
    compare_predictions,
    true_token_rank,
)
from stages_of_inference.scoring.workspace import Workspace


def chunk_reference(
    model: LoadedModel,
    residual: Float[Tensor, "n d_model"],
    targets: Int[Tensor, " n"],
    workspace: Workspace,
    *,
    rank: bool = False,
) -> TiledReference | LogitsReference:
    """The original model's predictions on a chunk of tokens, ready to score interventions.

    Args:
        model: The bridge whose unembedding decodes the residuals.
        residual: The original model's final residual (the unembedding's input).
        targets: The true next token of each row.
        workspace: Buffers reused by every chunk; the reference stays valid until
            the next :func:`chunk_reference` with the same workspace.
        rank: Also count the targets' ranks under the original model, for
            ``own_metrics(rank=True)``.

    Returns:
        A :class:`TiledReference` when the head can be computed by vocabulary tiles
        in float32, else a :class:`LogitsReference`.

    Example:
        >>> reference = chunk_reference(model, baseline_residual, targets, Workspace())  # doctest: +SKIP
        >>> metrics = reference.compare(intervened_residual, "delete layer 3")  # doctest: +SKIP
        >>> metrics["kl"].shape  # doctest: +SKIP
        torch.Size([256])
    """
    linear = tiled_linear(model, residual)
    if linear is None or residual.dtype != torch.float32:
        return LogitsReference(model, residual, targets, workspace)
    return TiledReference(model, linear, residual, targets, workspace, rank=rank)


class LogitsReference:
    """Scores through full ``[n, d_vocab]`` logits and :func:`~stages_of_inference.scoring.metrics.compare_predictions`."""

    def __init__(
        self,
        model: LoadedModel,
        residual: Float[Tensor, "n d_model"],
        targets: Int[Tensor, " n"],
        workspace: Workspace,
    ) -> None:
        self._model, self._targets, self._workspace, self._residual = model, targets, workspace, residual
        self.distribution = Distribution.from_logits(unembed(model, residual, workspace))

    @property
    def top1(self) -> Int[Tensor, " n"]:
        """The original model's top-1 token of each row (the first largest logit)."""
        return self.distribution.top1

    def compare(
        self, residual: Float[Tensor, "n d_model"], where: str, *, rank: bool = False
    ) -> dict[str, Float[Tensor, " n"]]:
        """Per-token metrics (:data:`~stages_of_inference.scoring.metrics.TOKEN_METRICS`) of an intervened residual.

        With ``rank``, also ``true_token_rank`` (see the module docstring).
        """
        logits = unembed(self._model, residual, self._workspace)
        metrics = compare_predictions(self.distribution, logits, self._targets, where, workspace=self._workspace)
        if rank:
            above = self._workspace.like("above_target", logits, torch.bool)
            metrics["true_token_rank"] = true_token_rank(logits, self._targets, out=above).float()
        return metrics

    def own_metrics(self, where: str, *, rank: bool = False) -> dict[str, Float[Tensor, " n"]]:
        """The metrics of the original residual itself: :meth:`compare` with it (decoded again on this path)."""
        return self.compare(self._residual, where, rank=rank)


@dataclass
class _Totals:
    """Per-token results of one pass over the vocabulary."""

    logsumexp: Float[Tensor, " n"]
    """float64"""
    entropy_bits: Float[Tensor, " n"]
    """float64"""
    loss: Float[Tensor, " n"]
    """float64"""
    top1: Int[Tensor, " n"]
    cross: Float[Tensor, " n"] | None
    """float64 ``sum p_orig (z_orig - z)``, when compared with a reference."""
    rank: Int[Tensor, " n"] | None
    """Logits strictly above the target's, when asked for."""


class TiledReference:
    """Scores by vocabulary tiles, from per-tile sums (see the module docstring).

    Holds the original model's logits and probabilities vocabulary-first
    (``[d_vocab, n]``, so that each tile's rows are contiguous) in the workspace's
    ``"reference_logits"`` and ``"reference_probs"`` buffers.
    """

    def __init__(
        self,
        model: LoadedModel,
        linear: torch.nn.Linear,
        residual: Float[Tensor, "n d_model"],
        targets: Int[Tensor, " n"],
        workspace: Workspace,
        where: str = "the original model",
        *,
        rank: bool = False,
    ) -> None:
        self._model, self._linear, self._workspace, self._targets = model, linear, workspace, targets
        vocabulary = linear.out_features
        if targets.numel() and not 0 <= int(targets.min()) <= int(targets.max()) < vocabulary:
            found = f"{int(targets.min())}..{int(targets.max())}"
            raise ConfigError(f"target tokens must lie in [0, {vocabulary}); got {found}")
        self._targets_by_tile = _targets_by_tile(targets, vocabulary)
        shape = (vocabulary, residual.shape[0])
        self.logits = workspace.buffer("reference_logits", shape, device=residual.device)
        self.probs = workspace.buffer("reference_probs", shape, device=residual.device)
        with torch.no_grad():
            self.totals = self._pass(residual, into=self.logits, rank=where if rank else None)
            _check_totals(self.totals, vocabulary, where)
            self.prob_sum = self._normalise()
        check_probability_sums(self.prob_sum, where)

    def compare(
        self, residual: Float[Tensor, "n d_model"], where: str, *, rank: bool = False
    ) -> dict[str, Float[Tensor, " n"]]:
        """Per-token metrics (:data:`~stages_of_inference.scoring.metrics.TOKEN_METRICS`) of an intervened residual.

        Args:
            residual: The intervened model's final residual on the same tokens.
            where: Named in a NumericalError (e.g. "delete layer 5").
            rank: Also count ``true_token_rank``, exactly (see the module docstring).
        """
        with torch.no_grad():
            totals = self._pass(residual, compare=True, rank=where if rank else None)
            assert totals.cross is not None
            kl = totals.cross + (totals.logsumexp - self.totals.logsumexp) * self.prob_sum
            _check_totals(totals, self._linear.out_features, where)
            check_finite_rows(torch.isfinite(kl), where)
            return self._metrics(totals, check_kl(kl, where))

    @property
    def top1(self) -> Int[Tensor, " n"]:
        """The original model's top-1 token of each row (the first largest logit of the tile product)."""
        return self.totals.top1

    def own_metrics(self, where: str, *, rank: bool = False) -> dict[str, Float[Tensor, " n"]]:
        """The metrics of the original residual itself, from this reference's own pass, without decoding again.

        Equal to :meth:`compare` with the original residual, bit for bit: that pass
        computes the same tile products, so its totals are these and its KL is exactly 0.

        Raises:
            ValueError: ``rank`` for a reference built without ``rank`` (a programming error).
        """
        if rank and self.totals.rank is None:
            raise ValueError(f"{where}: the reference was built without rank=True")
        totals = self.totals if rank else dataclasses.replace(self.totals, rank=None)
        return self._metrics(totals, torch.zeros_like(self.totals.loss))

    def _metrics(self, totals: _Totals, kl: Float[Tensor, " n"]) -> dict[str, Float[Tensor, " n"]]:
        """The per-token metrics of ``totals`` against this reference's, in :meth:`compare`'s form."""
        targets_hit = lambda top1: (top1 == self._targets).float()
        ranks = {} if totals.rank is None else {"true_token_rank": totals.rank.float()}
        return ranks | {
            "kl": kl.float(),
            "agreement": (totals.top1 == self.totals.top1).float(),
            "correct": targets_hit(totals.top1),
            "baseline_correct": targets_hit(self.totals.top1),
            "loss": totals.loss.float(),
            "baseline_loss": self.totals.loss.float(),
            "entropy_bits": totals.entropy_bits.float(),
            "baseline_entropy_bits": self.totals.entropy_bits.float(),
        }

    def _normalise(self) -> Float[Tensor, " n"]:
        """Fill ``probs`` from ``logits`` tile by tile; the float64 sum of each token's probabilities."""
        logsumexp = self.totals.logsumexp.float()
        vocabulary, rows = self.logits.shape
        tile = _tile_rows(vocabulary)
        sums = self._workspace.buffer("tile_prob_sums", (_n_tiles(vocabulary), rows), device=self.logits.device)
        for k, start in enumerate(range(0, vocabulary, tile)):
            probs = self.probs[start : start + tile]
            torch.sub(self.logits[start : start + tile], logsumexp, out=probs).exp_()
            torch.sum(probs, 0, out=sums[k])
        return sums.double().sum(0)

    def _pass(
        self,
        residual: Float[Tensor, "n d_model"],
        *,
        into: Tensor | None = None,
        compare: bool = False,
        rank: str | None = None,
    ) -> _Totals:
        """Decode ``residual`` tile by tile (into ``into`` if given) and reduce each tile to per-token sums.

        With ``compare``, also the cross term against this reference's logits and
        probabilities; with ``rank`` (the ``where`` of an error), the target's rank.
        """
        rows, vocabulary = residual.shape[0], self._linear.out_features
        device = residual.device
        sums = self._workspace.buffer("tile_sums", (4, _n_tiles(vocabulary), rows), device=device)
        tile_max, sum_exp, sum_exp_shifted, cross = sums
        tile_shape = (_tile_rows(vocabulary), rows)
        scratch = {name: self._workspace.buffer(name, tile_shape, device=device) for name in _TILE_SCRATCH}
        best = self._workspace.buffer("tile_best", (rows,), device=device)
        top1 = torch.empty(rows, dtype=torch.long, device=device)
        target_logit = torch.empty(rows, device=device)
        transform = self._model.adapter.apply_output_logits_transform
        counter = (
            None if rank is None else _RankCounter(self._linear, residual, self._targets, transform, self._workspace)
        )
        for k, (start, tile) in enumerate(vocabulary_tiles(residual, self._linear, self._workspace, into=into)):
            transformed = transform(tile)
            if transformed is not tile:  # an elementwise transform (e.g. a softcap), kept in place
                tile.copy_(transformed)
            width = tile.shape[0]
            torch.amax(tile, 0, out=tile_max[k])
            _track_top1(tile, tile_max[k], start, best, top1)
            if start in self._targets_by_tile:
                tile_rows, columns = self._targets_by_tile[start]
                target_logit[columns] = tile[tile_rows, columns]
            if compare:
                difference = torch.sub(self.logits[start : start + width], tile, out=scratch["tile_difference"][:width])
                torch.sum(difference.mul_(self.probs[start : start + width]), 0, out=cross[k])
            shifted = torch.sub(tile, tile_max[k], out=scratch["tile_shifted"][:width])
            exp = torch.exp(shifted, out=scratch["tile_exp"][:width])
            torch.sum(exp, 0, out=sum_exp[k])
            torch.sum(exp.mul_(shifted), 0, out=sum_exp_shifted[k])
            if counter is not None:
                counter.add(k, tile)
        totals = _combine(tile_max, sum_exp, sum_exp_shifted, cross if compare else None, top1, target_logit)
        if counter is not None:
            totals.rank = counter.ranks(target_logit, str(rank))
        return totals


_TILE_SCRATCH = ("tile_difference", "tile_shifted", "tile_exp")
"""Workspace buffers of one tile's intermediates, each ``[tile, n]``."""


def _tile_rows(vocabulary: int) -> int:
    """Rows per tile of :func:`~stages_of_inference.scoring.decode.vocabulary_tiles`."""
    return min(decode.VOCABULARY_TILE, vocabulary)


def _n_tiles(vocabulary: int) -> int:
    return -(-vocabulary // _tile_rows(vocabulary))


def _targets_by_tile(targets: Int[Tensor, " n"], vocabulary: int) -> dict[int, tuple[Tensor, Tensor]]:
    """Tile start -> (row of each target within the tile, its token column), for the tiles holding targets."""
    tile = _tile_rows(vocabulary)
    starts = targets // tile * tile
    by_tile = {}
    for start in starts.unique().tolist():
        columns = (starts == start).nonzero().squeeze(1)
        by_tile[start] = (targets[columns] - start, columns)
    return by_tile


def _track_top1(
    tile: Float[Tensor, "tile n"], tile_max: Float[Tensor, " n"], start: int, best: Float[Tensor, " n"], top1: Tensor
) -> None:
    """Update the running first argmax with one tile (only the tokens whose maximum it raises)."""
    if start == 0:
        top1.copy_(tile.argmax(0))
        best.copy_(tile_max)
        return
    raised = (tile_max > best).nonzero().squeeze(1)
    if raised.numel():
        top1[raised] = tile[:, raised].argmax(0) + start
        best[raised] = tile_max[raised]


def _combine(
    tile_max: Tensor, sum_exp: Tensor, sum_exp_shifted: Tensor, cross: Tensor | None, top1: Tensor, target_logit: Tensor
) -> _Totals:
    """Per-token totals, in float64, from the per-tile sums (formulas in the module docstring)."""
    maxima = tile_max.double()
    overall = maxima.amax(0)
    offsets = maxima - overall
    weights = offsets.exp()
    exp_sums = sum_exp.double()
    total = (weights * exp_sums).sum(0)
    shifted_total = (weights * (sum_exp_shifted.double() + offsets * exp_sums)).sum(0)
    log_total = total.log()
    logsumexp = overall + log_total
    return _Totals(
        logsumexp=logsumexp,
        entropy_bits=(log_total - shifted_total / total) / LN2,
        loss=logsumexp - target_logit.double(),
        top1=top1,
        cross=None if cross is None else cross.double().sum(0),
        rank=None,
    )


FLOAT32_UNIT_ROUNDOFF = 2.0**-24
TRANSFORM_ULPS = 4
"""Float32 ulps the logit transform (a softcap's ``tanh``) may add to a tile's logit."""


class _RankCounter:
    """Counts, tile by tile, the logits strictly above each token's target logit (module docstring).

    A logit ``z`` is above the band when ``z - high > 0`` and below it when
    ``z - low < 0``, both in float32: the sign of a float32 difference is the sign of
    the exact one (flushing denormals to zero can only make it 0), so above means
    ``z > high``, below means ``z < low``, and everything else is kept. Counting by
    float arithmetic, and extracting the kept logits only for the tokens that have
    any in the tile, costs about a quarter of boolean masks and ``nonzero`` on every
    tile (0.12 against 0.52 ms for a 1024 x 256 tile, one thread).
    """

    def __init__(
        self,
        linear: torch.nn.Linear,
        residual: Float[Tensor, "n d_model"],
        targets: Int[Tensor, " n"],
        transform: Callable[[Tensor], Tensor],
        workspace: Workspace,
    ) -> None:
        self._workspace = workspace
        self.low, self.high = target_logit_band(linear, residual, targets, transform)
        vocabulary, rows = linear.out_features, residual.shape[0]
        self.above = workspace.buffer("tile_above", (_n_tiles(vocabulary), rows), device=residual.device)
        self.not_below = workspace.buffer("tile_not_below", (rows,), device=residual.device)
        self.band_tokens: list[Tensor] = []
        self.band_logits: list[Tensor] = []

    def add(self, k: int, tile: Float[Tensor, "tile n"]) -> None:
        """Count tile ``k``'s logits above the band; keep those inside it."""
        scratch = self._workspace.like("tile_band_difference", tile)
        torch.sum(torch.sub(tile, self.high, out=scratch).gt_(0), 0, out=self.above[k])
        torch.sum(torch.sub(tile, self.low, out=scratch).ge_(0), 0, out=self.not_below)
        tokens = (self.not_below != self.above[k]).nonzero().squeeze(1)
        if tokens.numel():
            columns = tile[:, tokens]
            kept = (columns - self.low[tokens]).ge_(0).logical_and_((columns - self.high[tokens]).le_(0))
            entries, which = kept.nonzero(as_tuple=True)
            self.band_tokens.append(tokens[which])
            self.band_logits.append(columns[entries, which])

    def ranks(self, target_logit: Float[Tensor, " n"], where: str) -> Int[Tensor, " n"]:
        """Each token's rank, once its target's logit (from the tile product) is known.

        A non-finite logit is left to the totals' check, which names it.
        """
        outside = ((target_logit < self.low) | (target_logit > self.high)) & torch.isfinite(target_logit)
        if bool(outside.any()):
            token = int(outside.nonzero()[0, 0])
            raise NumericalError(
                f"the target logit of {where} at token {token} left its float32 error bound; please report it"
            )
        rank = self.above.double().sum(0).long()
        if self.band_tokens:
            tokens, logits = torch.cat(self.band_tokens), torch.cat(self.band_logits)
            rank.index_add_(0, tokens, (logits > target_logit[tokens]).long())
        return rank


def target_logit_band(
    linear: torch.nn.Linear,
    residual: Float[Tensor, "n d_model"],
    targets: Int[Tensor, " n"],
    transform: Callable[[Tensor], Tensor] = lambda logits: logits,
) -> tuple[Float[Tensor, " n"], Float[Tensor, " n"]]:
    """Float32 bounds ``low <= z <= high`` of each target's logit ``z`` as a float32 matrix product gives it.

    The float64 estimate plus and minus twice the worst-case float32 dot-product error
    ``gamma_(d+1) * (sum_i |w_i x_i| + |b|)``, through ``transform`` (monotone), widened
    by :data:`TRANSFORM_ULPS` and rounded outward (see the module docstring).

    Example:
        >>> linear = torch.nn.Linear(8, 5)
        >>> x, targets = torch.randn(3, 8), torch.tensor([0, 4, 2])
        >>> low, high = target_logit_band(linear, x, targets)
        >>> z = linear(x)[torch.arange(3), targets]
        >>> bool(((low <= z) & (z <= high)).all())
        True
    """
    products = linear.weight.detach()[targets].double() * residual.detach().double()
    estimate, magnitude = products.sum(-1), products.abs().sum(-1)
    if linear.bias is not None:
        bias = linear.bias.detach()[targets].double()
        estimate, magnitude = estimate + bias, magnitude + bias.abs()
    terms = residual.shape[-1] + 1
    gamma = terms * FLOAT32_UNIT_ROUNDOFF / (1 - terms * FLOAT32_UNIT_ROUNDOFF)
    error = 2 * gamma * magnitude
    bounds = []
    for value, direction in ((estimate - error, -math.inf), (estimate + error, math.inf)):
        transformed = transform(value)
        widened = transformed + math.copysign(1.0, direction) * (
            TRANSFORM_ULPS * 2 * FLOAT32_UNIT_ROUNDOFF * transformed.abs() + torch.finfo(torch.float32).tiny
        )
        single = widened.float()
        bounds.append(torch.nextafter(single, torch.full_like(single, direction)))
    return bounds[0], bounds[1]


def _finite(totals: _Totals) -> Tensor:
    return torch.isfinite(totals.logsumexp) & torch.isfinite(totals.entropy_bits) & torch.isfinite(totals.loss)


def _check_totals(totals: _Totals, vocabulary: int, where: str) -> None:
    """NumericalError for a non-finite logit (it makes the totals non-finite) or an impossible entropy."""
    check_finite_rows(_finite(totals), where)
    check_entropy(totals.entropy_bits, vocabulary, where)
