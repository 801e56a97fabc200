"""Layer interventions: delete layers or their parts, swap layers, run layers in any order.

Two mechanisms, each exposed as plain hook functions (to compose in your own
analyses) and as context managers that always restore the model, also on exceptions
and when installing an intervention fails half-way:

* **Hooks on residual points** (:mod:`~stages_of_inference.interventions.hooks`).
  Deleting layer ``i`` saves ``blocks.i.hook_resid_pre`` and returns it from
  ``blocks.i.hook_resid_post``: the block's output equals its input, as if the layer
  were not there (the paper's zero ablation of its attention and MLP outputs).
  Deleting only the attention or the MLP zeroes ``blocks.i.hook_attn_out`` or
  ``blocks.i.hook_mlp_out``.
* **Execution order** (:mod:`~stages_of_inference.interventions.layout`).
  :func:`layer_order` makes the model run its blocks in any order (a permutation, a
  subset, or with repeats) by handing the HF decoder a new list of the same block
  modules; :func:`swap_layers` is the two-layer case. A moved layer keeps its own
  per-layer settings (on Gemma 3, sliding or global attention), and hook names stay
  with their layer: ``blocks.11.*`` fires wherever layer 11 runs.

:class:`Intervention` is one intervention of the robustness sweep as a value — a
deletion of a layer, a block of layers, or a layer's attention or MLP; a swap at any
distance; a repeated range; an explicit order
(:mod:`~stages_of_inference.interventions.spec`, the one home of the layer order each
intervention runs); :func:`intervene` runs one in a plain forward, and
:func:`final_residual` runs its order from a residual cached on the original model
(:mod:`~stages_of_inference.interventions.prefix`). Named lists of them (``blocks``,
``components``, ``swaps-all``, ``repeats``) and JSON files of orders:
:mod:`~stages_of_inference.interventions.families`.

Layers are 0-based. Hook contexts use ``model.hooks``, which removes only the hooks it
added, so they nest with each other and with the user's own hooks.

Example:
    >>> import stages_of_inference as soi
    >>> model = soi.load_model("smollm2-135m")  # doctest: +SKIP
    >>> with soi.delete_layers(model, [5]):  # doctest: +SKIP
    ...     logits = model(tokens)
    >>> with soi.swap_layers(model, 5, 6), model.hooks([("blocks.5.hook_resid_post", my_hook)]):  # doctest: +SKIP
    ...     logits = model(tokens)
"""

from stages_of_inference.interventions.context import (
    delete_attention,
    delete_layers,
    delete_mlp,
    intervene,
    layer_order,
    swap_layers,
)
from stages_of_inference.interventions.families import (
    family_name,
    intervention_family,
    load_interventions,
    read_orders,
    resolve_interventions,
)
from stages_of_inference.interventions.hooks import (
    HookFunction,
    HookList,
    component_deletion_hooks,
    layer_deletion_hooks,
    zero_ablation_hook,
)
from stages_of_inference.interventions.prefix import (
    final_residual,
    first_changed_slot,
    intervened_residual,
    start_slot,
)
from stages_of_inference.interventions.spec import (
    Intervention,
    check_interventions,
    default_interventions,
    deletion_order,
    swap_order,
)

__all__ = [
    "HookFunction",
    "HookList",
    "Intervention",
    "check_interventions",
    "component_deletion_hooks",
    "default_interventions",
    "delete_attention",
    "delete_layers",
    "delete_mlp",
    "deletion_order",
    "family_name",
    "final_residual",
    "first_changed_slot",
    "intervene",
    "intervened_residual",
    "intervention_family",
    "layer_deletion_hooks",
    "layer_order",
    "load_interventions",
    "read_orders",
    "resolve_interventions",
    "start_slot",
    "swap_layers",
    "swap_order",
    "zero_ablation_hook",
]
