"""Norms of what each layer writes to the residual stream, across depth (paper section 7).

Per layer, the mean L2 norm over tokens of the attention output (``hook_attn_out``), the
MLP output (``hook_mlp_out``) and the residual stream after the block
(``hook_resid_post``). The paper reports MLP output norms growing sharply in late
layers. BOS is excluded: its residual norm is typically an outlier (an attention sink).
"""

from __future__ import annotations

import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor

from stages_of_inference.activations import DEFAULT_BATCH_SIZE, cached_activations
from stages_of_inference.devices import accumulation_dtype
from stages_of_inference.layers import n_layers_of, relative_depth
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.tokens import check_windows

COMPONENTS = {
    "attn_out_norm": "hook_attn_out",
    "mlp_out_norm": "hook_mlp_out",
    "resid_post_norm": "hook_resid_post",
}
"""Table column -> the per-block hook whose norm it holds."""


def component_hook_names(n_layers: int) -> dict[tuple[int, str], str]:
    """``(layer, column)`` -> the hook whose norm that table cell holds.

    Example:
        >>> component_hook_names(1)
        {(0, 'attn_out_norm'): 'blocks.0.hook_attn_out', (0, 'mlp_out_norm'): 'blocks.0.hook_mlp_out', (0, 'resid_post_norm'): 'blocks.0.hook_resid_post'}
    """
    return {
        (layer, column): f"blocks.{layer}.{hook}" for layer in range(n_layers) for column, hook in COMPONENTS.items()
    }


def norm_sum(activation: Float[Tensor, "batch pos d_model"]) -> float:
    """Sum of the L2 norms of the non-BOS positions' vectors (positions ``1..T-1``).

    Example:
        >>> norm_sum(torch.tensor([[[9.0, 9.0], [3.0, 4.0], [0.0, 1.0]]]))
        6.0
    """
    wide = activation[:, 1:].to(accumulation_dtype(activation.device))
    return torch.linalg.vector_norm(wide, dim=-1).sum().item()


def component_norms(
    model: LoadedModel,
    tokens: Int[Tensor, "batch pos"],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> pd.DataFrame:
    """Mean L2 norm of each block's attention output, MLP output and output residual.

    Args:
        model: A ``TransformerBridge``.
        tokens: ``[batch, pos]`` windows, BOS at position 0 (not counted).
        batch_size: Windows per forward pass.

    Returns:
        One row per layer: ``layer``, ``relative_depth`` (``layer / (L - 1)``),
        ``attn_out_norm``, ``mlp_out_norm``, ``resid_post_norm``, ``n_tokens``.

    Raises:
        ConfigError: ``tokens`` is empty or its windows hold only BOS.

    Example:
        >>> table = component_norms(model, tokens)  # doctest: +SKIP
        >>> bool((table.mlp_out_norm > 0).all())  # doctest: +SKIP
        True
    """
    check_windows(tokens, what="component_norms", min_len=2)
    n_layers = n_layers_of(model)
    names = component_hook_names(n_layers)
    sums = {key: 0.0 for key in names}
    for _, cache in cached_activations(model, tokens, list(names.values()), batch_size):
        for key, name in names.items():
            sums[key] += norm_sum(cache[name])
    n_tokens = tokens.shape[0] * (tokens.shape[1] - 1)
    table = pd.DataFrame(
        {
            "layer": range(n_layers),
            "relative_depth": [relative_depth(layer, n_layers) for layer in range(n_layers)],
            **{column: [sums[layer, column] / n_tokens for layer in range(n_layers)] for column in COMPONENTS},
        }
    )
    table["n_tokens"] = n_tokens
    return table
