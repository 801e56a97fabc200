"""Interventions as values, and the one home of the layer order each intervention runs.

:func:`deletion_order` and :func:`swap_order` say which layers run, in which order,
when layers are deleted or two layers are exchanged. :class:`Intervention` (one
intervention of the robustness sweep) and the context managers of
:mod:`~stages_of_inference.interventions.context` both take their orders from here.

Example:
    >>> swap_order(6, 2, 3)
    [0, 1, 3, 2, 4, 5]
    >>> Intervention("delete", 4).order(6)
    [0, 1, 2, 3, 5]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from stages_of_inference.errors import ConfigError
from stages_of_inference.layers import check_layer


def deletion_order(n_layers: int, layers: Iterable[int]) -> list[int]:
    """The layers of an ``n_layers`` model that run when ``layers`` are deleted, in order.

    Example:
        >>> deletion_order(5, [0, 3])
        [1, 2, 4]
    """
    deleted = set(layers)
    return [layer for layer in range(n_layers) if layer not in deleted]


def swap_order(n_layers: int, first: int, second: int) -> list[int]:
    """The original order of an ``n_layers`` model with layers ``first`` and ``second`` exchanged.

    Example:
        >>> swap_order(5, 3, 0)
        [3, 1, 2, 0, 4]
    """
    order = list(range(n_layers))
    order[first], order[second] = second, first
    return order


@dataclass(frozen=True)
class Intervention:
    """One layer intervention of the sweep: ``"delete"`` or ``"swap"`` (with the next layer).

    Example:
        >>> Intervention("swap", 2).label
        'swap layers 2-3'
        >>> Intervention("swap", 2).order(5)
        [0, 1, 3, 2, 4]
    """

    kind: str
    layer: int
    """0-based; for a swap, the first of the two adjacent layers."""

    def order(self, n_layers: int) -> list[int]:
        """The layers in the order the intervened model of ``n_layers`` layers runs them.

        Raises:
            ConfigError: The kind is unknown or the layer is not in the model.
        """
        if self.kind == "delete":
            return deletion_order(n_layers, [check_layer(self.layer, n_layers, what="delete layer")])
        if self.kind == "swap":
            first = check_layer(self.layer, n_layers - 1, what="swap layer")
            return swap_order(n_layers, first, first + 1)
        raise ConfigError(f"unknown intervention {self.kind!r}: use 'delete' or 'swap'")

    def check(self, n_layers: int) -> Intervention:
        """Validate the kind and layer against a model of ``n_layers`` layers; returns ``self``."""
        self.order(n_layers)
        return self

    @property
    def label(self) -> str:
        """How tables and messages name it: ``"delete layer 3"``, ``"swap layers 3-4"``."""
        return f"delete layer {self.layer}" if self.kind == "delete" else f"swap layers {self.layer}-{self.layer + 1}"


def default_interventions(n_layers: int) -> list[Intervention]:
    """Every single-layer deletion, then every adjacent swap (2L - 1 interventions).

    Example:
        >>> [i.label for i in default_interventions(2)]
        ['delete layer 0', 'delete layer 1', 'swap layers 0-1']
    """
    return [Intervention("delete", i) for i in range(n_layers)] + [
        Intervention("swap", i) for i in range(n_layers - 1)
    ]
