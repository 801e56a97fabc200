"""Decoding residuals to logits: the unembedding, whole or by vocabulary tiles.

On a CPU the ``[tokens, d_vocab]`` product of the unembedding is fastest when computed
tile by tile of the vocabulary (a tile of 1024 entries for 256 tokens is 1 MB, a core's
L2 cache). :func:`unembed` decodes through the model's own head; the tile loop has one
home, :func:`product_tiles` (:func:`vocabulary_tiles` for a linear head), which the
tiled scoring and the neuron moments use too.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from jaxtyping import Float
from torch import Tensor

from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.scoring.workspace import Workspace

VOCABULARY_TILE = 1024
"""Vocabulary entries per tile of :func:`linear_by_vocabulary_tiles`: 1 MB for 256 tokens, a core's L2 cache."""


def unembed(
    model: LoadedModel,
    residual: Float[Tensor, "*rows d_model"],
    workspace: Workspace | None = None,
) -> Float[Tensor, "*rows d_vocab"]:
    """Logits from the unembedding's input, as the model's own head computes them.

    Applies the bridge's unembedding and then the architecture's logit transform
    (e.g. a Gemma 2 style final softcap), so it matches a full forward pass.

    Args:
        model: A ``TransformerBridge``.
        residual: The unembedding's input, one row per token.
        workspace: Buffers to reuse (see :class:`~stages_of_inference.scoring.workspace.Workspace`).
            When given, and the head is a plain linear layer on the CPU with no hook
            attached, the logits are written into the workspace's ``"logits"`` buffer
            by :func:`linear_by_vocabulary_tiles`, which is faster than the head and
            equal to it up to float32 rounding (on this project's machine,
            bit-identical for both embedded models). They stay valid until the
            workspace's next unembedding.
            Otherwise the head module runs.

    Example:
        >>> logits = unembed(model, final_residual)  # doctest: +SKIP
    """
    linear = tiled_linear(model, residual)
    if workspace is not None and linear is not None:
        logits = linear_by_vocabulary_tiles(residual, linear, workspace)
    else:
        logits = model.unembed(residual)
    return model.adapter.apply_output_logits_transform(logits)


def tiled_linear(model: LoadedModel, residual: Tensor) -> torch.nn.Linear | None:
    """The head's linear layer when it can be computed by vocabulary tiles, else None.

    Tiles replace the head only when it is a plain ``nn.Linear`` on the CPU, of the
    residual's dtype, with no hook attached (a user's hook on the head must run).
    """
    head = model.unembed
    linear = getattr(head, "original_component", None)
    if (
        isinstance(linear, torch.nn.Linear)
        and residual.device.type == "cpu"
        and residual.dtype == linear.weight.dtype
        and not _has_hooks(head)
    ):
        return linear
    return None


def linear_by_vocabulary_tiles(
    residual: Float[Tensor, "n d_model"], linear: torch.nn.Linear, workspace: Workspace
) -> Float[Tensor, "n d_vocab"]:
    """``linear(residual)`` computed as ``(W @ residual.T).T``, :data:`VOCABULARY_TILE` outputs at a time.

    On a CPU, the matrix product with the vocabulary as its long first dimension runs
    faster than ``residual @ W.T`` with a few hundred rows, and each tile of it is
    copied into the logits while it is still in the cache. On this project's machine,
    unembedding 256 tokens took 0.61 s instead of 0.87 s for Gemma 3 and 0.125 s
    instead of 0.165 s for SmolLM2, tiles and copies included (``docs/performance.md``).

    Example:
        >>> linear = torch.nn.Linear(4, 10)
        >>> x = torch.randn(3, 4)
        >>> torch.allclose(linear_by_vocabulary_tiles(x, linear, Workspace()), linear(x))
        True
    """
    logits = workspace.buffer("logits", (residual.shape[0], linear.out_features), residual.dtype, residual.device)
    for start, tile in vocabulary_tiles(residual, linear, workspace):
        logits[:, start : start + tile.shape[0]].copy_(tile.t())
    return logits


def vocabulary_tiles(
    residual: Float[Tensor, "n d_model"],
    linear: torch.nn.Linear,
    workspace: Workspace,
    into: Float[Tensor, "d_vocab n"] | None = None,
) -> Iterator[tuple[int, Float[Tensor, "tile n"]]]:
    """``linear(residual).T``, :data:`VOCABULARY_TILE` vocabulary entries at a time.

    Yields ``(start, tile)``: ``tile[v, j]`` is output ``start + v`` of token ``j``
    (bias included; an all-zero bias, which TransformerLens gives a head that has none,
    is not added). Each tile is a ``[tile, n]`` block of the workspace's
    ``"vocabulary_tile"`` buffer, overwritten by the next one, or, when ``into`` is
    given, rows ``start ..`` of ``into``, which then holds every output.

    Example:
        >>> linear = torch.nn.Linear(4, 10)
        >>> x = torch.randn(3, 4)
        >>> out = torch.empty(10, 3)
        >>> [start for start, _ in vocabulary_tiles(x, linear, Workspace(), into=out)]
        [0]
        >>> torch.allclose(out.t(), linear(x), atol=1e-6)
        True
    """
    # Adding zeros changes no bit; skipping it saves a pass over every tile (docs/performance.md).
    bias = None if linear.bias is None or not linear.bias.any() else linear.bias.detach()
    yield from product_tiles(residual, linear.weight.detach(), workspace, bias=bias, into=into)


def product_tiles(
    rows: Float[Tensor, "n d_model"],
    weight: Float[Tensor, "d_vocab d_model"],
    workspace: Workspace,
    *,
    bias: Float[Tensor, " d_vocab"] | None = None,
    into: Float[Tensor, "d_vocab n"] | None = None,
) -> Iterator[tuple[int, Float[Tensor, "tile n"]]]:
    """``(rows @ weight.T + bias).T``, :data:`VOCABULARY_TILE` rows of ``weight`` at a time.

    The tile loop of :func:`vocabulary_tiles` for any weight laid out as a linear
    layer's (one row per output), e.g. the unit unembedding columns of the neuron
    moments. Yields ``(start, tile)`` with ``tile[v, j] = weight[start + v] . rows[j]``
    (plus ``bias[start + v]``), in the workspace's ``"vocabulary_tile"`` buffer or in
    ``into`` as :func:`vocabulary_tiles` does.

    Example:
        >>> weight, rows = torch.randn(2500, 4), torch.randn(3, 4)
        >>> tiles = [tile.clone() for _, tile in product_tiles(rows, weight, Workspace())]
        >>> [tile.shape[0] for tile in tiles]
        [1024, 1024, 452]
        >>> torch.allclose(torch.cat(tiles), weight @ rows.t())
        True
    """
    n, vocabulary = rows.shape[0], weight.shape[0]
    tiles = workspace.buffer("vocabulary_tile", (VOCABULARY_TILE * n,), rows.dtype, rows.device)
    columns = rows.detach().t()
    column_bias = None if bias is None else bias.unsqueeze(1)
    for start in range(0, vocabulary, VOCABULARY_TILE):
        stop = min(start + VOCABULARY_TILE, vocabulary)
        tile = tiles[: (stop - start) * n].view(stop - start, n) if into is None else into[start:stop]
        torch.mm(weight[start:stop], columns, out=tile)
        if column_bias is not None:
            tile += column_bias[start:stop]
        yield start, tile


def _has_hooks(module: torch.nn.Module) -> bool:
    """Whether any forward hook (a user's, or one of ours) is attached in ``module``."""
    return any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())
