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
    >>> Intervention("repeat", 1, other=2).order(4)
    [0, 1, 2, 1, 2, 3]
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from stages_of_inference.errors import ConfigError
from stages_of_inference.interventions.hooks import HookList, component_deletion_hooks
from stages_of_inference.layers import check_layer, check_order

KINDS = ("delete", "swap", "delete_block", "delete_attn", "delete_mlp", "repeat", "order")
"""Every kind of :class:`Intervention`."""
_COMPONENT = {"delete_attn": "attn", "delete_mlp": "mlp"}
_COMPONENT_NAME = {"delete_attn": "attention", "delete_mlp": "MLP"}


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


def repeat_order(n_layers: int, first: int, last: int, repeats: int) -> list[int]:
    """The original order with layers ``first..last`` run ``repeats`` more times right after their own run.

    Example:
        >>> repeat_order(5, 1, 2, 2)
        [0, 1, 2, 1, 2, 1, 2, 3, 4]
    """
    span = list(range(first, last + 1))
    return [*range(last + 1), *span * repeats, *range(last + 1, n_layers)]


def order_layer(order: Sequence[int]) -> int:
    """The layer an explicit order is filed under: where it first departs from the original order.

    At the first slot ``k`` whose layer is not ``k``, the lower of ``k`` (the layer
    that loses its place) and ``order[k]`` (the layer that runs there instead); for
    an order that is the original one cut short, the first layer cut. Every named
    intervention written as an order is filed under its own ``layer``.

    Example:
        >>> order_layer([0, 1, 3, 2])  # swap layers 2-3
        2
        >>> order_layer([0, 1, 2, 1, 2, 3])  # repeat layers 1-2
        1
        >>> order_layer([0, 1])  # the original order of 4 layers without layers 2 and 3
        2
    """
    for slot, layer in enumerate(order):
        if layer != slot:
            return min(slot, layer)
    return len(order)


