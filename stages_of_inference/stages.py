"""Estimate where each of the four stages of inference lies in one model, from measured evidence.

Lad et al. draw the stage boundaries by eye. This module places each boundary with one
rule, a tested step fit, applied to whatever evidence is available (every input is optional):

* ``robustness``: the sweep table (:func:`~stages_of_inference.sweep.robustness_sweep`);
  its deletion rows give the KL of deleting each layer, with a 95 % CI;
* ``attention``: mean attention to the previous k tokens per layer
  (:func:`~stages_of_inference.analyses.attention.previous_token_attention`: ``layer``, ``mean``,
  optional ``sem``);
* ``logit_lens``: :func:`~stages_of_inference.analyses.logit_lens.logit_lens` (``layer``,
  ``kl_to_final``; layer -1, the embedding, is not used);
* ``neurons``: per-layer counts (:func:`~stages_of_inference.analyses.neurons.neuron_counts`:
  ``layer``, ``prediction``, ``suppression``).

**The rule** (``docs/stages.md`` gives the reasons). Each evidence curve is fitted, over
a window of layers, by the least-squares *clean step*: two constant segments, high then
low (falling) or low then high (rising), where every layer of the high segment lies above
the low segment's mean and every layer of the low segment below the high segment's mean
(:func:`fit_step`). The boundaries and their evidence:

1. **End of detokenization** (the last layer of the high segment; the stage starts at
   layer 0), on the first half of depth: deletion KL falling; previous-token attention
   falling.
2. **Start of prediction ensembling** (the first layer of the second segment), on the
   layers after detokenization: logit-lens KL to final falling; prediction neurons
   rising. Without either input, feature engineering and prediction ensembling cannot be
   told apart and are reported as one combined stage.
3. **Start of residual sharpening** (the first layer of the high segment; the stage ends
   at the last layer), on the second half of depth: deletion KL rising; suppression minus
   prediction neurons rising, with suppression neurons outnumbering prediction neurons on
   average over the high segment.

The deletion KL is fitted on a log scale (fragility is a ratio of damages, and it spans
orders of magnitude between the edge and the middle layers); the other curves as measured.

*Is the step real?* Its gain (the drop in the sum of squares from one constant to the two
segments) is compared with the gains of :data:`N_NULL` curves without a step, drawn with
each layer's noise: its sampling sd (deletion KL: the width of the log of its 95 % CI / 3.92;
attention: ``sem``) and
the layer-to-layer jitter estimated from the curve, ``MAD(first differences) / 0.6745 / sqrt(2)``.
The step is *supported* when its p-value is at most :data:`ALPHA`.

*Where exactly?* The curve is redrawn ``n_bootstrap`` times as the fitted step plus its
residuals resampled with replacement plus the sampling noise (a parametric redraw from
the CI: the per-sequence values are not in the tables); the 5th-95th percentiles of the
refitted boundary, widened to include the estimate, are its interval.

*Several sources.* When the intervals of the supported sources overlap, they agree: the
boundary is the lower median of their estimates, moved into the intersection of the
intervals, and its interval is that intersection. When they do not overlap, the boundary
is *disputed*: each source's estimate is reported and nothing is averaged. With no
supported source the boundary, and the stage it delimits, is *absent*, never forced.

Feature engineering spans the layers between detokenization and ensembling. A stage's
``uncertainty_layers`` is the larger half-width of the intervals of its two boundaries.
The findings use the same fits: "the last layer is not fragile" means exactly that the
deletion KL has no supported rising step, which is also what keeps the deletion KL from
placing residual sharpening.

Example:
    >>> import pandas as pd
    >>> kl = [3.0, 2.0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 4.0]
    >>> sweep = pd.DataFrame({"intervention": "delete", "layer": range(10), "kl": kl})
    >>> estimate = detect_stages(robustness=sweep)
    >>> estimate.table[["stage", "status", "first_layer", "last_layer"]].values.tolist()
    [['detokenization', 'found', 0, 1], ['feature engineering + prediction ensembling', 'found', 2, 8], ['residual sharpening', 'found', 9, 9]]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from stages_of_inference.errors import ConfigError
from stages_of_inference.layers import relative_depth

STAGES = ("detokenization", "feature engineering", "prediction ensembling", "residual sharpening")
COMBINED_MIDDLE = "feature engineering + prediction ensembling"
BOUNDARIES = ("detokenization end", "prediction ensembling start", "residual sharpening start")
MIDDLE = (0.25, 0.75)
"""Relative depths of the reference (middle) layers of the load-bearing finding."""
ALPHA = 0.05
"""A step is supported when the share of no-step curves with at least its gain is at most this."""
N_NULL = 999
"""Curves without a step simulated for each test (p-values resolve to 1 / (N_NULL + 1))."""
N_BOOTSTRAP = 200
"""Default redraws of each curve for the boundary intervals."""
INTERVAL = (5.0, 95.0)
"""Percentiles of the redrawn boundaries that bound its interval."""
KL_FLOOR = 1e-6
"""Nats; deletion KLs are fitted as logs, floored here so a deletion that changes nothing stays finite."""
MAD_TO_SD = 1.0 / (0.6745 * np.sqrt(2.0))
"""Turns the MAD of first differences into the sd of one layer's jitter (normal noise)."""
LOAD_BEARING_FACTOR = 3.0
"""A middle layer whose deletion KL exceeds this multiple of the middle median is reported."""
HARSH_SWAP_FACTOR = 2.0
"""A swap whose KL exceeds this multiple of deleting either layer is reported."""
PAPER_RETENTION = (0.72, 0.95)
"""The paper's range of top-1 accuracy retained."""
PAPER_TOLERANCE = 0.15
"""Relative depth by which a found stage may differ from the paper's before it is reported."""
TABLE_COLUMNS = (
    "stage",
    "status",
    "n_layers",
    "first_layer",
    "last_layer",
    "first_relative_depth",
    "last_relative_depth",
    "evidence",
    "uncertainty_layers",
)
BOUNDARY_COLUMNS = (
    "boundary",
    "evidence",
    "supported",
    "layer",
    "interval_low",
    "interval_high",
    "gain",
    "null_gain_95",
    "p_value",
)


