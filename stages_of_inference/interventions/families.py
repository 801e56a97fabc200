"""Named lists of interventions for a sweep, and lists of explicit orders read from JSON.

:func:`resolve_interventions` turns what a user types (``default``, ``blocks``,
``components``, ``swaps-all``, ``repeats``, or the path of a JSON file) into the
list of :class:`~stages_of_inference.interventions.Intervention` to pass to
:func:`~stages_of_inference.sweep.robustness_sweep`; :func:`intervention_family`
builds a named family with options, :func:`load_interventions` reads a file
(:func:`read_orders` alone checks its shape, before a model is loaded).

Example:
    >>> [i.label for i in intervention_family("blocks", 4, max_width=3)]
    ['delete layers 0-1', 'delete layers 1-2', 'delete layers 2-3', 'delete layers 0-2', 'delete layers 1-3']
    >>> len(intervention_family("swaps-all", 30))
    435
"""

from __future__ import annotations

import hashlib
import inspect
import json
import numbers
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stages_of_inference.errors import ConfigError
from stages_of_inference.interventions.spec import Intervention, check_interventions, default_interventions

DEFAULT_MAX_WIDTH = 4
"""The widest block (``blocks``) or repeated range (``repeats``) unless ``max_width`` says otherwise."""


def block_deletions(n_layers: int, *, max_width: int | None = None) -> list[Intervention]:
    """Every contiguous block of 2 to ``max_width`` layers deleted, narrowest first, then by start.

    ``max_width`` defaults to ``DEFAULT_MAX_WIDTH`` (4), or ``n_layers - 1`` on shallower
    models; it may be at most ``n_layers - 1`` (one layer must remain).

    Example:
        >>> [i.label for i in block_deletions(3)]
        ['delete layers 0-1', 'delete layers 1-2']
    """
    widest = _max_width(max_width, n_layers, lowest=2, highest=n_layers - 1, what="deleted blocks")
    return [Intervention("delete_block", i, i + w - 1) for w in range(2, widest + 1) for i in range(n_layers - w + 1)]


def component_deletions(n_layers: int) -> list[Intervention]:
    """The attention-only deletion of every layer, then the MLP-only one, then the whole layer's.

    Example:
        >>> [i.label for i in component_deletions(2)]  # doctest: +NORMALIZE_WHITESPACE
        ['delete attention of layer 0', 'delete attention of layer 1', 'delete MLP of layer 0',
         'delete MLP of layer 1', 'delete layer 0', 'delete layer 1']
    """
    return [Intervention(kind, i) for kind in ("delete_attn", "delete_mlp", "delete") for i in range(n_layers)]


def all_swaps(n_layers: int) -> list[Intervention]:
    """Every pair of layers ``i < j`` swapped, by ``i`` then ``j`` (``L (L - 1) / 2`` interventions).

    Example:
        >>> [i.label for i in all_swaps(3)]
        ['swap layers 0-1', 'swap layers 0-2', 'swap layers 1-2']
    """
    return [Intervention("swap", i, j) for i in range(n_layers) for j in range(i + 1, n_layers)]


def range_repeats(n_layers: int, *, max_width: int | None = None, repeats: int = 1) -> list[Intervention]:
    """Every range of 1 to ``max_width`` layers run ``repeats`` more times, narrowest first, then by start.

    Width 1 is every layer repeated. ``max_width`` defaults to ``DEFAULT_MAX_WIDTH``
    (4), or ``n_layers`` on shallower models.

    Example:
        >>> [i.label for i in range_repeats(3, max_width=2)]
        ['repeat layer 0', 'repeat layer 1', 'repeat layer 2', 'repeat layers 0-1', 'repeat layers 1-2']
    """
    widest = _max_width(max_width, n_layers, lowest=1, highest=n_layers, what="repeated ranges")
    spans = [(i, i + w - 1) for w in range(1, widest + 1) for i in range(n_layers - w + 1)]
    return [Intervention("repeat", first, last, repeats) for first, last in spans]


FAMILIES: dict[str, Callable[..., list[Intervention]]] = {
    "default": default_interventions,
    "blocks": block_deletions,
    "components": component_deletions,
    "swaps-all": all_swaps,
    "repeats": range_repeats,
}
"""Each named family and the function that builds it from ``n_layers`` and its options."""


def intervention_family(name: str, n_layers: int, **options: Any) -> list[Intervention]:
    """The named family of interventions for a model of ``n_layers`` layers.

    Args:
        name: ``default`` (every deletion, every adjacent swap), ``blocks``
            (:func:`block_deletions`, option ``max_width``), ``components``
            (:func:`component_deletions`), ``swaps-all`` (:func:`all_swaps`),
            ``repeats`` (:func:`range_repeats`, options ``max_width``, ``repeats``).
        n_layers: The model's depth.
        options: The family's options.

    Raises:
        ConfigError: Unknown family, an option the family does not take, or an
            option out of range.

    Example:
        >>> [i.label for i in intervention_family("repeats", 2, max_width=1, repeats=2)]
        ['repeat layer 0 x2', 'repeat layer 1 x2']
    """
    if name not in FAMILIES:
        raise ConfigError(f"unknown intervention family {name!r}: use one of {', '.join(FAMILIES)}, or a JSON file")
    if isinstance(n_layers, bool) or not isinstance(n_layers, numbers.Integral) or n_layers < 1:
        raise ConfigError(f"n_layers must be a positive integer, got {n_layers!r}")
    build = FAMILIES[name]
    takes = [option for option in inspect.signature(build).parameters if option != "n_layers"]
    unknown = sorted(set(options) - set(takes))
    if unknown:
        accepted = f"options {', '.join(takes)}" if takes else "no options"
        raise ConfigError(f"the {name!r} family takes {accepted}, not {', '.join(unknown)}")
    return check_interventions(build(int(n_layers), **options), int(n_layers))


