"""Estimate where each of the four stages of inference lies in one model, from measured evidence.

Lad et al. draw the stage boundaries by eye. This module places them with fixed,
documented rules applied to whatever evidence is available (every input is optional):

* ``robustness``: the sweep table (:func:`~stages_of_inference.sweep.robustness_sweep`);
  its deletion rows give the KL of deleting each layer, with a 95 % CI;
* ``attention``: mean attention to the previous k tokens per layer
  (:func:`~stages_of_inference.analyses.attention.previous_token_attention`: ``layer``, ``mean``,
  optional ``sem``);
* ``logit_lens``: :func:`~stages_of_inference.analyses.logit_lens.logit_lens` (``layer``,
  ``kl_to_final``; layer -1 is the embedding);
* ``neurons``: per-layer counts (:func:`~stages_of_inference.analyses.neurons.neuron_counts`:
  ``layer``, ``prediction``, ``suppression``).

Layers are 0-based; the *middle* layers are those at relative depth
:data:`MIDDLE` (0.25 to 0.75). The rules, one per boundary:

1. **End of detokenization** (the stage always starts at layer 0). Deletion KL: the
   run of consecutive *fragile* layers (deletion KL above :data:`FRAGILE_FACTOR` x
   the median middle-layer KL) that starts within the first :data:`EDGE` of depth,
   capped at half depth; its last layer. Attention: the same with local attention
   above :data:`LOCAL_FACTOR` x its middle median. The end is the rounded mean of the
   estimates; with none, the stage is *absent*.
2. **Start of prediction ensembling.** Logit lens: the first layer after
   detokenization whose KL(final || layer) is below :data:`LENS_DROP` x its early
   value (the median over the embedding and the layers of the first :data:`EDGE`).
   Neurons: the first layer after detokenization holding at least
   :data:`PREDICTION_RISE` x the peak count of prediction neurons. Rounded mean of
   the estimates. Without either input, feature engineering and prediction
   ensembling cannot be told apart and are reported as one combined stage.
3. **Start of residual sharpening** (the stage ends at the last layer). Deletion KL:
   the run of fragile layers ending at the last layer, starting within the last
   :data:`EDGE`, no earlier than half depth; its first layer. Neurons: the run of
   final layers where suppression neurons outnumber prediction neurons. Rounded mean;
   with none, the stage is *absent*.

Feature engineering spans the layers between detokenization and ensembling; a stage
left with no layer is reported absent, never forced.

Uncertainty: the deletion KL and attention curves are redrawn :data:`N_BOOTSTRAP`
times, each layer independently from a normal distribution matching its reported
uncertainty (sd = CI width / 3.92 for the sweep's 95 % bootstrap CI over
sequences, sd = ``sem`` for attention), and every boundary is recomputed. Logit-lens
means and neuron counts carry no per-layer uncertainty and stay fixed. A boundary's
uncertainty is the larger of half its 5-95 % range over redraws and half the spread
between the estimates of different evidence; a stage's ``uncertainty_layers`` is the
larger of its two boundaries'.

Example:
    >>> import pandas as pd
    >>> kl = [3.0, 2.0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 4.0]
    >>> sweep = pd.DataFrame({"intervention": "delete", "layer": range(10), "kl": kl})
    >>> estimate = detect_stages(robustness=sweep)
    >>> estimate.table[["stage", "first_layer", "last_layer"]].values.tolist()
    [['detokenization', 0, 1], ['feature engineering + prediction ensembling', 2, 8], ['residual sharpening', 9, 9]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from stages_of_inference.errors import ConfigError
from stages_of_inference.layers import relative_depth

STAGES = ("detokenization", "feature engineering", "prediction ensembling", "residual sharpening")
COMBINED_MIDDLE = "feature engineering + prediction ensembling"
MIDDLE = (0.25, 0.75)
"""Relative depths of the reference (middle) layers."""
EDGE = 0.2
"""Fraction of depth at either end where a fragile or local run must begin."""
FRAGILE_FACTOR = 2.0
"""A layer is fragile when its deletion KL exceeds this multiple of the middle median."""
LOCAL_FACTOR = 1.5
"""A layer attends locally when its previous-token attention exceeds this multiple of the middle median."""
LENS_DROP = 0.5
"""Ensembling starts where the logit-lens KL to final falls below this fraction of its early value."""
PREDICTION_RISE = 0.25
"""... or where prediction neurons reach this fraction of their peak count."""
LOAD_BEARING_FACTOR = 3.0
"""A middle layer whose deletion KL exceeds this multiple of the middle median is reported."""
PAPER_RETENTION = (0.72, 0.95)
"""The paper's range of top-1 accuracy retained."""
N_BOOTSTRAP = 200
TABLE_COLUMNS = (
    "stage", "status", "n_layers", "first_layer", "last_layer", "first_relative_depth", "last_relative_depth",
    "evidence", "uncertainty_layers",
)


