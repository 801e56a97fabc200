"""Prefix reuse: run only the blocks an intervention changes, from the original model's residual.

An intervention's layer order agrees with the original order up to its first changed
slot (:func:`first_changed_slot`); the residual entering that slot is the original
model's, so :func:`final_residual` can start there from a cached ``resid_pre``
(deleting layer ``i`` runs layers ``i+1 ..``; swapping ``i, i+1`` runs
``i+1, i, i+2 ..``) and stop before the unembedding. A component deletion keeps the
original order and changes only its layer's output, so it starts at its layer's slot
with the zeroing hook installed (:func:`start_slot`).

Example:
    >>> first_changed_slot([0, 1, 3, 2, 4])
    2
    >>> first_changed_slot([0, 1, 2])  # nothing changed: only the last slot runs
    2
    >>> start_slot(Intervention("delete_mlp", 1), 4)
    1
    >>> start_slot(Intervention("repeat", 3), 4)  # runs 0, 1, 2, 3, 3: rerun layer 3 twice
    3
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from jaxtyping import Float, Int
from torch import Tensor

from stages_of_inference.interventions.context import layer_order
from stages_of_inference.interventions.hooks import HookList
from stages_of_inference.interventions.spec import Intervention
from stages_of_inference.layers import check_order, n_layers_of
from stages_of_inference.models.attention_guards import unguarded_attention
from stages_of_inference.models.bridge import LoadedModel


class _StopBeforeUnembed(Exception):
    """Raised by a hook to end a forward pass once the final residual is captured."""


def final_residual(
    model: LoadedModel,
    batch: Int[Tensor, "batch pos"],
    *,
    order: Sequence[int] | None = None,
    start: int = 0,
    start_residual: Float[Tensor, "batch pos d_model"] | None = None,
    cache_resid_pre: bool = False,
    hooks: HookList | None = None,
) -> tuple[Float[Tensor, "batch pos d_model"], list[Tensor]]:
    """Run blocks ``order[start:]`` and return the input of the unembedding.

    With ``start > 0``, ``start_residual`` is the residual entering slot ``start``
    (the cached ``resid_pre`` of the original model) and earlier blocks do not run.
    The unembedding is skipped: call :func:`~stages_of_inference.scoring.decode.unembed` on the result.
    A tensor of tokens carries no padding mask, so the attention runs without its
    fully-masked-row guards (:func:`~stages_of_inference.models.attention_guards.unguarded_attention`).

    ``hooks`` are installed for this forward too (an intervention's
    :meth:`~stages_of_inference.interventions.Intervention.hooks`).

    Returns:
        ``(final_residual, resid_pres)``; ``resid_pres`` holds the residual entering
        every slot when ``cache_resid_pre`` (else it is empty).
    """
    n_layers = n_layers_of(model)
    full_order = check_order(list(range(n_layers)) if order is None else order, n_layers)
    suffix = full_order[start:]
    captured: dict[str, Tensor] = {}
    resid_pres: list[Tensor] = []

    def inject(resid: Tensor, hook: Any) -> Tensor | None:
        if "injected" in captured:
            return None
        captured["injected"] = resid
        return start_residual

    def remember(resid: Tensor, hook: Any) -> None:
        resid_pres.append(resid)

    def stop(resid: Tensor, hook: Any) -> None:
        captured["final"] = resid
        raise _StopBeforeUnembed

    installed: list[tuple[str, Callable[..., Any]]] = [("unembed.hook_in", stop)]
    if start_residual is not None:
        installed.insert(0, (f"blocks.{suffix[0]}.hook_resid_pre", inject))
    if cache_resid_pre:
        installed += [(f"blocks.{layer}.hook_resid_pre", remember) for layer in range(n_layers)]
    installed += hooks or []
    with layer_order(model, suffix), model.hooks(fwd_hooks=installed), unguarded_attention(model):
        with contextlib.suppress(_StopBeforeUnembed):
            model(batch)
    return captured["final"], resid_pres


def first_changed_slot(order: Sequence[int]) -> int:
    """The first slot whose layer differs from the original order (the last slot at most)."""
    for slot, layer in enumerate(order):
        if layer != slot:
            return slot
    return len(order) - 1


def start_slot(intervention: Intervention, n_layers: int) -> int:
    """The first slot the sweep runs for ``intervention``, from the original model's residual entering it.

    The first changed slot of its order, or the slot of its first hooked layer (a
    component deletion) if that comes earlier. An order that runs every original
    layer and then more (repeating the last layer) starts at the last original slot,
    whose input is cached, and reruns that layer as the original model does.

    Raises:
        ConfigError: The intervention is not valid for ``n_layers`` layers.
    """
    order = intervention.order(n_layers)
    slot = min(first_changed_slot(order), n_layers - 1)
    if intervention.hooks():  # they act on its own layer, unchanged before that layer's slot
        slot = min(slot, order.index(intervention.layer))
    return slot


def intervened_residual(
    model: LoadedModel,
    batch: Int[Tensor, "batch pos"],
    intervention: Intervention,
    resid_pres: Sequence[Float[Tensor, "batch pos d_model"]],
    *,
    extra_hooks: HookList | None = None,
) -> Float[Tensor, "batch pos d_model"]:
    """The unembedding's input under ``intervention``, run from the original model's cached prefix.

    ``resid_pres`` are the residuals entering every slot of the original model (from
    ``final_residual(model, batch, cache_resid_pre=True)``); the forward starts at
    :func:`start_slot` with the hooks the intervention needs, and ``extra_hooks``
    (e.g. hooks that read the blocks it runs).
    """
    n_layers = n_layers_of(model)
    start = start_slot(intervention, n_layers)
    final, _ = final_residual(
        model,
        batch,
        order=intervention.order(n_layers),
        start=start,
        start_residual=resid_pres[start],
        hooks=[*intervention.hooks(), *(extra_hooks or [])],
    )
    return final
