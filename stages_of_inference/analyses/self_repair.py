"""Self-repair: how the later layers of an intervened model undo the damage, read through the logit lens.

For an :class:`~stages_of_inference.interventions.Intervention`, the logit lens
(:mod:`stages_of_inference.analyses.logit_lens`) of the intervened model is read at
the same points ``0..L`` as the original's and compared with the **original** model's
output: ``kl(p)`` is KL(original output || lens at point p), in nats, averaged over
the scored tokens.

Aligning the points. Point ``p`` of the original is the residual after layers
``0..p-1``. Point ``p`` of the intervened run is its residual after the last slot of
its layer order whose layer, and every layer run before it, is below ``p``: after
deleting layer ``ℓ``, point ``ℓ + 1`` is the residual that skipped ``ℓ`` (as if block
``ℓ`` passed its input through); after swapping ``ℓ`` and ``ℓ + 1``, point ``ℓ + 1`` is
the residual before either ran; after repeating ``ℓ``, point ``ℓ + 1`` follows the
repeats. A component deletion keeps the order and changes its layer's output.

Damage and repair. The points before the intervention's *first changed point*
``p*`` (the first point whose layers, or their hooks, differ from the original's)
hold the original residual exactly. With the excess ``e(p) = kl_int(p) - kl_orig(p)``:

* ``damage = e(p*)``, the KL jump the intervention introduces;
* ``repair(p) = e(p - 1) - e(p)`` for ``p > p*``: how much of the excess layer
  ``p - 1`` removes (nats; negative if it amplifies the damage), 0 for ``p <= p*``;
* ``repair_fraction(p) = repair(p) / damage`` (NaN when the damage is not positive).

The repairs after ``p*`` add up to ``damage - e(L)``: the part of the jump that is
gone at the output. An intervention that changes nothing has zero excess and zero
repair everywhere. Alongside the KL, each point carries the other lens metrics and
the norms of the residual (and of the attention and MLP outputs of layer ``p - 1``,
when it runs) of both models (BOS excluded, as in
:mod:`~stages_of_inference.analyses.norms`).

Cost: the original model's forward and lens run once per batch; each intervention
runs only the blocks from its first changed slot (prefix reuse,
:func:`~stages_of_inference.interventions.prefix.intervened_residual`) and decodes
only its points from ``p*`` on, so all single deletions cost about ``L / 2`` lens passes.

Example:
    >>> aligned_slots([0, 1, 3], 4)  # delete layer 2 of 4
    [0, 1, 2, 2, 3]
    >>> aligned_slots([0, 2, 1, 3], 4)  # swap layers 1-2
    [0, 1, 1, 3, 4]
    >>> first_changed_point([0, 1, 3], None, 4), first_changed_point([0, 1, 2, 3], 1, 4)
    (3, 2)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm

from stages_of_inference.activations import DEFAULT_BATCH_SIZE, cached_activations
from stages_of_inference.analyses.logit_lens import METRICS, lens_token_metrics, residual_hook_names
from stages_of_inference.analyses.norms import norm_sum
from stages_of_inference.interventions.hooks import HookList
from stages_of_inference.interventions.prefix import intervened_residual, start_slot
from stages_of_inference.interventions.spec import Intervention
from stages_of_inference.layers import n_layers_of
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.tokens import check_windows, prediction_targets, scored_positions

NORMS = {"resid_norm": None, "attn_out_norm": "hook_attn_out", "mlp_out_norm": "hook_mlp_out"}
"""Norm column -> the per-block hook it reads (the residual norm is of the aligned point itself)."""
_HOOKS = [hook for hook in NORMS.values() if hook]

_KL = METRICS.index("kl_to_final")


def aligned_slots(order: Sequence[int], n_layers: int) -> list[int]:
    """For each point ``p = 0..L``, how many slots of ``order`` have run at the aligned point.

    The slots ``k`` whose running maximum layer ``max(order[:k])`` is below ``p``
    (the rule of the module docstring).
    """
    running = np.maximum.accumulate(np.asarray(order)) if len(order) else np.zeros(0)
    return [int((running < point).sum()) for point in range(n_layers + 1)]


def first_changed_point(order: Sequence[int], hooked_layer: int | None, n_layers: int) -> int | None:
    """The first point whose residual differs from the original's by construction (None: none does).

    Args:
        order: The intervened layer order.
        hooked_layer: The layer whose output the intervention's hooks change, if any.
        n_layers: The original depth ``L``.
    """
    slots = aligned_slots(order, n_layers)
    for point in range(n_layers + 1):
        if list(order[: slots[point]]) != list(range(point)) or (hooked_layer is not None and hooked_layer < point):
            return point
    return None


def single_deletions(n_layers: int) -> list[Intervention]:
    """``delete layer i`` for every layer.

    Example:
        >>> [i.label for i in single_deletions(2)]
        ['delete layer 0', 'delete layer 1']
    """
    return [Intervention("delete", layer) for layer in range(n_layers)]


class _Accumulator:
    """Sums over tokens of one model's lens metrics and norms at every aligned point."""

    def __init__(self, n_points: int) -> None:
        self.metrics = torch.zeros(n_points, len(METRICS), dtype=torch.float64)
        self.norms = np.zeros((n_points, len(NORMS)))
        self.ran = np.zeros((n_points, len(NORMS)), dtype=bool)