@dataclass(frozen=True, eq=False)
class StageEstimate:
    """The stages of one model: a table (one row per stage), plain-language findings, and
    the per-evidence boundary estimates (one row per boundary and evidence source).

    It unpacks as ``table, findings``; ``boundaries`` is read as an attribute.
    """

    table: pd.DataFrame
    findings: list[str]
    boundaries: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(BOUNDARY_COLUMNS)))

    def __iter__(self) -> Iterator[pd.DataFrame | list[str]]:
        return iter((self.table, self.findings))


@dataclass(frozen=True)
class Step:
    """A clean step: the index where the second segment starts, its gain, and the two levels."""

    change: int
    gain: float
    levels: tuple[float, float]


@dataclass(frozen=True)
class _Curve:
    """One curve per layer 0..L-1 and its per-layer sampling sd (0 where unknown)."""

    values: np.ndarray
    sd: np.ndarray


@dataclass(frozen=True)
class _Curves:
    """The per-layer evidence, indexed by layer 0..L-1 (NaN where not measured; sd 0 where unknown)."""

    n_layers: int
    deletion_kl: np.ndarray | None = None
    deletion: _Curve | None = None
    """The log deletion KL and its sd (what is fitted)."""
    attention: _Curve | None = None
    lens_kl: np.ndarray | None = None
    prediction: np.ndarray | None = None
    suppression: np.ndarray | None = None


@dataclass(frozen=True)
class _Source:
    """One evidence curve fitted for one boundary, on its window of layers."""

    evidence: str
    layers: np.ndarray
    values: np.ndarray
    sd: np.ndarray
    rising: bool
    ends_stage: bool
    """The boundary is the last layer of the first segment (else the first of the second)."""
    floor: float = -np.inf