class StageEstimate(NamedTuple):
    """The stages of one model: a table (one row per stage) and plain-language findings."""

    table: pd.DataFrame
    findings: list[str]


@dataclass(frozen=True)
class _Curves:
    """The per-layer evidence, indexed by layer 0..L-1 (NaN where not measured)."""

    n_layers: int
    deletion_kl: np.ndarray | None = None
    deletion_sd: np.ndarray | None = None
    attention: np.ndarray | None = None
    attention_sd: np.ndarray | None = None
    lens_kl: np.ndarray | None = None
    lens_early: float | None = None
    prediction: np.ndarray | None = None
    suppression: np.ndarray | None = None


@dataclass(frozen=True)
class _Boundary:
    """One boundary: its layer (or None), each evidence's estimate, and its uncertainty."""

    layer: int | None
    estimates: dict[str, int]
    uncertainty: float


def detect_stages(
    robustness: pd.DataFrame | None = None,
    attention: pd.DataFrame | None = None,
    logit_lens: pd.DataFrame | None = None,
    neurons: pd.DataFrame | None = None,
    *,
    n_layers: int | None = None,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
) -> StageEstimate:
    """Place the four stages of one model from the evidence given (see the module docstring).

    Args:
        robustness: Sweep table of one model (deletion rows used; swaps feed findings).
        attention: Previous-token attention per layer (``layer``, ``mean``, optional ``sem``);
            a per-head table (with ``head``) is averaged over heads.
        logit_lens: Logit-lens table (``layer``, ``kl_to_final``).
        neurons: Neuron counts per layer (``layer``, ``prediction``, ``suppression``).
        n_layers: The model's layer count; by default one more than the largest layer seen.
        n_bootstrap: Redraws of the uncertain curves (0: no bootstrap).
        seed: Seed of the redraws.

    Returns:
        ``(table, findings)``: columns ``stage``, ``status`` ("found" / "absent"),
        ``n_layers``, ``first_layer``, ``last_layer`` (nullable ints), ``first_relative_depth``,
        ``last_relative_depth``, ``evidence``, ``uncertainty_layers``; and a list of
        sentences where the model departs from the paper's pattern, with numbers.

    Raises:
        ConfigError: No input given, or an input lacks its columns.

    Example:
        >>> import pandas as pd
        >>> counts = pd.DataFrame({"layer": range(6), "prediction": [0, 0, 0, 4, 9, 2],
        ...                        "suppression": [0, 0, 0, 1, 2, 8]})
        >>> estimate = detect_stages(neurons=counts)
        >>> estimate.table.set_index("stage").loc["prediction ensembling", ["first_layer", "last_layer"]].tolist()
        [3, 4]
    """
    curves = _curves(robustness, attention, logit_lens, neurons, n_layers)
    boundaries = _bootstrapped_boundaries(curves, n_bootstrap, seed)
    table = _stage_table(curves, *boundaries)
    findings = _findings(curves, robustness, logit_lens, neurons, table)
    return StageEstimate(table, findings)


# ---------------------------------------------------------------- evidence


def _require(table: pd.DataFrame, columns: set[str], what: str) -> None:
    missing = columns - set(table.columns)
    if missing:
        raise ConfigError(f"the {what} table lacks columns {sorted(missing)}; pass the toolkit's {what} table")


def _per_layer(table: pd.DataFrame, column: str, n_layers: int) -> np.ndarray:
    """``column`` averaged per layer 0..L-1 (NaN for a layer not in the table)."""
    means = table[table.layer >= 0].groupby("layer")[column].mean()
    return means.reindex(range(n_layers)).to_numpy(np.float64)


