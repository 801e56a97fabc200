"""Oracle test of previous-token attention: the library against plain numpy loops over a cached pattern."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stages_of_inference.analyses.attention import previous_token_attention

pytestmark = pytest.mark.oracle


def numpy_previous_token_weight(pattern: np.ndarray, k: int, exclude_bos: bool) -> np.ndarray:
    """[docs, heads, q, key] -> [docs, heads]: mean of pattern[q, q - d] for d in 1..k, by loops."""
    n_docs, n_heads, n_pos, _ = pattern.shape
    first = k + 1 if exclude_bos else k
    out = np.zeros((n_docs, n_heads))
    for doc in range(n_docs):
        for head in range(n_heads):
            entries = [pattern[doc, head, q, q - d] for q in range(first, n_pos) for d in range(1, k + 1)]
            assert all(q - d >= (1 if exclude_bos else 0) for q in range(first, n_pos) for d in range(1, k + 1))
            out[doc, head] = np.mean(entries)
    return out


@pytest.mark.parametrize(("k", "exclude_bos"), [(1, True), (5, True), (3, False)])
def test_layer_and_head_tables_equal_numpy_slices_of_the_pattern(tiny_model, tiny_tokens, k, exclude_bos) -> None:
    n_layers = tiny_model.cfg.n_layers
    with torch.inference_mode():
        _, cache = tiny_model.run_with_cache(tiny_tokens, names_filter=lambda name: name.endswith("hook_pattern"))
    per_head = np.stack(
        [
            numpy_previous_token_weight(cache[f"blocks.{layer}.attn.hook_pattern"].double().numpy(), k, exclude_bos)
            for layer in range(n_layers)
        ],
        axis=1,
    )  # [docs, layers, heads]
    n_docs = per_head.shape[0]

    # Error analysis: both sides average the same float32 pattern entries (probabilities in
    # [0, 1]); ours sums at most k * T of them per document in float32, pairwise, so each mean
    # carries a relative error of at most ceil(log2(k T)) * eps32 ~ 7 * 6e-8 = 4e-7 (rtol 1e-6).
    # The sem subtracts the mean before squaring: with document means ~0.1 spread by ~0.01 the
    # cancellation multiplies that relative error by ~10, and the sqrt halves it: < 1e-5
    # (rtol), with atol 1e-8 for heads whose sem is ~0.
    heads = previous_token_attention(tiny_model, tiny_tokens, k=k, exclude_bos=exclude_bos, batch_size=2, by="head")
    np.testing.assert_allclose(heads["mean"], per_head.mean(0).flatten(), rtol=1e-6)
    np.testing.assert_allclose(heads["sem"], per_head.std(0, ddof=1).flatten() / np.sqrt(n_docs), rtol=1e-5, atol=1e-8)

    layers = previous_token_attention(tiny_model, tiny_tokens, k=k, exclude_bos=exclude_bos, batch_size=2)
    per_layer = per_head.mean(-1)
    np.testing.assert_allclose(layers["mean"], per_layer.mean(0), rtol=1e-6)
    np.testing.assert_allclose(layers["sem"], per_layer.std(0, ddof=1) / np.sqrt(n_docs), rtol=1e-5, atol=1e-8)
    assert (layers.n_documents == n_docs).all()