@dataclass(frozen=True)
class _Fit:
    """One source's estimate of one boundary and its test."""

    evidence: str
    layer: int | None
    """The best clean step's boundary layer, supported or not (None: no clean step)."""
    interval: tuple[int, int] | None
    """The boundary's interval when the step is supported, else None."""
    gain: float
    null_gain: float
    p_value: float

    @property
    def supported(self) -> bool:
        return self.interval is not None

    def estimate(self) -> str:
        interval = "" if self.interval is None else f" [{self.interval[0]}, {self.interval[1]}]"
        return f"layer {self.layer}{interval}"


@dataclass(frozen=True)
class _Boundary:
    """One boundary: found / disputed / absent, its layer and interval when found, each source's fit."""

    name: str
    status: str
    fits: tuple[_Fit, ...]
    layer: int | None = None
    interval: tuple[int, int] | None = None

    @property
    def half_width(self) -> float:
        return (self.interval[1] - self.interval[0]) / 2 if self.interval is not None else 0.0

    def supported(self) -> list[_Fit]:
        return [fit for fit in self.fits if fit.supported]


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
    """Place the four stages of one model from the evidence given (the rule: the module docstring).

    Args:
        robustness: Sweep table of one model (deletion rows used; swaps feed findings).
        attention: Previous-token attention per layer (``layer``, ``mean``, optional ``sem``);
            a per-head table (with ``head``) is averaged over heads.
        logit_lens: Logit-lens table (``layer``, ``kl_to_final``).
        neurons: Neuron counts per layer (``layer``, ``prediction``, ``suppression``).
        n_layers: The model's layer count; by default one more than the largest layer seen.
        n_bootstrap: Redraws of each curve for the boundary intervals (0: each interval is its estimate).
        seed: Seed of the null curves and the redraws; the result is a function of the inputs and the seed.

    Returns:
        A :class:`StageEstimate` that unpacks as ``(table, findings)``. The table has columns
        ``stage``, ``status`` ("found" / "disputed" / "absent"), ``n_layers``, ``first_layer``,
        ``last_layer`` (nullable ints; missing at a disputed boundary), ``first_relative_depth``,
        ``last_relative_depth``, ``evidence``, ``uncertainty_layers``; the findings are sentences
        where the model departs from the paper's pattern, with numbers; ``boundaries`` has one
        row per boundary and evidence source (:data:`BOUNDARY_COLUMNS`).

    Raises:
        ConfigError: No input given, or an input lacks its columns.

    Example:
        >>> import pandas as pd
        >>> counts = pd.DataFrame({"layer": range(8), "prediction": [0, 0, 0, 0, 9, 9, 9, 2],
        ...                        "suppression": [0, 0, 0, 0, 1, 1, 1, 8]})
        >>> table, findings = detect_stages(neurons=counts)
        >>> table.set_index("stage").loc["prediction ensembling", ["first_layer", "last_layer"]].tolist()
        [4, 6]
    """
    curves = _curves(robustness, attention, logit_lens, neurons, n_layers)
    boundaries = _boundaries(curves, n_bootstrap, seed)
    table = _stage_table(curves, *boundaries)
    findings = _findings(curves, robustness, logit_lens, table, boundaries)
    return StageEstimate(table, findings, _boundary_table(boundaries))


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
    robustness, attention = present.get("robustness"), present.get("attention")
    kl, log_kl = (None, None) if robustness is None else _deletion_curves(robustness, n)
    counts = present.get("neuron counts")
    return _Curves(
        n_layers=n,
        deletion_kl=kl,
        deletion=log_kl,
        attention=None if attention is None else _attention_curve(attention, n),
        lens_kl=_column(present.get("logit lens"), "kl_to_final", "logit lens", n),
        prediction=_column(counts, "prediction", "neuron counts", n, missing=0.0),
        suppression=_column(counts, "suppression", "neuron counts", n, missing=0.0),
    )


def _column(
    table: pd.DataFrame | None, column: str, what: str, n_layers: int, missing: float = np.nan
) -> np.ndarray | None:
    """One required column per layer (``missing`` for a layer not in the table), or None without a table."""
    if table is None:
        return None
    _require(table, {column}, what)
    return np.nan_to_num(_per_layer(table, column, n_layers), nan=missing)