def _curves(
    robustness: pd.DataFrame | None,
    attention: pd.DataFrame | None,
    logit_lens: pd.DataFrame | None,
    neurons: pd.DataFrame | None,
    n_layers: int | None,
) -> _Curves:
    given = {"robustness": robustness, "attention": attention, "logit lens": logit_lens, "neuron counts": neurons}
    present = {name: table for name, table in given.items() if table is not None and len(table)}
    if not present:
        raise ConfigError("detect_stages needs at least one non-empty evidence table")
    for name, table in present.items():
        _require(table, {"layer"}, name)
    n = n_layers or 1 + max(int(table.layer.max()) for table in present.values())
    if n < 3:
        raise ConfigError(f"stages need a model of at least 3 layers, got {n}")
    fields: dict[str, object] = {"n_layers": n}
    if robustness is not None and len(robustness):
        _require(robustness, {"intervention", "kl"}, "robustness")
        deletion = robustness[robustness.intervention == "delete"]
        fields["deletion_kl"] = _per_layer(deletion, "kl", n)
        if {"kl_ci_low", "kl_ci_high"} <= set(deletion.columns):
            width = _per_layer(deletion, "kl_ci_high", n) - _per_layer(deletion, "kl_ci_low", n)
            fields["deletion_sd"] = np.nan_to_num(width / 3.92)
    if attention is not None and len(attention):
        _require(attention, {"mean"}, "attention")
        fields["attention"] = _per_layer(attention, "mean", n)
        if "sem" in attention.columns:
            fields["attention_sd"] = np.nan_to_num(_per_layer(attention, "sem", n))
    if logit_lens is not None and len(logit_lens):
        _require(logit_lens, {"kl_to_final"}, "logit lens")
        fields["lens_kl"] = _per_layer(logit_lens, "kl_to_final", n)
        early = logit_lens[(logit_lens.layer < 0) | (logit_lens.layer <= EDGE * (n - 1))]
        fields["lens_early"] = float(early.kl_to_final.median())
    if neurons is not None and len(neurons):
        _require(neurons, {"prediction", "suppression"}, "neuron counts")
        fields["prediction"] = np.nan_to_num(_per_layer(neurons, "prediction", n))
        fields["suppression"] = np.nan_to_num(_per_layer(neurons, "suppression", n))
    return _Curves(**fields)  # type: ignore[arg-type]


