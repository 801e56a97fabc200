"""Unit tests of stages_of_inference.workspace: buffers are reused, never silently too small."""

from __future__ import annotations

import doctest

import torch

from stages_of_inference.scoring import workspace as workspace_module
from stages_of_inference.scoring.workspace import Workspace


def test_doctests_pass() -> None:
    assert doctest.testmod(workspace_module).failed == 0


def test_fewer_rows_reuse_the_buffer_as_a_contiguous_prefix() -> None:
    workspace = Workspace()
    full = workspace.buffer("x", (8, 5))
    part = workspace.buffer("x", (3, 5))
    assert part.shape == (3, 5) and part.is_contiguous()
    assert part.data_ptr() == full.data_ptr()
    assert workspace.buffer("x", (8, 5)).data_ptr() == full.data_ptr()


def test_a_larger_or_different_request_replaces_the_buffer() -> None:
    workspace = Workspace()
    first = workspace.buffer("x", (4, 5))
    assert workspace.buffer("x", (6, 5)).shape == (6, 5)
    assert workspace.buffer("x", (4, 6)).shape == (4, 6)
    assert workspace.buffer("x", (4, 6), dtype=torch.bool).dtype == torch.bool
    assert workspace.buffer("x", (4, 5)).data_ptr() != first.data_ptr()


def test_names_are_independent_and_like_copies_shape_and_dtype() -> None:
    workspace = Workspace()
    a = workspace.buffer("a", (4, 5))
    b = workspace.buffer("b", (4, 5))
    assert a.data_ptr() != b.data_ptr()
    like = workspace.like("c", torch.zeros(2, 3, dtype=torch.float64))
    assert like.shape == (2, 3) and like.dtype == torch.float64
    assert workspace.like("d", torch.zeros(2, 3), dtype=torch.bool).dtype == torch.bool