def _deletion_curves(robustness: pd.DataFrame, n_layers: int) -> tuple[np.ndarray, _Curve]:
    """The deletion KL per layer, and its log with the sd of the log (log CI width / 3.92; 0 without a CI)."""
    _require(robustness, {"intervention", "kl"}, "robustness")
    deletion = robustness[robustness.intervention == "delete"]
    kl = _per_layer(deletion, "kl", n_layers)
    sd = np.zeros(n_layers)
    if {"kl_ci_low", "kl_ci_high"} <= set(deletion.columns):
        high, low = _per_layer(deletion, "kl_ci_high", n_layers), _per_layer(deletion, "kl_ci_low", n_layers)
        sd = np.nan_to_num((_log_kl(high) - _log_kl(low)) / 3.92)
    return kl, _Curve(_log_kl(kl), sd)


def _attention_curve(attention: pd.DataFrame, n_layers: int) -> _Curve:
    _require(attention, {"mean"}, "attention")
    sd = np.nan_to_num(_per_layer(attention, "sem", n_layers)) if "sem" in attention.columns else np.zeros(n_layers)
    return _Curve(_per_layer(attention, "mean", n_layers), sd)


def _log_kl(kl: np.ndarray) -> np.ndarray:
    """Natural log of a KL curve, floored at :data:`KL_FLOOR` (NaN stays NaN)."""
    return np.log(np.maximum(kl, KL_FLOOR))


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


# ---------------------------------------------------------------- the step fit


def _split_gains(values: np.ndarray, rising: bool, floor: float = -np.inf) -> np.ndarray:
    """Gain of every split of each row into two segments; -inf where the split is not a clean step.

    Column ``k - 1`` is the split whose second segment starts at index ``k`` (1..m-1).
    ``floor``: the high segment's mean must also exceed it.
    """
    z = -values if rising else values  # a rising step of ``values`` is a falling step of ``z``
    m = z.shape[1]
    k = np.arange(1, m)
    sums = np.cumsum(z, axis=1)[:, :-1]
    first = sums / k
    second = (z.sum(axis=1, keepdims=True) - sums) / (m - k)
    first_min = np.minimum.accumulate(z, axis=1)[:, :-1]
    second_max = np.maximum.accumulate(z[:, ::-1], axis=1)[:, ::-1][:, 1:]
    high = -second if rising else first
    rounding = 1e-9 * (1.0 + np.abs(z).max(axis=1, keepdims=True))  # a constant curve's means are not exact
    clean = (first_min > second + rounding) & (second_max < first - rounding) & (high > floor)
    return np.where(clean, k * (m - k) / m * (first - second) ** 2, -np.inf)


def fit_step(values: np.ndarray, *, rising: bool = False, floor: float = -np.inf) -> Step | None:
    """The least-squares clean step of a curve, or None when no split is a clean step.

    A split into a first and a second constant segment is a clean step when every value of
    the high segment is above the low segment's mean and every value of the low segment is
    below the high segment's mean (high first unless ``rising``); its gain is the drop in the
    sum of squares from one constant to the two segments. ``floor``: the high segment's mean
    must also exceed it.

    Example:
        >>> step = fit_step(np.array([5.0, 4.0, 1.0, 1.0, 1.0]))
        >>> step.change, round(step.gain, 2), step.levels
        (2, 14.7, (4.5, 1.0))
        >>> fit_step(np.array([1.0, 1.0, 6.0, 1.0]), rising=True) is None  # a spike is not a step
        True
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return None
    gains = _split_gains(values[None, :], rising, floor)[0]
    if not np.isfinite(gains.max()):
        return None
    change = int(np.argmax(gains)) + 1
    return Step(change, float(gains[change - 1]), (float(values[:change].mean()), float(values[change:].mean())))


def jitter_sd(values: np.ndarray) -> float:
    """The sd of a curve's layer-to-layer noise: ``MAD(first differences) / 0.6745 / sqrt(2)``.

    Robust to a step: one large difference among many does not move the MAD.

    Example:
        >>> jitter_sd(np.array([5.0, 5.0, 5.0, 1.0, 1.0, 1.0]))
        0.0
    """
    differences = np.diff(np.asarray(values, dtype=np.float64))
    if differences.size < 2:
        return 0.0
    return float(np.median(np.abs(differences - np.median(differences))) * MAD_TO_SD)


def _best_gains(values: np.ndarray, rising: bool, floor: float = -np.inf) -> np.ndarray:
    """Each row's largest clean-step gain (0 when it has none)."""
    return np.maximum(_split_gains(values, rising, floor).max(axis=1), 0.0)


