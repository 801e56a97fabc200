"""The pruning planner: which layers to delete, chosen by re-measuring every joint deletion.

:func:`prune_plan` splits the windows into a selection set and a held-out set (the
first and the last windows of one corpus load: windows never overlap, so the two sets
share no token). On the selection windows it searches sets of deleted layers, one more
layer per step, scoring every candidate set by running the model with all of its layers
deleted at once (:func:`~stages_of_inference.sweep.robustness_sweep`, with prefix
reuse); single-layer scores are never summed. ``"greedy"`` keeps the best set per step,
``"beam"`` the best ``beam_width`` sets. The objective (:data:`OBJECTIVE`) is the KL
divergence from the original model, ties broken by higher accuracy, then by the lower
layers.

Every chosen set, and the sets that ShortGPT's Block Influence and Gromov et al.'s
angular distance choose for the same budgets on the same selection windows
(:mod:`~stages_of_inference.pruning.baselines`), is then evaluated once on the held-out
windows with bootstrap CIs: the :class:`PrunePlan`'s ``comparison`` table.

Layers are 0-based, in the original model's numbering, everywhere.

Example:
    >>> import stages_of_inference as soi
    >>> model = soi.load_model("smollm2-135m")  # doctest: +SKIP
    >>> tokens = soi.load_corpus("embedded", model, n_tokens=2048, seq_len=256, seed=0)  # doctest: +SKIP
    >>> plan = soi.prune_plan(model, tokens, max_layers=4)  # doctest: +SKIP
    >>> plan.deleted_layers()  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from jaxtyping import Int
from torch import Tensor

from stages_of_inference.activations import DEFAULT_BATCH_SIZE
from stages_of_inference.errors import ConfigError
from stages_of_inference.interventions import Intervention, deletion_order
from stages_of_inference.layers import n_layers_of
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.pruning.baselines import (
    angular_distance_plan,
    block_influence_plan,
    check_budget,
    residual_similarity,
)
from stages_of_inference.runs.identity import tokens_sha256
from stages_of_inference.sweep import robustness_sweep
from stages_of_inference.tokens import check_windows

STRATEGIES = ("greedy", "beam")
"""The search strategies of :func:`prune_plan`."""

OBJECTIVE = "lowest KL(original ‖ pruned) on the selection windows; ties: higher accuracy, then lower layers"
"""How the planner ranks candidate sets of deleted layers."""

METHODS = ("planner", "block_influence", "angular_distance")
"""The methods of the comparison table, in the order they are drawn."""

HELD_OUT_METRICS = ("kl", "accuracy", "relative_accuracy", "loss", "top1_agreement")
"""The held-out metrics reported for every plan, each with its 95 % CI."""

Layers = tuple[int, ...]


@dataclass(frozen=True)
class PrunePlan:
    """The layers to delete for each budget, and how every plan fares on held-out windows.

    Attributes:
        model: the model's name (what was passed to ``load_model``).
        model_identity: the fields that determine its numbers (``soi_source.identity()``).
        n_layers: the original model's depth.
        strategy: ``"greedy"`` or ``"beam"``.
        beam_width: sets kept per step (1 for greedy).
        steps: one row per budget ``step = 1 .. max_layers``: ``deleted_layers`` (JSON,
            0-based, original numbering), ``selection_kl``, ``selection_accuracy``,
            ``selection_loss``, then the held-out metrics with ``_ci_low`` / ``_ci_high``.
        comparison: one row per method (:data:`METHODS`) and budget: ``method``,
            ``n_deleted``, ``deleted_layers``, the held-out metrics with CIs, ``baseline_accuracy``
            and ``baseline_loss`` (of the unpruned model), ``n_tokens``.
        layer_scores: Block Influence per layer (selection windows).
        angular_distances: angular distance per block of consecutive layers (selection windows).
        tokens_sha256: hashes of the ``selection`` and ``held_out`` windows.
    """

    model: str
    model_identity: dict[str, Any]
    n_layers: int
    strategy: str
    beam_width: int
    steps: pd.DataFrame
    comparison: pd.DataFrame
    layer_scores: pd.DataFrame
    angular_distances: pd.DataFrame
    tokens_sha256: dict[str, str]

    @property
    def max_layers(self) -> int:
        """The largest budget planned."""
        return len(self.steps)

    def deleted_layers(self, n_deleted: int | None = None) -> list[int]:
        """The planner's layers to delete for a budget (default: the largest), 0-based, original numbering.

        Raises:
            ConfigError: No step of the plan deletes ``n_deleted`` layers.
        """
        budget = self.max_layers if n_deleted is None else n_deleted
        rows = self.steps[self.steps.step == budget]
        if rows.empty:
            raise ConfigError(f"the plan has no step deleting {budget} layers; choose 1 to {self.max_layers}")
        return list(json.loads(rows.deleted_layers.iloc[0]))

    def kept_layers(self, n_deleted: int | None = None) -> list[int]:
        """The layers that stay, in order, in the original numbering."""
        return deletion_order(self.n_layers, self.deleted_layers(n_deleted))


def split_held_out(
    tokens: Int[Tensor, "batch pos"], held_out: float
) -> tuple[Int[Tensor, "selection pos"], Int[Tensor, "held_out pos"]]:
    """Split windows into selection (the first) and held-out (the last ``round(held_out * n)``) windows.

    Raises:
        ConfigError: Either part would hold no window.

    Example:
        >>> import torch
        >>> selection, held = split_held_out(torch.arange(12).reshape(4, 3), 0.25)
        >>> selection.shape[0], held[:, 0].tolist()
        (3, [9])
    """
    n_windows = tokens.shape[0]
    n_held = round(held_out * n_windows)
    if not 0 < held_out < 1 or n_held < 1 or n_held >= n_windows:
        raise ConfigError(
            f"held_out={held_out} (--held-out) of {n_windows} windows leaves "
            f"{n_windows - n_held} selection and {n_held} held-out windows; "
            "pass a held-out fraction in (0, 1) and enough tokens for at least 2 windows"
        )
    return tokens[: n_windows - n_held], tokens[n_windows - n_held :]


def prune_plan(
    model: LoadedModel,
    tokens: Int[Tensor, "batch pos"],
    max_layers: int,
    *,
    strategy: str = "greedy",
    beam_width: int = 4,
    held_out: float = 0.5,
    batch_size: int = DEFAULT_BATCH_SIZE,
    n_bootstrap: int = 1000,
    seed: int = 0,
    progress: bool = True,
) -> PrunePlan:
    """Choose up to ``max_layers`` layers to delete, and compare the plans with Block Influence and angular distance.

    Args:
        model: The model to prune (restored after every forward).
        tokens: BOS-first windows from :func:`~stages_of_inference.corpus.load_corpus`.
        max_layers: The largest number of layers to delete; every budget ``1 ..
            max_layers`` is planned.
        strategy: ``"greedy"`` (one set kept per step) or ``"beam"``.
        beam_width: Sets kept per step by ``"beam"``.
        held_out: Fraction of the windows (the last ones) kept for evaluation.
        batch_size: Windows per forward pass.
        n_bootstrap: Sequence resamples for the held-out 95 % CIs.
        seed: Seed of the bootstrap.
        progress: Show progress bars.

    Returns:
        The :class:`PrunePlan`.

    Raises:
        ConfigError: ``max_layers`` outside ``1 .. L - 1``, an unknown strategy, a beam
            width below 1, or a split leaving no selection or held-out window.

    Example:
        >>> plan = prune_plan(model, tokens, max_layers=2, strategy="beam", beam_width=2)  # doctest: +SKIP
        >>> plan.comparison.pivot(index="n_deleted", columns="method", values="kl")  # doctest: +SKIP
    """
    n_layers = n_layers_of(model)
    check_budget(max_layers, n_layers)
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r} (--strategy); use one of {', '.join(map(repr, STRATEGIES))}")
    width = 1 if strategy == "greedy" else beam_width
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ConfigError(f"beam_width={beam_width!r} (--beam-width) must be an integer of at least 1")
    check_windows(tokens, what="the pruning planner")
    selection, held = split_held_out(tokens, held_out)
    layer_scores, angular = residual_similarity(model, selection, batch_size=batch_size)
    chosen = _search(model, selection, n_layers, max_layers, width, batch_size, progress)
    plans = {
        "planner": [layers for layers, _ in chosen],
        "block_influence": [tuple(block_influence_plan(layer_scores, k)) for k in range(1, max_layers + 1)],
        "angular_distance": [tuple(angular_distance_plan(angular, k)) for k in range(1, max_layers + 1)],
    }
    comparison = _evaluate(model, held, plans, n_layers, batch_size, n_bootstrap, seed, progress)
    steps = _steps_table(chosen, comparison)
    return PrunePlan(
        model=str(model.soi_source.name),
        model_identity=model.soi_source.identity(),
        n_layers=n_layers,
        strategy=strategy,
        beam_width=width,
        steps=steps,
        comparison=comparison,
        layer_scores=layer_scores,
        angular_distances=angular,
        tokens_sha256={"selection": tokens_sha256(selection), "held_out": tokens_sha256(held)},
    )


def deletion(layers: Iterable[int], n_layers: int) -> Intervention:
    """The intervention running every layer but ``layers``, in the original order.

    Example:
        >>> deletion([1, 2], 4).label
        'order 0,3'
    """
    return Intervention.of_order(deletion_order(n_layers, layers))


def _search(
    model: LoadedModel,
    selection: Tensor,
    n_layers: int,
    max_layers: int,
    width: int,
    batch_size: int,
    progress: bool,
) -> list[tuple[Layers, dict[str, float]]]:
    """The best set of each size ``1 .. max_layers`` and its selection metrics, growing ``width`` sets per step."""
    beam: list[Layers] = [()]
    chosen = []
    for _ in range(max_layers):
        candidates = sorted(
            {tuple(sorted((*kept, layer))) for kept in beam for layer in range(n_layers) if layer not in kept}
        )
        table = robustness_sweep(
            model,
            selection,
            [deletion(layers, n_layers) for layers in candidates],
            batch_size=batch_size,
            n_bootstrap=0,
            progress=progress,
        )
        # candidates are in lexicographic order and the sort is stable: ties go to the lower layers
        ranked = table.sort_values(["kl", "accuracy"], ascending=[True, False], kind="stable").index[:width]
        beam = [candidates[i] for i in ranked]
        best = table.loc[ranked[0]]
        chosen.append((beam[0], {m: float(best[m]) for m in ("kl", "accuracy", "loss")}))
    return chosen


def _evaluate(
    model: LoadedModel,
    held: Tensor,
    plans: dict[str, list[Layers]],
    n_layers: int,
    batch_size: int,
    n_bootstrap: int,
    seed: int,
    progress: bool,
) -> pd.DataFrame:
    """Every method's plan for every budget on the held-out windows (each distinct set run once)."""
    distinct = sorted({layers for sets in plans.values() for layers in sets}, key=lambda s: (len(s), s))
    table = robustness_sweep(
        model,
        held,
        [deletion(layers, n_layers) for layers in distinct],
        batch_size=batch_size,
        n_bootstrap=n_bootstrap,
        seed=seed,
        progress=progress,
    )
    by_set = dict(zip(distinct, table.to_dict("records"), strict=True))
    columns = [c for m in HELD_OUT_METRICS for c in (m, f"{m}_ci_low", f"{m}_ci_high")]
    columns += ["baseline_accuracy", "baseline_loss", "n_tokens"]
    rows = [
        {
            "method": method,
            "n_deleted": len(layers),
            "deleted_layers": json.dumps(list(layers)),
            **{c: by_set[layers][c] for c in columns},
        }
        for method in METHODS
        for layers in plans[method]
    ]
    return pd.DataFrame(rows)


def _steps_table(chosen: Sequence[tuple[Layers, dict[str, float]]], comparison: pd.DataFrame) -> pd.DataFrame:
    """One row per budget: the planner's set, its selection metrics and its held-out metrics with CIs."""
    held = comparison[comparison.method == "planner"].drop(columns=["method", "n_deleted", "deleted_layers"])
    rows = [
        {"step": step, "deleted_layers": json.dumps(list(layers)), **{f"selection_{m}": v for m, v in metrics.items()}}
        for step, (layers, metrics) in enumerate(chosen, start=1)
    ]
    return pd.concat([pd.DataFrame(rows), held.reset_index(drop=True)], axis=1)
