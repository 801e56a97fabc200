"""Context managers that run the model with an intervention and always restore it.

Deletions add hooks through ``model.hooks`` (removed on exit, the user's own hooks
untouched); orders and swaps install a layer layout
(:class:`~stages_of_inference.interventions.layout.LayerLayout`), undone on exit, on
an exception in the body, and when installing fails half-way.

Example:
    >>> import stages_of_inference as soi
    >>> model = soi.load_model("smollm2-135m")  # doctest: +SKIP
    >>> with layer_order(model, [0, 1, 2, 2, 3]):  # doctest: +SKIP
    ...     logits = model(tokens)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import SupportsIndex

from transformer_lens.model_bridge import TransformerBridge

from stages_of_inference.errors import ConfigError
from stages_of_inference.interventions.hooks import component_deletion_hooks, layer_deletion_hooks
from stages_of_inference.interventions.layout import LayerLayout
from stages_of_inference.interventions.spec import Intervention, swap_order
from stages_of_inference.layers import check_layer, check_layers, check_order, n_layers_of
from stages_of_inference.models.bridge import LoadedModel


@contextmanager
def delete_layers(model: LoadedModel, layers: Iterable[SupportsIndex] | SupportsIndex) -> Iterator[TransformerBridge]:
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
def delete_attention(
    model: LoadedModel, layers: Iterable[SupportsIndex] | SupportsIndex
) -> Iterator[TransformerBridge]:
    """Run the model with the attention output of the given layers set to zero."""
    checked = check_layers(layers, n_layers_of(model))
    with model.hooks(fwd_hooks=component_deletion_hooks(checked, "attn")):
        yield model


@contextmanager
def delete_mlp(model: LoadedModel, layers: Iterable[SupportsIndex] | SupportsIndex) -> Iterator[TransformerBridge]:
    """Run the model with the MLP output of the given layers set to zero."""
    checked = check_layers(layers, n_layers_of(model))
    with model.hooks(fwd_hooks=component_deletion_hooks(checked, "mlp")):
        yield model


@contextmanager
def swap_layers(model: LoadedModel, first: SupportsIndex, second: SupportsIndex) -> Iterator[TransformerBridge]:
    """Run the model with two layers exchanged (all their parameters move together).

    ``swap_layers(model, 5, 6)`` runs ..., 4, 6, 5, 7, ...; any two layers may be
    swapped, not only adjacent ones.
    """
    n_layers = n_layers_of(model)
    first = check_layer(first, n_layers)
    second = check_layer(second, n_layers)
    if first == second:
        raise ConfigError(f"cannot swap layer {first} with itself; name two different layers")
    with layer_order(model, swap_order(n_layers, first, second)):
        yield model


@contextmanager
def layer_order(
    model: LoadedModel, order: Sequence[SupportsIndex], *, allow_repeats: bool = True
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
    layout = LayerLayout.of(model)
    layout.claim()
    try:
        layout.install(checked)
        yield model
    finally:
        layout.restore()


@contextmanager
def intervene(model: LoadedModel, intervention: Intervention) -> Iterator[TransformerBridge]:
    """Run the model with any :class:`~stages_of_inference.interventions.Intervention`: its order and its hooks.

    Example:
        >>> with intervene(model, Intervention("delete_block", 3, 5)):  # doctest: +SKIP
        ...     logits = model(tokens)

    Raises:
        ConfigError: The intervention is not valid for this model, or another layer
            order is active (orders do not nest).
    """
    n_layers = n_layers_of(model)
    order = intervention.order(n_layers)
    with ExitStack() as stack:
        if order != list(range(n_layers)):
            stack.enter_context(layer_order(model, order))
        stack.enter_context(model.hooks(fwd_hooks=intervention.hooks()))
        yield model