def _boundary_layer(source: _Source, change: int) -> int:
    return int(source.layers[change - 1] if source.ends_stage else source.layers[change])


def _fit_source(source: _Source, n_bootstrap: int, rng: np.random.Generator) -> _Fit:
    """Fit, test and bootstrap one source (see the module docstring)."""
    step = fit_step(source.values, rising=source.rising, floor=source.floor)
    if step is None:
        return _Fit(source.evidence, None, None, 0.0, np.nan, 1.0)
    noise = np.sqrt(source.sd**2 + jitter_sd(source.values) ** 2)
    null = _best_gains(rng.standard_normal((N_NULL, source.values.size)) * noise, source.rising)
    p_value = (1 + int(np.sum(null >= step.gain))) / (1 + N_NULL)
    interval = _interval(source, step, n_bootstrap, rng) if p_value <= ALPHA else None
    return _Fit(
        source.evidence,
        _boundary_layer(source, step.change),
        interval,
        step.gain,
        float(np.percentile(null, 95)),
        p_value,
    )


def _interval(source: _Source, step: Step, n_bootstrap: int, rng: np.random.Generator) -> tuple[int, int]:
    """5th-95th percentile of the boundary over residual-plus-sampling redraws, widened to the estimate."""
    layer = _boundary_layer(source, step.change)
    if n_bootstrap <= 0:
        return layer, layer
    m = source.values.size
    fitted = np.where(np.arange(m) < step.change, *step.levels)
    residuals = source.values - fitted
    draws = fitted + rng.choice(residuals, size=(n_bootstrap, m)) + rng.standard_normal((n_bootstrap, m)) * source.sd
    gains = _split_gains(draws, source.rising, source.floor)
    found = np.isfinite(gains.max(axis=1))
    layers = [_boundary_layer(source, int(change) + 1) for change in gains[found].argmax(axis=1)]
    if not layers:
        return layer, layer
    low = int(np.percentile(layers, INTERVAL[0], method="lower"))
    high = int(np.percentile(layers, INTERVAL[1], method="higher"))
    return min(low, layer), max(high, layer)


# ---------------------------------------------------------------- boundaries


def _window(
    evidence: str, curve: _Curve, layers: np.ndarray, *, rising: bool, ends_stage: bool, floor: float = -np.inf
) -> _Source:
    """A source on the given layers, leaving out layers not measured."""
    keep = layers[np.isfinite(curve.values[layers])]
    return _Source(evidence, keep, curve.values[keep], curve.sd[keep], rising, ends_stage, floor)


def _exact(values: np.ndarray) -> _Curve:
    """A curve without per-layer sampling uncertainty."""
    return _Curve(values, np.zeros(values.size))


def _halves(n_layers: int) -> tuple[np.ndarray, np.ndarray]:
    """The layers of the first half of depth (relative depth <= 0.5) and of the second (>= 0.5)."""
    depth = np.array([relative_depth(layer, n_layers) for layer in range(n_layers)])
    return np.flatnonzero(depth <= 0.5), np.flatnonzero(depth >= 0.5)


def _detokenization_sources(c: _Curves) -> list[_Source]:
    first, _ = _halves(c.n_layers)
    sources = []
    if c.deletion is not None:
        sources.append(_window("deletion KL", c.deletion, first, rising=False, ends_stage=True))
    if c.attention is not None:
        sources.append(_window("previous-token attention", c.attention, first, rising=False, ends_stage=True))
    return sources


def _ensembling_sources(c: _Curves, start: int) -> list[_Source]:
    layers = np.arange(start, c.n_layers)
    sources = []
    if c.lens_kl is not None:
        sources.append(_window("logit-lens KL to final", _exact(c.lens_kl), layers, rising=False, ends_stage=False))
    if c.prediction is not None:
        sources.append(_window("prediction neurons", _exact(c.prediction), layers, rising=True, ends_stage=False))
    return sources