@dataclass(frozen=True)
class Intervention:
    """One layer intervention of the sweep, as a frozen, hashable value.

    ========================================  ====================================================
    value                                     what the model runs
    ========================================  ====================================================
    ``Intervention("delete", i)``             every layer but ``i``
    ``Intervention("swap", i)``               layers ``i`` and ``i + 1`` exchanged
    ``Intervention("swap", i, other=j)``      layers ``i < j`` exchanged (any distance)
    ``Intervention("delete_block", i, j)``    every layer but ``i..j`` (``j > i``, inclusive)
    ``Intervention("delete_attn", i)``        the original order, layer ``i``'s attention output zeroed
    ``Intervention("delete_mlp", i)``         the original order, layer ``i``'s MLP output zeroed
    ``Intervention("repeat", i, j, n)``       layers ``i..j`` run ``n`` more times after their own run
    ``Intervention.of_order(order)``          the given order (``kind == "order"``)
    ========================================  ====================================================

    A swap's ``other`` defaults to ``layer + 1`` and a repeat's to ``layer`` (one
    layer), so each intervention has one value and one :attr:`label`. Validation
    needs the model's depth, so it happens in :meth:`check` and :meth:`order`.

    Example:
        >>> Intervention("swap", 2).label
        'swap layers 2-3'
        >>> Intervention("swap", 2).order(5)
        [0, 1, 3, 2, 4]
        >>> Intervention("swap", 2) == Intervention("swap", 2, other=3)
        True
        >>> Intervention("delete_block", 1, 3).order(6)
        [0, 4, 5]
        >>> Intervention.of_order([0, 2, 1, 3]).label
        'order 0,2,1,3'
    """

    kind: str
    layer: int
    """0-based; the first layer the intervention names (the lower of a swap, the first
    of a block or a repeated range; for an explicit order, :func:`order_layer`)."""
    other: int | None = None
    """The second layer named: the partner of a swap, the last layer of a block or a repeated range."""
    repeats: int = 1
    """How many more times a repeated range runs."""
    layers: tuple[int, ...] = ()
    """The execution order of an explicit order (``kind == "order"``)."""

    def __post_init__(self) -> None:
        if self.other is None and _is_int(self.layer):
            if self.kind == "swap":
                object.__setattr__(self, "other", self.layer + 1)
            elif self.kind == "repeat":
                object.__setattr__(self, "other", self.layer)
        if not isinstance(self.layers, tuple) and isinstance(self.layers, Iterable):
            object.__setattr__(self, "layers", tuple(self.layers))

    @classmethod
    def of_order(cls, order: Iterable[int]) -> Intervention:
        """An explicit layer order, filed under :func:`order_layer`.

        Example:
            >>> Intervention.of_order([0, 0, 1, 2]).layer
            0
        """
        layers = tuple(order)
        return cls("order", order_layer(layers) if all(_is_int(x) for x in layers) else -1, layers=layers)

    def order(self, n_layers: int) -> list[int]:
        """The layers in the order the intervened model of ``n_layers`` layers runs them.

        A component deletion keeps the original order (its change is :meth:`hooks`).

        Raises:
            ConfigError: The kind is unknown, a layer is not in the model, or the
                fields do not make an intervention of that kind.
        """
        if self.kind == "delete":
            self._only("layer")
            return deletion_order(n_layers, [check_layer(self.layer, n_layers, what="delete layer")])
        if self.kind == "swap":
            self._only("layer", "other")
            if self.other == self.layer + 1:
                first = check_layer(self.layer, n_layers - 1, what="swap layer")
                return swap_order(n_layers, first, first + 1)
            first, second = self._span(n_layers, "swap")
            return swap_order(n_layers, first, second)
        if self.kind == "delete_block":
            self._only("layer", "other")
            first, last = self._span(n_layers, "block")
            if last - first + 1 == n_layers:
                raise ConfigError(f"{self.label} deletes every layer; keep at least one")
            return deletion_order(n_layers, range(first, last + 1))
        if self.kind in _COMPONENT:
            self._only("layer")
            check_layer(self.layer, n_layers, what=f"{self.kind} layer")
            return list(range(n_layers))
        if self.kind == "repeat":
            self._only("layer", "other", "repeats")
            first, last = self._span(n_layers, "repeat", allow_single=True)
            if not _is_int(self.repeats) or self.repeats < 1:
                raise ConfigError(f"a repeat count must be an integer of at least 1, got {self.repeats!r}")
            return repeat_order(n_layers, first, last, self.repeats)
        if self.kind == "order":
            return self._explicit_order(n_layers)
        raise ConfigError(f"unknown intervention {self.kind!r}: use one of {', '.join(map(repr, KINDS))}")

    def hooks(self) -> HookList:
        """The hooks its forward needs besides the order: zero the deleted component's output, if any.

        Example:
            >>> [name for name, _ in Intervention("delete_mlp", 3).hooks()]
            ['blocks.3.hook_mlp_out']
            >>> Intervention("delete", 3).hooks()
            []
        """
        return component_deletion_hooks([self.layer], _COMPONENT[self.kind]) if self.kind in _COMPONENT else []

    def check(self, n_layers: int) -> Intervention:
        """Validate the kind and layers against a model of ``n_layers`` layers; returns ``self``."""
        self.order(n_layers)
        return self

    @property
    def label(self) -> str:
        """How tables, shards and messages name it, one label per intervention.

        ``"delete layer 3"``, ``"swap layers 3-4"``, ``"swap layers 3-7"``,
        ``"delete layers 3-5"``, ``"delete attention of layer 3"``,
        ``"delete MLP of layer 3"``, ``"repeat layer 3"``, ``"repeat layers 3-5"``,
        ``"repeat layers 3-5 x2"`` (two more runs), ``"order 0,2,1,3"``.
        """
        if self.kind == "delete":
            return f"delete layer {self.layer}"
        if self.kind == "swap":
            return f"swap layers {self.layer}-{self.other}"
        if self.kind == "delete_block":
            return f"delete layers {self.layer}-{self.other}"
        if self.kind in _COMPONENT:
            return f"delete {_COMPONENT_NAME[self.kind]} of layer {self.layer}"
        if self.kind == "repeat":
            span = f"layer {self.layer}" if self.other == self.layer else f"layers {self.layer}-{self.other}"
            return f"repeat {span}" + (f" x{self.repeats}" if self.repeats != 1 else "")
        if self.kind == "order":
            return "order " + ",".join(map(str, self.layers))
        return f"{self.kind} {self.layer}"

    def _only(self, *used: str) -> None:
        """Refuse fields this kind does not use (a ``delete`` with ``other`` is not a block)."""
        defaults = {"other": None, "repeats": 1, "layers": ()}
        extra = [name for name, default in defaults.items() if name not in used and getattr(self, name) != default]
        if extra:
            hint = " (for layers i..j use Intervention('delete_block', i, j))" if self.kind == "delete" else ""
            raise ConfigError(f"a {self.kind!r} intervention takes no {' or '.join(extra)}{hint}")

    def _span(self, n_layers: int, what: str, *, allow_single: bool = False) -> tuple[int, int]:
        """``(layer, other)`` checked: both in the model, ``layer < other`` (or equal when ``allow_single``)."""
        first = check_layer(self.layer, n_layers, what=f"{what} layer")
        if self.other is None:
            raise ConfigError(f"a {self.kind!r} intervention needs a second layer: Intervention({self.kind!r}, i, j)")
        second = check_layer(self.other, n_layers, what=f"second {what} layer")
        if first == second and not allow_single:
            if self.kind == "swap":
                raise ConfigError(f"cannot swap layer {first} with itself; name two different layers")
            raise ConfigError(
                f"a block needs at least 2 layers, got {first}-{second}; "
                f"for one layer use Intervention('delete', {first})"
            )
        if first > second:
            raise ConfigError(
                f"{self.kind} {first}-{second}: name the lower layer first, "
                f"Intervention({self.kind!r}, {second}, {first})"
            )
        return first, second

    def _explicit_order(self, n_layers: int) -> list[int]:
        self._only("layer", "layers")
        order = check_order(list(self.layers), n_layers)
        if not order:
            raise ConfigError("an explicit layer order is empty; name at least one layer to run")
        if order == list(range(n_layers)):
            raise ConfigError(f"{self.label} is the original order and changes nothing; drop it")
        if self.layer != order_layer(order):
            raise ConfigError(
                f"{self.label} is filed under layer {order_layer(order)}, not {self.layer}; "
                "build it with Intervention.of_order(order)"
            )
        return order


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_interventions(interventions: Iterable[Intervention], n_layers: int) -> list[Intervention]:
    """Validate a list of interventions for a model of ``n_layers`` layers: each, and no label twice.

    Raises:
        ConfigError: An intervention is invalid, or two share a label (their rows could not be told apart).
    """
    checked = [intervention.check(n_layers) for intervention in interventions]
    seen: set[str] = set()
    for intervention in checked:
        if intervention.label in seen:
            raise ConfigError(f"{intervention.label!r} is listed twice; list each intervention once")
        seen.add(intervention.label)
    return checked


def default_interventions(n_layers: int) -> list[Intervention]:
    """Every single-layer deletion, then every adjacent swap (2L - 1 interventions).

    Example:
        >>> [i.label for i in default_interventions(2)]
        ['delete layer 0', 'delete layer 1', 'swap layers 0-1']
    """
    return [Intervention("delete", i) for i in range(n_layers)] + [Intervention("swap", i) for i in range(n_layers - 1)]