def read_orders(path: str | os.PathLike[str]) -> list[list[int]]:
    """The layer orders of a JSON file, checked for shape only (no model needed).

    What :func:`load_interventions` reads; call it alone to refuse a bad file before a
    model is loaded (the experiments do).

    Raises:
        ConfigError: The file cannot be read or is not JSON, it is not a non-empty
            list, or an entry is not a list of integers (the message names the entry).

    Example:
        >>> read_orders("orders.json")  # doctest: +SKIP
        [[0, 2, 1, 3], [0, 0, 1, 2, 3]]
    """
    path = Path(path)
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read the interventions file {path}: {error.strerror or error}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"interventions file {path} is not JSON ({error}); write a list of layer orders") from None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"interventions file {path} must hold a non-empty JSON list of orders, like [[0, 2, 1, 3]]")
    for index, entry in enumerate(entries):
        if not isinstance(entry, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in entry):
            raise ConfigError(f"{path} entry {index} ({json.dumps(entry)}) must be a list of integer layer indices")
    return entries


def load_interventions(path: str | os.PathLike[str], n_layers: int) -> list[Intervention]:
    """Explicit layer orders read from a JSON file: a list of orders, each a list of 0-based layers.

    ``[[0, 2, 1, 3], [0, 0, 1, 2, 3]]`` gives two ``"order"`` interventions. An order
    may omit layers (they are deleted) and repeat them; it may not be empty, be the
    original order, or appear twice.

    Raises:
        ConfigError: The file cannot be read or is not JSON, or an entry is not a
            valid order for ``n_layers`` layers (the message names the entry).

    Example:
        >>> load_interventions("orders.json", 30)  # doctest: +SKIP
        [Intervention(kind='order', layer=1, other=None, repeats=1, layers=(0, 2, 1, 3, ...))]
    """
    path = Path(path)
    interventions = []
    for index, entry in enumerate(read_orders(path)):
        try:
            interventions.append(Intervention.of_order(entry).check(n_layers))
        except ConfigError as error:
            raise ConfigError(f"{path} entry {index} ({json.dumps(entry)}): {error}") from None
    try:
        return check_interventions(interventions, n_layers)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def resolve_interventions(spec: str, n_layers: int) -> list[Intervention]:
    """What ``--interventions SPEC`` means: a family name with its default options, or a JSON file of orders.

    Raises:
        ConfigError: ``spec`` is neither a family nor an existing file, or the file is invalid.

    Example:
        >>> len(resolve_interventions("default", 30))
        59
    """
    if spec in FAMILIES:
        return intervention_family(spec, n_layers)
    return load_interventions(_orders_file(spec), n_layers)


def family_name(spec: str) -> str:
    """A short name for what ``--interventions SPEC`` runs, fit for file names (a file's shape is checked).

    A family is named by itself; a JSON file of orders by its stem and the first 8 hex
    digits of the SHA-256 of its content (``orders-1a2b3c4d``), so an edited file is a
    new name and never mixes with the results of the old one.

    Raises:
        ConfigError: ``spec`` is neither a family nor a readable JSON list of orders
            (:func:`read_orders`).

    Example:
        >>> family_name("blocks")
        'blocks'
        >>> family_name("my orders.json")  # doctest: +SKIP
        'my-orders-5f0c1a9e'
    """
    if spec in FAMILIES:
        return spec
    path = _orders_file(spec)
    read_orders(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', path.stem)}-{digest}"


def _orders_file(spec: str) -> Path:
    """``spec`` as the path of an existing file (it names no family)."""
    if not Path(spec).is_file():
        raise ConfigError(
            f"--interventions {spec!r} is neither a family ({', '.join(FAMILIES)}) nor a JSON file of layer orders"
        )
    return Path(spec)


def _max_width(max_width: int | None, n_layers: int, *, lowest: int, highest: int, what: str) -> int:
    if max_width is None:
        max_width = min(DEFAULT_MAX_WIDTH, highest)
        if max_width < lowest:
            raise ConfigError(f"a {n_layers}-layer model has no {what} of {lowest} or more layers; use another family")
        return max_width
    if isinstance(max_width, bool) or not isinstance(max_width, numbers.Integral) or not lowest <= max_width <= highest:
        raise ConfigError(
            f"max_width ({what}) must be an integer from {lowest} to {highest} for {n_layers} layers, got {max_width!r}"
        )
    return int(max_width)
