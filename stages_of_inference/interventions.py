"""Layer interventions: delete layers or their parts, swap layers, run layers in any order.

Two mechanisms, each exposed as plain hook functions (to compose in your own
analyses) and as context managers that always restore the model, also on exceptions:

* **Hooks on residual points.** Deleting layer ``i`` saves ``blocks.i.hook_resid_pre``
  and returns it from ``blocks.i.hook_resid_post``: the block's output equals its
  input, as if the layer were not there (the paper's zero ablation of its attention
  and MLP outputs). Deleting only the attention or the MLP zeroes
  ``blocks.i.hook_attn_out`` or ``blocks.i.hook_mlp_out``.
* **Execution order.** :func:`layer_order` makes the model run its blocks in any
  order (a permutation, a subset, or with repeats) by handing the HF decoder a new
  list of the same block modules; :func:`swap_layers` is the two-layer case. A moved
  layer keeps its own per-layer settings (on Gemma 3, sliding or global attention),
  and hook names stay with their layer: ``blocks.11.*`` fires wherever layer 11 runs.

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

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens.model_bridge import TransformerBridge

from stages_of_inference.errors import ConfigError
from stages_of_inference.layers import (
    check_layer,
    check_layers,
    check_order,
    n_layers_of,
)

HookFunction = Callable[..., Tensor | None]
HookList = list[tuple[str, HookFunction]]


def zero_ablation_hook(activation: Float[Tensor, "..."], hook: Any) -> Float[Tensor, "..."]:
    """A hook that replaces an activation by zeros (``hook`` is the HookPoint, unused)."""
    return torch.zeros_like(activation)


def layer_deletion_hooks(layers: Iterable[int]) -> HookList:
    """Hooks that delete whole layers: each block's output is set to its input.

    For every layer ``i``, a hook on ``blocks.i.hook_resid_pre`` remembers the
    residual entering the block and one on ``blocks.i.hook_resid_post`` returns it.
    Pass them to ``model.hooks(...)`` or ``model.run_with_hooks(...)``; the
    indices are not checked here (use :func:`delete_layers` for that).
    """
    hooks: HookList = []
    for layer in layers:
        saved: dict[str, Tensor] = {}

        def remember(resid: Tensor, hook: Any, saved: dict[str, Tensor] = saved) -> None:
            saved["resid_pre"] = resid

        def restore(resid: Tensor, hook: Any, saved: dict[str, Tensor] = saved) -> Tensor:
            return saved.pop("resid_pre")

        hooks += [(f"blocks.{layer}.hook_resid_pre", remember), (f"blocks.{layer}.hook_resid_post", restore)]
    return hooks


_COMPONENT_HOOKS = {"attn": "hook_attn_out", "mlp": "hook_mlp_out"}


def component_deletion_hooks(layers: Iterable[int], component: str) -> HookList:
    """Hooks that zero the attention (``"attn"``) or MLP (``"mlp"``) output of layers."""
    if component not in _COMPONENT_HOOKS:
        raise ConfigError(f"component must be 'attn' or 'mlp', got {component!r}")
    return [(f"blocks.{layer}.{_COMPONENT_HOOKS[component]}", zero_ablation_hook) for layer in layers]


@contextmanager
def delete_layers(model: TransformerBridge, layers: Iterable[int] | int) -> Iterator[TransformerBridge]:
    """Run the model with whole layers deleted (each block's output = its input).

    Args:
        model: The bridge.
        layers: One layer or several distinct layers, 0-based.

    Raises:
        ConfigError: A layer is out of range, repeated, not an int, or none is given.
    """
    checked = check_layers(layers, n_layers_of(model))
    with model.hooks(fwd_hooks=layer_deletion_hooks(checked)):
        yield model


@contextmanager
def delete_attention(model: TransformerBridge, layers: Iterable[int] | int) -> Iterator[TransformerBridge]:
    """Run the model with the attention output of the given layers set to zero."""
    checked = check_layers(layers, n_layers_of(model))
    with model.hooks(fwd_hooks=component_deletion_hooks(checked, "attn")):
        yield model


@contextmanager
def delete_mlp(model: TransformerBridge, layers: Iterable[int] | int) -> Iterator[TransformerBridge]:
    """Run the model with the MLP output of the given layers set to zero."""
    checked = check_layers(layers, n_layers_of(model))
    with model.hooks(fwd_hooks=component_deletion_hooks(checked, "mlp")):
        yield model


@contextmanager
def swap_layers(model: TransformerBridge, first: int, second: int) -> Iterator[TransformerBridge]:
    """Run the model with two layers exchanged (all their parameters move together).

    ``swap_layers(model, 5, 6)`` runs ..., 4, 6, 5, 7, ...; any two layers may be
    swapped, not only adjacent ones.
    """
    n_layers = n_layers_of(model)
    first = check_layer(first, n_layers)
    second = check_layer(second, n_layers)
    if first == second:
        raise ConfigError(f"cannot swap layer {first} with itself; name two different layers")
    order = list(range(n_layers))
    order[first], order[second] = second, first
    with layer_order(model, order):
        yield model


@contextmanager
def layer_order(
    model: TransformerBridge, order: Sequence[int], *, allow_repeats: bool = True
) -> Iterator[TransformerBridge]:
    """Run the model's layers in the given order.

    Args:
        model: The bridge.
        order: Layer indices in execution order: a permutation of
            ``range(n_layers)``, a subsequence (omitted layers are skipped), or a
            sequence with repeats (a repeated layer runs again, with the same weights).
        allow_repeats: Refuse repeated layers when ``False``.

    Raises:
        ConfigError: An index is out of range or not an int, the order is empty, a
            repeat is given with ``allow_repeats=False``, or another ``layer_order``
            is already active on this model (orders do not nest: pass one order).
    """
    checked = check_order(order, n_layers_of(model), allow_repeats=allow_repeats)
    if not checked:
        raise ConfigError("the layer order is empty; name at least one layer to run")
    layout = _LayerLayout.of(model)
    layout.install(checked)
    try:
        yield model
    finally:
        layout.restore()


_PER_ORDER_SETTINGS = ("num_hidden_layers", "layer_types")


class _LayerLayout:
    """Where an HF model keeps its decoder blocks and per-slot settings, and how to reorder them.

    HF decoders loop over ``layers[:config.num_hidden_layers]`` and some (Gemma 3,
    Qwen 2) pick each slot's attention mask and rotary base from
    ``config.layer_types[slot]``. An order therefore sets a new block list, the layer
    count, and the per-slot types, all taken from the original layers it names.
    """

    def __init__(self, model: TransformerBridge) -> None:
        hf_model = model.original_model
        self.parent, self.attribute, self.blocks = _find_block_list(hf_model, model)
        self.configs = _configs_of(hf_model, self.parent)
        self.saved: list[dict[str, Any]] | None = None

    @classmethod
    def of(cls, model: TransformerBridge) -> _LayerLayout:
        layout = getattr(model, "_soi_layer_layout", None)
        if layout is None:
            layout = cls(model)
            model._soi_layer_layout = layout
        return layout

    def install(self, order: list[int]) -> None:
        if self.saved is not None:
            raise ConfigError(
                "a layer order is already active on this model; orders do not nest — "
                "pass one combined order to layer_order"
            )
        self.saved = [
            {key: getattr(config, key) for key in _PER_ORDER_SETTINGS if hasattr(config, key)}
            for config in self.configs
        ]
        for config in self.configs:
            if getattr(config, "num_hidden_layers", None) is not None:
                config.num_hidden_layers = len(order)
            types = getattr(config, "layer_types", None)
            if types is not None and len(types) == len(self.blocks):
                config.layer_types = [types[i] for i in order]
        setattr(self.parent, self.attribute, nn.ModuleList([self.blocks[i] for i in order]))

    def restore(self) -> None:
        setattr(self.parent, self.attribute, self.blocks)
        for config, saved in zip(self.configs, self.saved or [], strict=False):
            for key, value in saved.items():
                setattr(config, key, value)
        self.saved = None


def _find_block_list(hf_model: nn.Module, model: TransformerBridge) -> tuple[nn.Module, str, nn.ModuleList]:
    first_block = model.blocks[0]
    for name, module in hf_model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n_layers_of(model) and module[0] is first_block:
            parent_name, _, attribute = name.rpartition(".")
            return hf_model.get_submodule(parent_name), attribute, module
    raise ConfigError(
        f"cannot find the decoder's layer list in {type(hf_model).__name__}; "
        "layer orders need an HF model whose blocks are the bridge's blocks"
    )


def _configs_of(hf_model: nn.Module, parent: nn.Module) -> list[Any]:
    configs: dict[int, Any] = {}
    for owner in (hf_model, parent):
        config = getattr(owner, "config", None)
        if config is not None:
            configs[id(config)] = config
    return list(configs.values())


@dataclass(frozen=True)
class Intervention:
    """One layer intervention of the sweep: ``"delete"`` or ``"swap"`` (with the next layer)."""

    kind: str
    layer: int
    """0-based; for a swap, the first of the two adjacent layers."""

    def order(self, n_layers: int) -> list[int]:
        """The layers in the order the intervened model runs them."""
        layers = list(range(n_layers))
        if self.kind == "delete":
            return layers[: self.layer] + layers[self.layer + 1 :]
        if self.kind == "swap":
            layers[self.layer], layers[self.layer + 1] = self.layer + 1, self.layer
            return layers
        raise ConfigError(f"unknown intervention {self.kind!r}: use 'delete' or 'swap'")

    def check(self, n_layers: int) -> Intervention:
        """Validate the layer against a model of ``n_layers`` layers."""
        last = n_layers - 2 if self.kind == "swap" else n_layers - 1
        check_layer(self.layer, last + 1, what=f"{self.kind} layer")
        self.order(n_layers)
        return self

    @property
    def label(self) -> str:
        return f"delete layer {self.layer}" if self.kind == "delete" else f"swap layers {self.layer}-{self.layer + 1}"

def default_interventions(n_layers: int) -> list[Intervention]:
    """Every single-layer deletion, then every adjacent swap (2L - 1 interventions)."""
    return [Intervention("delete", i) for i in range(n_layers)] + [
        Intervention("swap", i) for i in range(n_layers - 1)
    ]
