"""Hook functions that delete whole layers, or their attention or MLP output.

Plain ``(hook name, function)`` lists, to pass to ``model.hooks(...)`` or
``model.run_with_hooks(...)`` and to compose with your own hooks. Indices are not
checked here; the context managers of :mod:`~stages_of_inference.interventions.context`
check them.

Example:
    >>> [name for name, _ in layer_deletion_hooks([3])]
    ['blocks.3.hook_resid_pre', 'blocks.3.hook_resid_post']
    >>> [name for name, _ in component_deletion_hooks([1, 2], "mlp")]
    ['blocks.1.hook_mlp_out', 'blocks.2.hook_mlp_out']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from stages_of_inference.errors import ConfigError

HookFunction = Callable[..., Tensor | None]
HookList = list[tuple[str, HookFunction]]

_COMPONENT_HOOKS = {"attn": "hook_attn_out", "mlp": "hook_mlp_out"}


def zero_ablation_hook(activation: Float[Tensor, ...], hook: Any) -> Float[Tensor, ...]:
    """A hook that replaces an activation by zeros (``hook`` is the HookPoint, unused)."""
    return torch.zeros_like(activation)


def layer_deletion_hooks(layers: Iterable[int]) -> HookList:
    """Hooks that delete whole layers: each block's output is set to its input.

    For every layer ``i``, a hook on ``blocks.i.hook_resid_pre`` remembers the
    residual entering the block and one on ``blocks.i.hook_resid_post`` returns it.
    Pass them to ``model.hooks(...)`` or ``model.run_with_hooks(...)``; the
    indices are not checked here (use :func:`~stages_of_inference.interventions.delete_layers` for that).
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


def component_deletion_hooks(layers: Iterable[int], component: str) -> HookList:
    """Hooks that zero the attention (``"attn"``) or MLP (``"mlp"``) output of layers."""
    if component not in _COMPONENT_HOOKS:
        raise ConfigError(f"component must be 'attn' or 'mlp', got {component!r}")
    return [(f"blocks.{layer}.{_COMPONENT_HOOKS[component]}", zero_ablation_hook) for layer in layers]