def _sharpening_sources(c: _Curves) -> list[_Source]:
    _, second = _halves(c.n_layers)
    sources = []
    if c.deletion is not None:
        sources.append(_window("deletion KL", c.deletion, second, rising=True, ends_stage=False))
    if c.prediction is not None and c.suppression is not None:
        sources.append(
            _window(
                "suppression - prediction neurons",
                _exact(c.suppression - c.prediction),
                second,
                rising=True,
                ends_stage=False,
                floor=0.0,
            )
        )
    return sources


def _combine(name: str, fits: list[_Fit]) -> _Boundary:
    """Agreeing sources give one boundary; non-overlapping intervals make it disputed (see the module docstring)."""
    estimates = [(fit.layer, fit.interval) for fit in fits if fit.layer is not None and fit.interval is not None]
    if not estimates:
        return _Boundary(name, "absent", tuple(fits))
    low = max(interval[0] for _, interval in estimates)
    high = min(interval[1] for _, interval in estimates)
    if low > high:
        return _Boundary(name, "disputed", tuple(fits))
    layers = sorted(layer for layer, _ in estimates)
    layer = min(max(layers[(len(layers) - 1) // 2], low), high)
    return _Boundary(name, "found", tuple(fits), layer, (low, high))


def _boundaries(c: _Curves, n_bootstrap: int, seed: int) -> tuple[_Boundary, _Boundary | None, _Boundary]:
    """The three boundaries (ensembling: None when no input can separate it)."""

    def fitted(index: int, sources: list[_Source]) -> _Boundary:
        fits = [
            _fit_source(source, n_bootstrap, np.random.default_rng([seed, index, number]))
            for number, source in enumerate(sources)
        ]
        return _combine(BOUNDARIES[index], fits)

    detok = fitted(0, _detokenization_sources(c))
    sharpening = fitted(2, _sharpening_sources(c))
    if c.lens_kl is None and c.prediction is None:
        return detok, None, sharpening
    claimed = [fit.layer for fit in detok.supported() if fit.layer is not None]
    start = 1 + (detok.layer if detok.layer is not None else max(claimed, default=-1))
    return detok, fitted(1, _ensembling_sources(c, start)), sharpening


def _boundary_table(boundaries: tuple[_Boundary, _Boundary | None, _Boundary]) -> pd.DataFrame:
    rows = [
        {
            "boundary": boundary.name,
            "evidence": fit.evidence,
            "supported": fit.supported,
            "layer": fit.layer,
            "interval_low": fit.interval[0] if fit.interval else None,
            "interval_high": fit.interval[1] if fit.interval else None,
            "gain": fit.gain,
            "null_gain_95": fit.null_gain,
            "p_value": fit.p_value,
        }
        for boundary in boundaries
        if boundary is not None
        for fit in boundary.fits
    ]
    table = pd.DataFrame(rows, columns=list(BOUNDARY_COLUMNS))
    return table.astype({"layer": "Int64", "interval_low": "Int64", "interval_high": "Int64"})


# ---------------------------------------------------------------- table


def _describe_fit(fit: _Fit) -> str:
    if fit.supported:
        return f"{fit.evidence}: {fit.estimate()}, p = {fit.p_value:.2g}"
    if fit.layer is None:
        return f"{fit.evidence}: no clean step"
    return f"{fit.evidence}: no supported step (best at layer {fit.layer}, p = {fit.p_value:.2g})"


def _describe(boundary: _Boundary | None, what: str) -> str:
    if boundary is None:
        return "no logit-lens or neuron evidence to separate the two stages"
    if not boundary.fits:
        return f"{what}: no evidence"
    parts = "; ".join(_describe_fit(fit) for fit in boundary.fits)
    if boundary.status == "found":
        low, high = boundary.interval or (boundary.layer, boundary.layer)
        return f"{what} at layer {boundary.layer} [{low}, {high}] ({parts})"
    if boundary.status == "disputed":
        return f"{what} disputed, the sources' intervals do not overlap ({parts})"
    return f"{what}: no supported step ({parts})"


def _row(
    stage: str, status: str, first: int | None, last: int | None, n_layers: int, evidence: str, uncertainty: float
) -> dict:
    if status == "absent":
        first = last = None
    return {
        "stage": stage,
        "status": status,
        "n_layers": n_layers,
        "first_layer": first,
        "last_layer": last,
        "first_relative_depth": np.nan if first is None else relative_depth(first, n_layers),
        "last_relative_depth": np.nan if last is None else relative_depth(last, n_layers),
        "evidence": evidence,
        "uncertainty_layers": uncertainty if status == "found" else np.nan,
    }


def _status(*boundaries: _Boundary | None) -> str:
    """A stage between these boundaries is disputed when any of them is, else found."""
    return "disputed" if any(b is not None and b.status == "disputed" for b in boundaries) else "found"


def _after(boundary: _Boundary) -> int | None:
    """First layer after a boundary that ends a stage (0 when it is absent, unknown when disputed)."""
    if boundary.status == "absent":
        return 0
    return None if boundary.layer is None else boundary.layer + 1


def _before(boundary: _Boundary, last: int) -> int | None:
    """Last layer before a boundary that starts a stage (the last layer when absent, unknown when disputed)."""
    if boundary.status == "absent":
        return last
    return None if boundary.layer is None else boundary.layer - 1


def _stage_table(c: _Curves, detok: _Boundary, ensembling: _Boundary | None, sharpening: _Boundary) -> pd.DataFrame:
    last = c.n_layers - 1
    first_middle, last_middle = _after(detok), _before(sharpening, last)
    rows = [
        _row(STAGES[0], detok.status, 0, detok.layer, c.n_layers, _describe(detok, "end"), detok.half_width),
    ]
    if ensembling is None:
        rows.append(
            _row(
                COMBINED_MIDDLE,
                _status(detok, sharpening),
                first_middle,
                last_middle,
                c.n_layers,
                _describe(None, ""),
                max(detok.half_width, sharpening.half_width),
            )
        )
    else:
        rows.extend(_middle_rows(c.n_layers, detok, ensembling, sharpening, first_middle, last_middle))
    rows.append(
        _row(
            STAGES[3],
            sharpening.status,
            sharpening.layer,
            last,
            c.n_layers,
            _describe(sharpening, "start"),
            sharpening.half_width,
        )
    )
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    return table.astype({"first_layer": "Int64", "last_layer": "Int64"})


def _middle_rows(
    n_layers: int,
    detok: _Boundary,
    ensembling: _Boundary,
    sharpening: _Boundary,
    first_middle: int | None,
    last_middle: int | None,
) -> list[dict]:
    """Feature engineering and prediction ensembling; ensembling starting inside sharpening is absent."""
    evidence = _describe(ensembling, "start")
    if ensembling.layer is not None and last_middle is not None and ensembling.layer > last_middle:
        evidence += f"; it starts inside residual sharpening (which starts at layer {last_middle + 1})"
        ensembling = _Boundary(ensembling.name, "absent", ensembling.fits)
    if ensembling.status == "absent":
        engineering = _row(
            STAGES[1],
            _status(detok, sharpening),
            first_middle,
            last_middle,
            n_layers,
            _describe(ensembling, "ends where ensembling starts"),
            max(detok.half_width, sharpening.half_width),
        )
        return [engineering, _row(STAGES[2], "absent", None, None, n_layers, evidence, np.nan)]
    engineering = _row(
        STAGES[1],
        _status(detok, ensembling),
        first_middle,
        _before(ensembling, n_layers - 1),
        n_layers,
        _describe(ensembling, "ends where ensembling starts"),
        max(detok.half_width, ensembling.half_width),
    )
    ensembling_row = _row(
        STAGES[2],
        _status(ensembling, sharpening),
        ensembling.layer,
        last_middle,
        n_layers,
        evidence,
        max(ensembling.half_width, sharpening.half_width),
    )
    return [engineering, ensembling_row]


# ---------------------------------------------------------------- findings


def _findings(
    c: _Curves,
    robustness: pd.DataFrame | None,
    logit_lens: pd.DataFrame | None,
    table: pd.DataFrame,
    boundaries: tuple[_Boundary, _Boundary | None, _Boundary],
) -> list[str]:
    findings = [f"{row.stage} is absent: {row.evidence}." for row in table.itertuples() if row.status == "absent"]
    for check in (
        _disputes(boundaries),
        _deletion_findings(c, boundaries),
        _robustness_findings(robustness),
        _depth_findings(table),
        _lens_findings(logit_lens),
        _neuron_findings(c),
    ):
        findings.extend(check)
    return findings


def _disputes(boundaries: tuple[_Boundary, _Boundary | None, _Boundary]) -> list[str]:
    found = []
    for boundary in boundaries:
        if boundary is not None and boundary.status == "disputed":
            estimates = "; ".join(f"{fit.evidence}: {fit.estimate()}" for fit in boundary.supported())
            found.append(
                f"the {boundary.name} is disputed: {estimates}; the intervals do not overlap, so the "
                f"estimates are reported separately, not averaged"
            )
    return found


def _deletion_findings(c: _Curves, boundaries: tuple[_Boundary, _Boundary | None, _Boundary]) -> list[str]:
    """Load-bearing middle layers, and an edge layer that is not fragile by the stage rule itself."""
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
    edges = ((boundaries[0], 0, "first", "falling"), (boundaries[2], n - 1, "last", "rising"))
    for boundary, layer, where, direction in edges:
        fit = next(fit for fit in boundary.fits if fit.evidence == "deletion KL")
        if not fit.supported:
            found.append(
                f"the {where} layer is not fragile: the deletion KL has no supported {direction} step at its end of "
                f"depth ({_describe_fit(fit)}; deleting layer {layer} gives KL {kl[layer]:.3g} nats) — "
                f"the paper finds the edges fragile"
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
    """Swaps whose KL exceeds :data:`HARSH_SWAP_FACTOR` x deleting either of the two layers."""
    kl = robustness.pivot_table(index="layer", columns="intervention", values="kl")
    if not {"delete", "swap"} <= set(kl.columns):
        return []
    found = []
    for layer, swap in kl["swap"].dropna().items():
        worst_deletion = kl["delete"].reindex([layer, layer + 1]).max()
        if np.isfinite(worst_deletion) and swap > HARSH_SWAP_FACTOR * worst_deletion:
            found.append(
                f"swapping layers {layer}-{layer + 1} is harsher than deleting either: KL {swap:.3g} nats vs "
                f"at most {worst_deletion:.3g} ({swap / worst_deletion:.1f}x)"
            )
    return found


_PAPER_DEPTHS = {
    "detokenization": (None, 0.2),
    "prediction ensembling": (0.5, None),
    "residual sharpening": (0.85, None),
}
"""The paper's rough boundaries (first, last relative depth) that a found stage is compared with."""


def _depth_findings(table: pd.DataFrame) -> list[str]:
    found = []
    for row in table[table.status == "found"].itertuples():
        first, last = _PAPER_DEPTHS.get(row.stage, (None, None))
        if last is not None and row.last_relative_depth > last + PAPER_TOLERANCE:
            found.append(
                f"{row.stage} extends to relative depth {row.last_relative_depth:.2f} "
                f"(layer {row.last_layer}); the paper puts its end near {last:.2f}"
            )
        if first is not None and abs(row.first_relative_depth - first) > PAPER_TOLERANCE:
            found.append(
                f"{row.stage} starts at relative depth {row.first_relative_depth:.2f} "
                f"(layer {row.first_layer}); the paper puts its start near {first:.2f}"
            )
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
        return (
            ["no prediction neurons found (kurtosis threshold not reached in any layer)"]
            if c.prediction is not None
            else []
        )
    peak = int(np.argmax(c.prediction))
    depth = relative_depth(peak, c.n_layers)
    if abs(depth - 0.85) > PAPER_TOLERANCE:
        return [
            (
                f"prediction neurons peak at layer {peak} (relative depth {depth:.2f}, "
                f"{c.prediction[peak]:.0f} neurons); the paper finds the peak near 0.85"
            )
        ]
    return []


# ---------------------------------------------------------------- figures
