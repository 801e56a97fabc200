"""Layer indexing: one convention for the whole toolkit, and validation of layer specs.

Layers are 0-based: ``0`` is the first transformer block, ``n_layers - 1`` the last.
Relative depth maps layer ``i`` of an ``L``-layer model to ``i / (L - 1)`` so models of
different depths can be overlaid on one axis, as in the paper. Every function that
takes layers validates them here, so a bad spec fails the same way everywhere.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import SupportsIndex

from stages_of_inference.errors import ConfigError


def n_layers_of(model: object) -> int:
    """The number of transformer blocks of a bridge (``model.cfg.n_layers``)."""
    return int(model.cfg.n_layers)  # type: ignore[attr-defined]


def check_layer(layer: object, n_layers: int, *, what: str = "layer") -> int:
    """Return ``layer`` as an int if it is a valid 0-based index, else raise ConfigError.

    Example:
        >>> check_layer(3, 30)
        3
        >>> check_layer(30, 30)
        Traceback (most recent call last):
        ...
        stages_of_inference.errors.ConfigError: layer 30 is out of range: this model has 30 layers, numbered 0 to 29
    """
    if isinstance(layer, bool) or not isinstance(layer, numbers.Integral):
        raise ConfigError(
            f"{what} must be an integer, got {layer!r} ({type(layer).__name__}); "
            f"layers are numbered 0 to {n_layers - 1}"
        )
    if not 0 <= int(layer) < n_layers:
        raise ConfigError(
            f"{what} {layer} is out of range: this model has {n_layers} layers, numbered 0 to {n_layers - 1}"
        )
    return int(layer)


def check_layers(layers: Iterable[object] | object, n_layers: int) -> list[int]:
    """Validate a set of layers: each in range, no repeats, at least one.

    Returns them sorted. A single int is accepted as a one-element set.
    """
    if isinstance(layers, numbers.Integral) and not isinstance(layers, bool):
        layers = [layers]
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Iterable):
        raise ConfigError(f"layers must be an int or a list of ints, got {layers!r}")
    checked = [check_layer(layer, n_layers) for layer in layers]
    if not checked:
        raise ConfigError("the list of layers is empty; name at least one layer")
    if len(set(checked)) != len(checked):
        raise ConfigError(f"layers {checked} repeat an index; name each layer once")
    return sorted(checked)


def check_order(order: Sequence[object], n_layers: int, *, allow_repeats: bool = True) -> list[int]:
    """Validate an execution order: a sequence of layer indices, run left to right.

    A permutation of ``range(n_layers)`` reorders; omitting layers deletes them; with
    ``allow_repeats`` a layer may run more than once.
    """
    if isinstance(order, (str, bytes)) or not isinstance(order, Sequence):
        raise ConfigError(f"a layer order must be a list of ints, got {order!r}")
    checked = [check_layer(layer, n_layers, what="layer in the order") for layer in order]
    if not allow_repeats and len(set(checked)) != len(checked):
        raise ConfigError(f"layer order {checked} repeats a layer; pass allow_repeats=True")
    return checked


def relative_depth(layer: float | SupportsIndex, n_layers: int) -> float:
    """``layer / (n_layers - 1)``: 0 for the first layer, 1 for the last.

    Example:
        >>> relative_depth(15, 31)
        0.5
    """
    return float(layer) / (n_layers - 1) if n_layers > 1 else 0.0
