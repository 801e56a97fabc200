"""The published layer-pruning rankings the planner is compared with: Block Influence and angular distance.

Both are read from the residual stream of the unpruned model on the same windows, one
forward pass per batch, caching only the residual entering each block and the last
block's output (``x_0 .. x_L``, the input of block ``i`` being ``x_i``):

* **Block Influence** (ShortGPT: Men et al., "ShortGPT: Layers in Large Language
  Models are More Redundant Than You Expect", arXiv 2403.03853, eq. 1):
  ``BI_i = 1 - E_t[cos(x_i, x_{i+1})]``, averaged over every scored token (BOS
  excluded, :func:`~stages_of_inference.tokens.scored_positions`). ShortGPT removes
  the ``k`` layers of lowest BI.
* **Angular distance** (Gromov et al., "The Unreasonable Ineffectiveness of the Deeper
  Layers", arXiv 2403.17887, eq. 7; arcee-ai/PruneMe):
  ``d(l, n) = arccos(cos(x_l, x_{l+n})) / π`` on each window's last token, averaged over
  windows. For ``n`` layers to cut it removes the block ``l* .. l* + n - 1`` with the
  smallest ``d(l, n)``. ``x_L`` here is the last block's output before the final norm (the
  paper's definition; PruneMe reads Hugging Face's last hidden state, which is after it).

Layers are 0-based in the original numbering.

Example:
    >>> import pandas as pd
    >>> scores = pd.DataFrame({"layer": [0, 1, 2, 3], "block_influence": [0.9, 0.1, 0.3, 0.2]})
    >>> block_influence_plan(scores, 2)
    [1, 3]
    >>> distances = pd.DataFrame({"block_start": [0, 1, 2], "n_layers": 2, "angular_distance": [0.5, 0.2, 0.3]})
    >>> angular_distance_plan(distances, 2)
    [1, 2]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from jaxtyping import Int
from torch import Tensor

from stages_of_inference.activations import DEFAULT_BATCH_SIZE, cached_activations
from stages_of_inference.errors import ConfigError
from stages_of_inference.layers import n_layers_of
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.tokens import check_windows, scored_positions


def residual_similarity(
    model: LoadedModel, tokens: Int[Tensor, "batch pos"], *, batch_size: int = DEFAULT_BATCH_SIZE
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Block Influence of every layer and the angular distance of every block of consecutive layers.

    Args:
        model: The unpruned model.
        tokens: BOS-first windows (:func:`~stages_of_inference.corpus.load_corpus`).
        batch_size: Windows per forward pass.

    Returns:
        ``(layer_scores, angular_distances)``: ``layer_scores`` has one row per layer
        (``layer``, ``block_influence``); ``angular_distances`` one row per block
        (``block_start``, ``n_layers``, ``angular_distance``) for every size ``1 .. L - 1``
        and start ``0 .. L - n``.
    """
    check_windows(tokens, what="the pruning baselines")
    n_layers = n_layers_of(model)
    names = [f"blocks.{layer}.hook_resid_pre" for layer in range(n_layers)]
    names.append(f"blocks.{n_layers - 1}.hook_resid_post")
    cos_sums = torch.zeros(n_layers, dtype=torch.float64)
    angle_sums = torch.zeros(n_layers + 1, n_layers + 1, dtype=torch.float64)
    scored = scored_positions(tokens.shape[1])
    for _, cache in cached_activations(model, tokens, names, batch_size):
        residuals = torch.stack([cache[name] for name in names]).double()  # [L + 1, batch, pos, d_model]
        unit = torch.nn.functional.normalize(residuals, dim=-1)
        cos_sums += (unit[:-1, :, scored] * unit[1:, :, scored]).sum(-1).sum((1, 2))
        last = unit[:, :, -1]  # [L + 1, batch, d_model]
        cosines = torch.einsum("lbd,mbd->lmb", last, last).clamp(-1.0, 1.0)
        angle_sums += (torch.arccos(cosines) / torch.pi).sum(-1)
    n_windows = tokens.shape[0]
    influence = 1.0 - cos_sums / (n_windows * len(range(tokens.shape[1])[scored]))
    layer_scores = pd.DataFrame({"layer": range(n_layers), "block_influence": influence.numpy()})
    angles = (angle_sums / n_windows).numpy()
    blocks = [(start, size) for size in range(1, n_layers) for start in range(n_layers - size + 1)]
    angular = pd.DataFrame(
        {
            "block_start": [start for start, _ in blocks],
            "n_layers": [size for _, size in blocks],
            "angular_distance": np.array([angles[start, start + size] for start, size in blocks]),
        }
    )
    return layer_scores, angular


def block_influence_plan(layer_scores: pd.DataFrame, n_deleted: int) -> list[int]:
    """ShortGPT's choice: the ``n_deleted`` layers of lowest Block Influence (ties: lower layer first), sorted."""
    check_budget(n_deleted, len(layer_scores))
    ranked = layer_scores.sort_values(["block_influence", "layer"], kind="stable")
    return sorted(int(layer) for layer in ranked.layer.iloc[:n_deleted])


def angular_distance_plan(angular_distances: pd.DataFrame, n_deleted: int) -> list[int]:
    """Gromov et al.'s choice: the block of ``n_deleted`` consecutive layers of smallest angular distance."""
    blocks = angular_distances[angular_distances.n_layers == n_deleted]
    if blocks.empty:
        raise ConfigError(f"no angular distance for blocks of {n_deleted} layers; recompute residual_similarity")
    best = blocks.sort_values(["angular_distance", "block_start"], kind="stable").iloc[0]
    return list(range(int(best.block_start), int(best.block_start) + n_deleted))


def check_budget(n_deleted: int, n_layers: int) -> None:
    """Refuse a number of layers to delete outside ``1 .. n_layers - 1``.

    Raises:
        ConfigError: Naming the allowed range.
    """
    if isinstance(n_deleted, bool) or not isinstance(n_deleted, int) or not 1 <= n_deleted < n_layers:
        raise ConfigError(
            f"cannot delete {n_deleted!r} layers of a {n_layers}-layer model (max_layers, --layers); "
            f"pass an integer between 1 and {n_layers - 1}"
        )