def self_repair(
    model: LoadedModel,
    tokens: Int[Tensor, "batch pos"],
    interventions: Intervention | Sequence[Intervention] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
) -> pd.DataFrame:
    """The lens curves and norms of intervened models beside the original's, with damage and repair.

    Args:
        model: A ``TransformerBridge``.
        tokens: ``[batch, pos]`` windows, BOS at position 0.
        interventions: One intervention, several, or None for every single-layer
            deletion (:func:`single_deletions`).
        batch_size: Windows per forward pass.
        progress: Show a progress bar over batches.

    Returns:
        One row per intervention and point ``0..L``: ``intervention`` (its label),
        ``kind``, ``intervened_layer`` (its ``layer``), ``point``, ``layer``
        (``point - 1``), ``relative_depth`` (``point / L``), ``changed_point`` (``p*``,
        -1 if none), ``original_<metric>`` and ``intervened_<metric>`` for every lens
        metric (:data:`~stages_of_inference.analyses.logit_lens.METRICS`, the KL
        being to the original output), ``excess_kl``, ``damage``, ``repair``,
        ``repair_fraction``, ``original_<norm>`` and ``intervened_<norm>`` for
        :data:`NORMS` (NaN where layer ``point - 1`` does not run), ``n_tokens``.

    Raises:
        ConfigError: ``tokens`` is unusable or an intervention does not fit the model.

    Example:
        >>> table = self_repair(model, tokens, Intervention("delete", 3))  # doctest: +SKIP
        >>> table.query("point > changed_point").repair.sum()  # the damage gone at the output  # doctest: +SKIP
        0.41
    """
    check_windows(tokens, what="self_repair")
    n_layers = n_layers_of(model)
    n_points = n_layers + 1
    if interventions is None:
        interventions = single_deletions(n_layers)
    elif isinstance(interventions, Intervention):
        interventions = [interventions]
    chosen = [intervention.check(n_layers) for intervention in interventions]
    changed = [_changed(intervention, n_layers) for intervention in chosen]
    original = _Accumulator(n_points)
    intervened = [_Accumulator(n_points) for _ in chosen]
    names = residual_hook_names(n_layers)
    components = [f"blocks.{layer}.{hook}" for layer in range(n_layers) for hook in _HOOKS]
    n_tokens = 0
    n_batches = -(-tokens.shape[0] // batch_size)
    batches = cached_activations(model, tokens, [*names, *components], batch_size)
    for batch, cache in tqdm(batches, total=n_batches, disable=not progress, desc="self-repair"):
        with torch.inference_mode():
            points = [cache[name] for name in names]
            final = points[-1][:, scored_positions(batch.shape[1])].flatten(0, 1)
            targets = prediction_targets(batch).flatten()
            outputs = {layer: {hook: cache[f"blocks.{layer}.{hook}"] for hook in _HOOKS} for layer in range(n_layers)}
            _add(model, original, points, outputs, range(n_points), final, targets)
            for intervention, first, sums in zip(chosen, changed, intervened, strict=True):
                aligned, aligned_outputs = _intervened_points(model, batch, intervention, points, outputs)
                _add(model, sums, aligned, aligned_outputs, range(first, n_points), final, targets)
        n_tokens += targets.numel()
    for first, sums in zip(changed, intervened, strict=True):
        _copy_prefix(sums, original, first)
    norm_tokens = tokens.shape[0] * (tokens.shape[1] - 1)
    frames = [
        _table(intervention, n_layers, original, sums, n_tokens, norm_tokens)
        for intervention, sums in zip(chosen, intervened, strict=True)
    ]
    return pd.concat(frames, ignore_index=True)


def _changed(intervention: Intervention, n_layers: int) -> int:
    """The intervention's first changed point ``p*``; ``L + 1`` when it changes nothing."""
    hooked = intervention.layer if intervention.hooks() else None
    changed = first_changed_point(intervention.order(n_layers), hooked, n_layers)
    return n_layers + 1 if changed is None else changed


def _copy_prefix(sums: _Accumulator, original: _Accumulator, changed: int) -> None:
    """The points before the first change hold the original residual: take the original's sums."""
    sums.metrics[:changed] = original.metrics[:changed]
    sums.norms[:changed] = original.norms[:changed]
    sums.ran[:changed] = original.ran[:changed]


def _intervened_points(
    model: LoadedModel,
    batch: Int[Tensor, "batch pos"],
    intervention: Intervention,
    points: list[Float[Tensor, "batch pos d_model"]],
    outputs: dict[int, dict[str, Tensor]],
) -> tuple[list[Tensor], dict[int, dict[str, Tensor]]]:
    """The intervened run's residual at every aligned point, and its components' outputs by layer.

    Runs from the original's cached residual at the intervention's start slot; a layer
    run more than once keeps its last outputs; a layer that does not run has none.
    """
    n_layers = len(points) - 1
    order = intervention.order(n_layers)
    start = start_slot(intervention, n_layers)
    after_slot: list[Tensor] = []
    ran: dict[int, dict[str, Tensor]] = {}

    def keep_resid(resid: Tensor, hook: Any) -> None:
        after_slot.append(resid)

    def keeper(layer: int, name: str) -> Callable[..., None]:
        def keep_output(value: Tensor, hook: Any) -> None:
            ran.setdefault(layer, {})[name] = value

        return keep_output

    capture: HookList = [(f"blocks.{layer}.hook_resid_post", keep_resid) for layer in range(n_layers)]
    capture += [(f"blocks.{layer}.{name}", keeper(layer, name)) for layer in range(n_layers) for name in _HOOKS]
    intervened_residual(model, batch, intervention, points, extra_hooks=capture)
    slots = points[: start + 1] + after_slot
    aligned = [slots[k] for k in aligned_slots(order, n_layers)]
    kept = {layer: outputs[layer] for layer in order[:start]} | ran
    return aligned, kept


def _add(
    model: LoadedModel,
    sums: _Accumulator,
    points: list[Tensor],
    outputs: dict[int, dict[str, Tensor]],
    decoded: range,
    final_residual: Float[Tensor, "rows d_model"],
    targets: Int[Tensor, " rows"],
) -> None:
    """Add one batch's lens metrics (of the ``decoded`` points) and norms to ``sums``."""
    positions = scored_positions(points[0].shape[1])
    residuals = [points[point][:, positions].flatten(0, 1) for point in decoded]
    for _, metrics, _ in lens_token_metrics(model, residuals, final_residual, targets):
        for index, point in enumerate(decoded):
            sums.metrics[point] += metrics[index].double().sum(0)
    for point in decoded:
        sums.norms[point, 0] += norm_sum(points[point])
        sums.ran[point, 0] = True
        for column, hook in enumerate(_HOOKS, start=1):
            if point > 0 and hook in outputs.get(point - 1, {}):
                sums.norms[point, column] += norm_sum(outputs[point - 1][hook])
                sums.ran[point, column] = True


def _table(
    intervention: Intervention,
    n_layers: int,
    original: _Accumulator,
    intervened: _Accumulator,
    n_tokens: int,
    norm_tokens: int,
) -> pd.DataFrame:
    """One intervention's rows: both models' means, the excess, the damage and the repair."""
    first = _changed(intervention, n_layers)
    changed = first if first <= n_layers else None
    n_points = n_layers + 1
    table = pd.DataFrame(
        {
            "intervention": intervention.label,
            "kind": intervention.kind,
            "intervened_layer": intervention.layer,
            "point": range(n_points),
            "layer": range(-1, n_layers),
            "relative_depth": [point / n_layers for point in range(n_points)],
            "changed_point": -1 if changed is None else changed,
        }
    )
    for prefix, sums in (("original", original), ("intervened", intervened)):
        means = (sums.metrics / n_tokens).numpy()
        for index, metric in enumerate(METRICS):
            table[f"{prefix}_{metric}"] = means[:, index]
    excess = table.intervened_kl_to_final.to_numpy() - table.original_kl_to_final.to_numpy()
    damage = 0.0 if changed is None else float(excess[changed])
    repair = np.zeros(n_points)
    if changed is not None:
        repair[changed + 1 :] = excess[changed:-1] - excess[changed + 1 :]
    table["excess_kl"] = excess
    table["damage"] = damage
    table["repair"] = repair
    table["repair_fraction"] = repair / damage if damage > 0 else np.nan
    for prefix, sums in (("original", original), ("intervened", intervened)):
        norms = np.where(sums.ran, sums.norms / norm_tokens, np.nan)
        for index, column in enumerate(NORMS):
            table[f"{prefix}_{column}"] = norms[:, index]
    table["n_tokens"] = n_tokens
    return table


def repair_by_layer(table: pd.DataFrame) -> pd.DataFrame:
    """Which later layers repair most: each layer's repair averaged over the interventions it follows.

    Args:
        table: A :func:`self_repair` table (e.g. of every single deletion).

    Returns:
        One row per layer: ``layer``, ``point`` (``layer + 1``), ``relative_depth``
        (``point / L``), ``mean_repair``
        (nats), ``mean_repair_fraction`` (over the interventions with positive
        damage), ``n_interventions`` (those changed before this layer), sorted by layer.

    Example:
        >>> table = pd.DataFrame({"point": [1, 2, 1, 2], "layer": [0, 1, 0, 1], "changed_point": [1, 1, -1, -1],
        ...     "relative_depth": [0.5, 1.0, 0.5, 1.0], "repair": [0.0, 0.3, 0.0, 0.0],
        ...     "repair_fraction": [0.0, 0.6, np.nan, np.nan]})
        >>> repair_by_layer(table)[["layer", "mean_repair", "n_interventions"]].values.tolist()
        [[1.0, 0.3, 1.0]]
    """
    after = table[(table.changed_point >= 0) & (table.point > table.changed_point)]
    grouped = after.groupby("layer")
    summary = pd.DataFrame(
        {
            "mean_repair": grouped.repair.mean(),
            "mean_repair_fraction": grouped.repair_fraction.mean(),
            "n_interventions": grouped.size(),
        }
    ).reset_index()
    summary.insert(1, "point", summary.layer + 1)
    summary.insert(2, "relative_depth", grouped.relative_depth.first().to_numpy())
    return summary
