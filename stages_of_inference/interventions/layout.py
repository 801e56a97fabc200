"""Install a layer order on an HF decoder, and restore the original layout, also after a failure.

HF decoders loop over ``layers[:config.num_hidden_layers]`` and some (Gemma 3,
Qwen 2) pick each slot's attention mask and rotary base from
``config.layer_types[slot]``. An order therefore sets a new block list, the layer
count, and the per-slot types, all taken from the original layers it names.

Every edit is journaled before the next one is made, so :meth:`LayerLayout.restore`
undoes exactly what was changed: after a complete install, after an exception inside
the ``with`` body, and after an install that failed half-way (a config attribute that
refuses to be set, a block list that cannot be built).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from stages_of_inference.errors import ConfigError
from stages_of_inference.layers import n_layers_of
from stages_of_inference.models.bridge import LoadedModel

_PER_ORDER_SETTINGS = ("num_hidden_layers", "layer_types")


class LayerLayout:
    """Where an HF model keeps its decoder blocks and per-slot settings, and how to reorder them.

    One per model (:meth:`of`); at most one order is installed at a time.
    """

    def __init__(self, model: LoadedModel) -> None:
        hf_model = model.original_model
        self.parent, self.attribute, self.blocks = _find_block_list(hf_model, model)
        self.configs = _configs_of(hf_model, self.parent)
        self.active = False
        """Whether an order is installed, or being installed (:meth:`claim` to :meth:`restore`)."""
        self._journal: list[tuple[Any, str, Any]] = []
        """``(owner, attribute, original value)`` of every edit made since :meth:`claim`."""

    @classmethod
    def of(cls, model: LoadedModel) -> LayerLayout:
        """The model's layout, found once and kept on the model."""
        layout = getattr(model, "_soi_layer_layout", None)
        if layout is None:
            layout = cls(model)
            model._soi_layer_layout = layout
        return layout

    def claim(self) -> None:
        """Mark the layout as in use, refusing when another order is active (orders do not nest)."""
        if self.active:
            raise ConfigError(
                "a layer order is already active on this model; orders do not nest — "
                "pass one combined order to layer_order"
            )
        self.active = True

    def install(self, order: list[int]) -> None:
        """Make the decoder run the original blocks named by ``order``; call :meth:`claim` first."""
        for config in self.configs:
            if getattr(config, "num_hidden_layers", None) is not None:
                self._set(config, "num_hidden_layers", len(order))
            types = getattr(config, "layer_types", None)
            if types is not None and len(types) == len(self.blocks):
                self._set(config, "layer_types", [types[i] for i in order])
        self._set(self.parent, self.attribute, nn.ModuleList([self.blocks[i] for i in order]))

    def restore(self) -> None:
        """Undo every edit of the installed order, newest first, and release the layout."""
        while self._journal:
            owner, attribute, value = self._journal.pop()
            setattr(owner, attribute, value)
        self.active = False

    def _set(self, owner: Any, attribute: str, value: Any) -> None:
        original = getattr(owner, attribute)
        setattr(owner, attribute, value)
        self._journal.append((owner, attribute, original))


def _find_block_list(hf_model: nn.Module, model: LoadedModel) -> tuple[nn.Module, str, nn.ModuleList]:
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