def _middle(n_layers: int) -> np.ndarray:
    """Indices of the middle layers (at least one)."""
    depth = np.array([relative_depth(layer, n_layers) for layer in range(n_layers)])
    inside = np.flatnonzero((depth >= MIDDLE[0]) & (depth <= MIDDLE[1]))
    return inside if inside.size else np.array([n_layers // 2])


def middle_median(values: np.ndarray) -> float:
    """Median of a per-layer curve over the middle layers (:data:`MIDDLE`).

    Example:
        >>> middle_median(np.array([9.0, 1.0, 2.0, 3.0, 9.0]))
        2.0
    """
    return float(np.nanmedian(values[_middle(len(values))]))


# ---------------------------------------------------------------- rules


def leading_run_end(above: np.ndarray, *, edge: float = EDGE, cap: float = 0.5) -> int | None:
    """Last layer of the run of ``True`` starting within the first ``edge`` of depth, capped at ``cap``.

    Example:
        >>> leading_run_end(np.array([False, True, True, False, True, False, False, False, False, False, False]))
        2
        >>> leading_run_end(np.array([False] * 5 + [True] * 5)) is None
        True
    """
    n = len(above)
    start = next((i for i in range(n) if above[i] and relative_depth(i, n) <= edge), None)
    if start is None:
        return None
    end = start
    while end + 1 < n and above[end + 1] and relative_depth(end + 1, n) <= cap:
        end += 1
    return end


def trailing_run_start(above: np.ndarray, *, edge: float = EDGE, floor: float = 0.5) -> int | None:
    """First layer of the run of ``True`` ending within the last ``edge`` of depth, no earlier than ``floor``.

    Example:
        >>> trailing_run_start(np.array([True, False, False, False, False, False, False, True, True, False]))
        7
    """
    n = len(above)
    end = next((i for i in range(n - 1, -1, -1) if above[i] and relative_depth(i, n) >= 1 - edge), None)
    if end is None:
        return None
    start = end
    while start - 1 >= 0 and above[start - 1] and relative_depth(start - 1, n) >= floor:
        start -= 1
    return start


def _above(values: np.ndarray, factor: float) -> np.ndarray:
    reference = middle_median(values)
    return np.nan_to_num(values, nan=-np.inf) > factor * reference


def _first_at_or_after(mask: np.ndarray, after: int) -> int | None:
    hits = np.flatnonzero(mask[after:])
    return int(hits[0]) + after if hits.size else None


def _detokenization_estimates(c: _Curves) -> dict[str, int]:
    estimates = {}
    if c.deletion_kl is not None and (end := leading_run_end(_above(c.deletion_kl, FRAGILE_FACTOR))) is not None:
        estimates[f"deletion KL > {FRAGILE_FACTOR:g}x middle median"] = end
    if c.attention is not None and (end := leading_run_end(_above(c.attention, LOCAL_FACTOR))) is not None:
        estimates[f"previous-token attention > {LOCAL_FACTOR:g}x middle median"] = end
    return estimates


def _ensembling_estimates(c: _Curves, after: int) -> dict[str, int]:
    estimates = {}
    if c.lens_kl is not None and c.lens_early is not None:
        below = np.nan_to_num(c.lens_kl, nan=np.inf) < LENS_DROP * c.lens_early
        if (first := _first_at_or_after(below, after)) is not None:
            estimates[f"logit-lens KL to final < {LENS_DROP:g}x early value ({c.lens_early:.3g} nats)"] = first
    if c.prediction is not None and c.prediction.max() > 0:
        risen = c.prediction >= PREDICTION_RISE * c.prediction.max()
        if (first := _first_at_or_after(risen, after)) is not None:
            estimates[f"prediction neurons >= {PREDICTION_RISE:g}x peak ({c.prediction.max():.0f})"] = first
    return estimates


def _sharpening_estimates(c: _Curves) -> dict[str, int]:
    estimates = {}
    if c.deletion_kl is not None and (start := trailing_run_start(_above(c.deletion_kl, FRAGILE_FACTOR))) is not None:
        estimates[f"deletion KL > {FRAGILE_FACTOR:g}x middle median"] = start
    if c.suppression is not None and c.prediction is not None:
        dominant = (c.suppression > c.prediction) & (c.suppression > 0)
        if (start := trailing_run_start(dominant, edge=1 / max(c.n_layers - 1, 1))) is not None:
            estimates["suppression neurons outnumber prediction neurons"] = start
    return estimates


def _combine(estimates: dict[str, int]) -> int | None:
    return int(np.floor(np.mean(list(estimates.values())) + 0.5)) if estimates else None


def _point_boundaries(c: _Curves) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """The per-evidence estimates of the three boundaries for one set of curves."""
    detok = _detokenization_estimates(c)
    end = _combine(detok)
    ensembling = _ensembling_estimates(c, 0 if end is None else end + 1)
    return detok, ensembling, _sharpening_estimates(c)


def _redraw(c: _Curves, rng: np.random.Generator) -> _Curves:
    def noisy(values: np.ndarray | None, sd: np.ndarray | None) -> np.ndarray | None:
        if values is None or sd is None:
            return values
        return np.maximum(values + rng.normal(0.0, 1.0, values.shape) * sd, 0.0)

    return _Curves(
        c.n_layers, noisy(c.deletion_kl, c.deletion_sd), c.deletion_sd, noisy(c.attention, c.attention_sd),
        c.attention_sd, c.lens_kl, c.lens_early, c.prediction, c.suppression,
    )


def _bootstrapped_boundaries(c: _Curves, n_bootstrap: int, seed: int) -> tuple[_Boundary, _Boundary, _Boundary]:
    point = _point_boundaries(c)
    rng = np.random.default_rng(seed)
    draws: list[list[float]] = [[], [], []]
    for _ in range(n_bootstrap):
        for index, estimates in enumerate(_point_boundaries(_redraw(c, rng))):
            combined = _combine(estimates)
            draws[index].append(np.nan if combined is None else combined)
    boundaries = []
    for estimates, values in zip(point, draws, strict=True):
        spread = (max(estimates.values()) - min(estimates.values())) / 2 if estimates else 0.0
        finite = np.asarray(values, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        band = (np.percentile(finite, 95) - np.percentile(finite, 5)) / 2 if finite.size else 0.0
        boundaries.append(_Boundary(_combine(estimates), estimates, float(max(spread, band))))
    return boundaries[0], boundaries[1], boundaries[2]


# ---------------------------------------------------------------- table


def _describe(boundary: _Boundary, what: str) -> str:
    if not boundary.estimates:
        return f"{what}: no evidence"
    parts = "; ".join(f"{rule}: layer {layer}" for rule, layer in boundary.estimates.items())
    return f"{what} at layer {boundary.layer} ({parts})"


def _row(stage: str, first: int | None, last: int | None, n_layers: int, evidence: str, uncertainty: float) -> dict:
    found = first is not None and last is not None and first <= last
    return {
        "stage": stage,
        "status": "found" if found else "absent",
        "n_layers": n_layers,
        "first_layer": first if found else None,
        "last_layer": last if found else None,
        "first_relative_depth": relative_depth(first, n_layers) if found else np.nan,
        "last_relative_depth": relative_depth(last, n_layers) if found else np.nan,
        "evidence": evidence,
        "uncertainty_layers": uncertainty if found else np.nan,
    }


def _stage_table(c: _Curves, detok: _Boundary, ensembling: _Boundary, sharpening: _Boundary) -> pd.DataFrame:
    last = c.n_layers - 1
    detok_end = detok.layer
    sharp_start = sharpening.layer if sharpening.layer is not None and sharpening.layer > (detok_end or -1) else None
    middle_first = 0 if detok_end is None else detok_end + 1
    middle_last = last if sharp_start is None else sharp_start - 1
    rows = [
        _row(STAGES[0], 0 if detok_end is not None else None, detok_end, c.n_layers,
             _describe(detok, "end"), detok.uncertainty),
    ]
    separable = c.lens_kl is not None or c.prediction is not None
    if not separable:
        rows.append(_row(COMBINED_MIDDLE, middle_first, middle_last, c.n_layers,
                         "no logit-lens or neuron evidence to separate the two stages", 0.0))
    else:
        start = ensembling.layer if ensembling.layer is not None and ensembling.layer <= middle_last else None
        rows.append(_row(STAGES[1], middle_first, middle_last if start is None else start - 1, c.n_layers,
                         _describe(ensembling, "ends where ensembling starts"), max(detok.uncertainty, ensembling.uncertainty)))
        rows.append(_row(STAGES[2], start, middle_last if start is not None else None, c.n_layers,
                         _describe(ensembling, "start"), max(ensembling.uncertainty, sharpening.uncertainty)))
    rows.append(_row(STAGES[3], sharp_start, last if sharp_start is not None else None, c.n_layers,
                     _describe(sharpening, "start"), sharpening.uncertainty))
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    return table.astype({"first_layer": "Int64", "last_layer": "Int64"})


# ---------------------------------------------------------------- findings


def _findings(
    c: _Curves,
    robustness: pd.DataFrame | None,
    logit_lens: pd.DataFrame | None,
    neurons: pd.DataFrame | None,
    table: pd.DataFrame,
) -> list[str]:
    findings = [
        f"{row.stage} is absent: {row.evidence}." for row in table.itertuples() if row.status == "absent"
    ]
    for check in (_deletion_findings(c), _robustness_findings(robustness), _depth_findings(table),
                  _lens_findings(logit_lens), _neuron_findings(c)):
        findings.extend(check)
    return findings


def _deletion_findings(c: _Curves) -> list[str]:
    if c.deletion_kl is None:
        return []
    kl, n = c.deletion_kl, c.n_layers
    median = middle_median(kl)
    found = [
        f"middle layer {layer} (relative depth {relative_depth(layer, n):.2f}) is load-bearing: deleting it gives "
        f"KL {kl[layer]:.3g} nats, {kl[layer] / median:.1f}x the middle-layer median {median:.3g}"
        for layer in _middle(n)
        if median > 0 and kl[layer] > LOAD_BEARING_FACTOR * median
    ]
    for layer, where in ((0, "first"), (n - 1, "last")):
        if median > 0 and kl[layer] <= FRAGILE_FACTOR * median:
            found.append(
                f"the {where} layer is not fragile: deleting it gives KL {kl[layer]:.3g} nats, "
                f"{kl[layer] / median:.1f}x the middle-layer median {median:.3g} (the paper finds the edges fragile)"
            )
    return found


def _robustness_findings(robustness: pd.DataFrame | None) -> list[str]:
    if robustness is None or not len(robustness):
        return []
    found = []
    means = robustness.groupby("intervention")["kl"].mean()
    if {"delete", "swap"} <= set(means.index) and means["swap"] > means["delete"]:
        found.append(
            f"swaps are harsher than deletions: mean KL {means['swap']:.3g} nats over swaps vs "
            f"{means['delete']:.3g} over deletions ({means['swap'] / means['delete']:.2f}x)"
        )
    found.extend(_harsh_swaps(robustness))
    if "relative_accuracy" in robustness.columns:
        for kind, part in robustness.groupby("intervention"):
            mean = float(part.relative_accuracy.mean())
            if not PAPER_RETENTION[0] <= mean <= PAPER_RETENTION[1]:
                found.append(
                    f"{kind}: mean relative accuracy {mean:.1%} over layers is outside the paper's "
                    f"{PAPER_RETENTION[0]:.0%}-{PAPER_RETENTION[1]:.0%} (min {part.relative_accuracy.min():.1%}, "
                    f"max {part.relative_accuracy.max():.1%})"
                )
    return found


def _harsh_swaps(robustness: pd.DataFrame) -> list[str]:
    """Swaps whose KL exceeds :data:`FRAGILE_FACTOR` x deleting either of the two layers."""
    kl = robustness.pivot_table(index="layer", columns="intervention", values="kl")
    if not {"delete", "swap"} <= set(kl.columns):
        return []
    found = []
    for layer, swap in kl["swap"].dropna().items():
        worst_deletion = kl["delete"].reindex([layer, layer + 1]).max()
        if np.isfinite(worst_deletion) and swap > FRAGILE_FACTOR * worst_deletion:
            found.append(
                f"swapping layers {layer}-{layer + 1} is harsher than deleting either: KL {swap:.3g} nats vs "
                f"at most {worst_deletion:.3g} ({swap / worst_deletion:.1f}x)"
            )
    return found


_PAPER_DEPTHS = {"detokenization": (None, 0.2), "prediction ensembling": (0.5, None), "residual sharpening": (0.85, None)}
"""The paper's rough boundaries (first, last relative depth) that a found stage is compared with."""


def _depth_findings(table: pd.DataFrame) -> list[str]:
    found = []
    for row in table[table.status == "found"].itertuples():
        first, last = _PAPER_DEPTHS.get(row.stage, (None, None))
        if last is not None and row.last_relative_depth > last + 0.15:
            found.append(f"{row.stage} extends to relative depth {row.last_relative_depth:.2f} "
                         f"(layer {row.last_layer}); the paper puts its end near {last:.2f}")
        if first is not None and abs(row.first_relative_depth - first) > 0.15:
            found.append(f"{row.stage} starts at relative depth {row.first_relative_depth:.2f} "
                         f"(layer {row.first_layer}); the paper puts its start near {first:.2f}")
    return found


def _lens_findings(logit_lens: pd.DataFrame | None) -> list[str]:
    if logit_lens is None or "entropy_bits" not in logit_lens.columns or len(logit_lens) < 3:
        return []
    entropy = logit_lens.sort_values("layer").entropy_bits.to_numpy()
    if entropy[-1] > entropy[-2]:
        return [f"logit-lens entropy rises at the last layer: {entropy[-2]:.2f} -> {entropy[-1]:.2f} bits"]
    return []


def _neuron_findings(c: _Curves) -> list[str]:
    if c.prediction is None or c.prediction.max() == 0:
        return ["no prediction neurons found (kurtosis threshold not reached in any layer)"] if c.prediction is not None else []
    peak = int(np.argmax(c.prediction))
    depth = relative_depth(peak, c.n_layers)
    if abs(depth - 0.85) > 0.15:
        return [f"prediction neurons peak at layer {peak} (relative depth {depth:.2f}, "
                f"{c.prediction[peak]:.0f} neurons); the paper finds the peak near 0.85"]
    return []


# ---------------------------------------------------------------- figures
