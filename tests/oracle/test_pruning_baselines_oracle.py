"""Oracle test of the pruning baselines (Block Influence, angular distance) against plain Hugging Face.

The oracle reads the residual stream from an independently built HF model (same seed,
same weights) with PyTorch forward hooks: ``x_0`` is the embedding module's output and
``x_{i+1}`` decoder layer ``i``'s output, before the final norm. Block Influence and the
angular distances are then computed here from their papers' formulas in float64.
The bridge runs the raw HF weights in the same modules, so the two residual streams
agree to float32 rounding; means of cosines over a few hundred tokens then agree to
``1e-6``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import PreTrainedTokenizerFast

from stages_of_inference.corpus import load_corpus
from stages_of_inference.models import bridge_from_hf
from stages_of_inference.pruning import residual_similarity
from tests.tiny_models import N_LAYERS, perturb_norm_weights, tiny_hf_model

pytestmark = [pytest.mark.oracle, pytest.mark.usefixtures("single_thread")]


def hf_residuals(architecture: str, vocab_size: int, tokens: torch.Tensor) -> np.ndarray:
    """``x_0 .. x_L`` of an untouched HF model, ``[L + 1, batch, pos, d_model]`` in float64."""
    model = perturb_norm_weights(tiny_hf_model(architecture, vocab_size, seed=1), seed=1)
    captured: list[torch.Tensor] = []

    def keep(module: torch.nn.Module, inputs: object, output: torch.Tensor | tuple[torch.Tensor, ...]) -> None:
        captured.append(output[0] if isinstance(output, tuple) else output)

    handles = [model.model.embed_tokens.register_forward_hook(keep)]
    handles += [layer.register_forward_hook(keep) for layer in model.model.layers]
    with torch.inference_mode():
        model(tokens)
    for handle in handles:
        handle.remove()
    return torch.stack(captured).double().numpy()


@pytest.mark.parametrize("architecture", ["llama", "gemma3"])
def test_block_influence_and_angular_distance_match_their_formulas(
    architecture: str, tiny_tokenizer: PreTrainedTokenizerFast
) -> None:
    tokens = load_corpus("embedded", tiny_tokenizer, n_tokens=5 * 24, seq_len=24, seed=0)
    hf_model = perturb_norm_weights(tiny_hf_model(architecture, len(tiny_tokenizer), seed=1), seed=1)
    bridge = bridge_from_hf(hf_model, tiny_tokenizer, compatibility_mode=False)
    layer_scores, angular = residual_similarity(bridge, tokens, batch_size=2)

    x = hf_residuals(architecture, len(tiny_tokenizer), tokens)
    unit = x / np.linalg.norm(x, axis=-1, keepdims=True)
    scored = unit[:, :, 1:-1]  # BOS and the last position (no target) excluded
    influence = [1 - float((scored[i] * scored[i + 1]).sum(-1).mean()) for i in range(N_LAYERS)]
    np.testing.assert_allclose(layer_scores.block_influence, influence, rtol=0, atol=1e-6)

    last = unit[:, :, -1]
    for row in angular.itertuples():
        cosines = (last[row.block_start] * last[row.block_start + row.n_layers]).sum(-1)
        expected = float(np.mean([math.acos(min(1.0, max(-1.0, c))) / math.pi for c in cosines]))
        assert row.angular_distance == pytest.approx(expected, abs=1e-6)
    assert len(angular) == sum(N_LAYERS - n + 1 for n in range(1, N_LAYERS))
