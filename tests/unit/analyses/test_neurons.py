"""Unit tests of neuron vocabulary moments, classification, counts and class neurons (tiny models)."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
import torch
from transformers.models.gemma3.modeling_gemma3 import Gemma3RMSNorm
from transformers.models.llama.modeling_llama import LlamaRMSNorm

from stages_of_inference.analyses import neurons as neurons_module
from stages_of_inference.analyses.neurons import (
    MOMENT_ATOL,
    MOMENT_COLUMNS,
    MOMENT_RTOL,
    class_neurons,
    classify_neurons,
    neuron_counts,
    neuron_vocab_moments,
    output_directions,
    post_norm_gain,
)
from stages_of_inference.errors import ConfigError
from stages_of_inference.models import bridge_from_hf
from stages_of_inference.scoring import decode
from tests.tiny_models import tiny_hf_model

COLUMNS = ["layer", "neuron", "relative_depth", "mean", "variance", "skew", "kurtosis"]


def test_moments_cover_every_neuron_with_valid_statistics(tiny_model) -> None:
    moments = neuron_vocab_moments(tiny_model)
    n_layers, d_mlp = tiny_model.cfg.n_layers, tiny_model.W_out.shape[1]
    assert moments.columns.tolist() == COLUMNS
    assert len(moments) == n_layers * d_mlp
    assert moments.groupby("layer")["neuron"].apply(list).tolist() == [list(range(d_mlp))] * n_layers
    assert moments["relative_depth"].min() == 0.0 and moments["relative_depth"].max() == 1.0
    assert (moments["variance"] > 0).all()
    assert moments["mean"].abs().max() < 1.0  # a mean of cosines
    # Pearson's inequality holds for every distribution: kurtosis >= skew^2 + 1.
    assert (moments["kurtosis"] >= moments["skew"] ** 2 + 1 - 1e-4).all()


def _float64_moments(directions: np.ndarray, W_U: np.ndarray, center: bool) -> np.ndarray:
    """``[neurons, 4]``: the moments' definition written out in float64 over the whole vocabulary."""
    if center:
        W_U = W_U - W_U.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(W_U, axis=0)
    unit_columns = np.divide(W_U, norms, out=np.zeros_like(W_U), where=norms > 0)
    cosines = directions / np.linalg.norm(directions, axis=1, keepdims=True) @ unit_columns
    centred = cosines - cosines.mean(axis=1, keepdims=True)
    variance = (centred**2).mean(axis=1)
    z = centred / np.sqrt(variance)[:, None]
    return np.stack([cosines.mean(axis=1), variance, (z**3).mean(axis=1), (z**4).mean(axis=1)], axis=1)


@pytest.mark.parametrize("center", [True, False])
def test_tiled_moments_are_within_the_stated_bound_of_float64(tiny_model, center, monkeypatch) -> None:
    d_vocab = tiny_model.W_U.shape[1]
    tile = 64
    assert d_vocab > tile and d_vocab % tile != 0  # several tiles, the last one short
    monkeypatch.setattr(decode, "VOCABULARY_TILE", tile)
    got = neuron_vocab_moments(tiny_model, layers=[0, 2], neuron_chunk=7, center_unembed=center)
    W_U = tiny_model.W_U.detach().double().numpy()
    for layer in (0, 2):
        directions = output_directions(tiny_model, layer).double().numpy()
        expected = _float64_moments(directions, W_U, center)
        values = got[got["layer"] == layer][list(MOMENT_COLUMNS)].to_numpy()
        np.testing.assert_allclose(values, expected, rtol=MOMENT_RTOL, atol=MOMENT_ATOL)


def test_chunking_does_not_change_the_moments(tiny_model) -> None:
    whole = neuron_vocab_moments(tiny_model, layers=[1, 3], neuron_chunk=10_000)
    chunked = neuron_vocab_moments(tiny_model, layers=[3, 1], neuron_chunk=7)
    pd.testing.assert_frame_equal(whole, chunked, rtol=1e-4, atol=1e-5)
    assert sorted(whole["layer"].unique()) == [1, 3]


def test_centring_the_unembedding_changes_the_moments(tiny_model) -> None:
    centred = neuron_vocab_moments(tiny_model, layers=0)
    raw = neuron_vocab_moments(tiny_model, layers=0, center_unembed=False)
    assert not torch.allclose(torch.tensor(centred["mean"].values), torch.tensor(raw["mean"].values))


@pytest.mark.parametrize("kwargs", [{"layers": [99]}, {"layers": []}, {"neuron_chunk": 0}, {"neuron_chunk": 2.5}])
@pytest.mark.usefixtures("unchecked_shapes")  # malformed on purpose: our ConfigError must answer
def test_moments_reject_bad_arguments(tiny_model, kwargs) -> None:
    with pytest.raises(ConfigError):
        neuron_vocab_moments(tiny_model, **kwargs)


def test_a_neuron_that_writes_nothing_has_zero_variance_and_undefined_shape(tiny_model) -> None:
    with torch.no_grad():
        tiny_model.blocks[1].mlp.W_out[3] = 0.0
    moments = neuron_vocab_moments(tiny_model, layers=1).set_index("neuron")
    assert moments.loc[3, "mean"] == 0.0 and moments.loc[3, "variance"] == 0.0
    assert moments.loc[3, ["skew", "kurtosis"]].isna().all()
    assert moments.drop(index=3)[["skew", "kurtosis"]].notna().all().all()


def _toy_moments() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "layer": [0, 0, 1, 1, 1],
            "relative_depth": [0.0, 0.0, 1.0, 1.0, 1.0],
            "skew": [3.0, -3.0, 3.0, 0.0, 3.0],
            "kurtosis": [10.0, 50.0, 11.0, 90.0, 9.0],
        }
    )


def test_classify_uses_a_strict_threshold_and_the_sign_of_skew() -> None:
    kinds = classify_neurons(_toy_moments())["kind"].tolist()
    assert kinds == ["other", "suppression", "prediction", "other", "other"]
    lowered = classify_neurons(_toy_moments(), kurtosis_threshold=5.0)["kind"].tolist()
    assert lowered == ["prediction", "suppression", "prediction", "other", "prediction"]


def test_classify_needs_moment_columns() -> None:
    with pytest.raises(ConfigError):
        classify_neurons(pd.DataFrame({"layer": [0]}))


def test_counts_per_layer_include_zero_rows() -> None:
    counts = neuron_counts(classify_neurons(_toy_moments()))
    assert counts.columns.tolist() == ["layer", "relative_depth", "prediction", "suppression"]
    assert counts[["layer", "prediction", "suppression"]].values.tolist() == [[0, 0, 1], [1, 1, 0]]


def test_counts_keep_models_apart() -> None:
    classified = classify_neurons(_toy_moments())
    both = pd.concat([classified.assign(model="a"), classified.assign(model="b")])
    counts = neuron_counts(both)
    assert counts["model"].tolist() == ["a", "a", "b", "b"]


def test_counts_need_a_kind_column() -> None:
    with pytest.raises(ConfigError):
        neuron_counts(_toy_moments())


def test_class_neurons_ranks_by_absolute_score(tiny_model) -> None:
    top = class_neurons(tiny_model, [5, 6, 7], top_k=12)
    assert len(top) == 12
    assert top.columns.tolist() == ["layer", "neuron", "relative_depth", "score", "direction"]
    assert top["score"].abs().is_monotonic_decreasing
    assert (top["direction"] == top["score"].map(lambda s: "promotes" if s > 0 else "suppresses")).all()


def test_class_by_predicate_equals_class_by_ids(tiny_model) -> None:
    tokenizer = tiny_model.tokenizer
    ids = [i for i in range(len(tokenizer)) if tokenizer.decode([i]).startswith(" t")]
    by_predicate = class_neurons(tiny_model, lambda s: s.startswith(" t"), layers=[0, 2], top_k=5)
    by_ids = class_neurons(tiny_model, ids, layers=[0, 2], top_k=5)
    pd.testing.assert_frame_equal(by_predicate, by_ids)
    assert set(by_ids["layer"]) <= {0, 2}


@pytest.mark.parametrize(
    "token_class", [[], [10**6], lambda s: False, lambda s: True], ids=["empty", "out-of-range", "none", "all"]
)
def test_class_neurons_rejects_bad_classes(tiny_model, token_class) -> None:
    with pytest.raises(ConfigError):
        class_neurons(tiny_model, token_class)


def test_class_neurons_rejects_bad_top_k(tiny_model) -> None:
    with pytest.raises(ConfigError):
        class_neurons(tiny_model, [3], top_k=0)


def test_doctests_pass() -> None:
    assert doctest.testmod(neurons_module).failed == 0


@pytest.fixture
def tiny_gemma3(tiny_tokenizer):
    """A tiny Gemma 3 bridge (raw weights): every MLP output passes through post_feedforward_layernorm."""
    return bridge_from_hf(
        tiny_hf_model("gemma3", vocab_size=len(tiny_tokenizer)), tiny_tokenizer, compatibility_mode=False
    )


def _randomise_post_mlp_gains(model, seed: int = 0) -> None:
    """Draw new weights for every post_feedforward_layernorm, the HF modules that run in the bridge."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in model.blocks:
            weight = block.ln2_post.original_component.weight
            weight.copy_(torch.randn(weight.shape, generator=generator))


def test_the_post_mlp_gain_changes_the_moments(tiny_gemma3) -> None:
    before = neuron_vocab_moments(tiny_gemma3)
    _randomise_post_mlp_gains(tiny_gemma3)
    after = neuron_vocab_moments(tiny_gemma3)
    for column in ("skew", "kurtosis"):
        changed = (after[column] - before[column]).abs().groupby(after["layer"]).median()
        assert (changed > 1e-3).all(), column  # every layer's neurons move, by ~0.1 typically


def test_the_post_mlp_gain_changes_the_class_scores(tiny_gemma3) -> None:
    before = class_neurons(tiny_gemma3, list(range(40, 60)), top_k=256)
    _randomise_post_mlp_gains(tiny_gemma3)
    after = class_neurons(tiny_gemma3, list(range(40, 60)), top_k=256)
    merged = before.merge(after, on=["layer", "neuron"], suffixes=("_before", "_after"))
    assert len(merged) == 256
    assert not torch.allclose(torch.tensor(merged["score_before"].values), torch.tensor(merged["score_after"].values))


def test_directions_are_w_out_times_the_post_mlp_gain(tiny_gemma3) -> None:
    _randomise_post_mlp_gains(tiny_gemma3)
    for layer, block in enumerate(tiny_gemma3.blocks):
        gain = 1.0 + block.ln2_post.original_component.weight.detach()  # Gemma stores gain - 1
        torch.testing.assert_close(output_directions(tiny_gemma3, layer), tiny_gemma3.W_out[layer].detach() * gain)


@pytest.mark.parametrize("architecture", ["llama", "neox", "gpt2"])
@pytest.mark.parametrize("compatibility_mode", [False, True])
def test_without_a_post_mlp_norm_the_directions_are_w_out(architecture, compatibility_mode, tiny_tokenizer) -> None:
    model = bridge_from_hf(
        tiny_hf_model(architecture, vocab_size=len(tiny_tokenizer)),
        tiny_tokenizer,
        compatibility_mode=compatibility_mode,
    )
    for layer in range(model.cfg.n_layers):
        directions, W_out = output_directions(model, layer), model.W_out[layer].detach().float()
        assert torch.equal(directions, W_out)
        assert directions.stride() == W_out.stride()  # same layout, same rounding in the products


def test_post_norm_gain_reads_each_weight_convention() -> None:
    # Signed weights from 0.01 to 1e5: beyond real Gemma gains (up to ~1.7e3), where a
    # difference of 1 is a small relative change; exactly -1 (Gemma gain 0) included.
    weight = torch.logspace(-2, 5, 8) * torch.tensor([1.0, -1.0] * 4)
    weight[3] = -1.0
    gemma_norm, llama_norm = Gemma3RMSNorm(8), LlamaRMSNorm(8)
    with torch.no_grad():
        gemma_norm.weight.copy_(weight)
        llama_norm.weight.copy_(weight)
    assert torch.equal(post_norm_gain(gemma_norm), 1.0 + weight)
    assert torch.equal(post_norm_gain(llama_norm), weight)


@pytest.mark.parametrize(
    "norm",
    [torch.nn.LayerNorm(8), torch.nn.RMSNorm(8, elementwise_affine=False), torch.nn.Identity()],
    ids=["layernorm-centres", "no-weight", "not-a-norm"],
)
def test_post_norm_gain_rejects_other_modules(norm) -> None:
    with pytest.raises(ConfigError, match="post-MLP norm"):
        post_norm_gain(norm)


def test_an_unsupported_post_mlp_norm_is_an_error(tiny_gemma3) -> None:
    tiny_gemma3.blocks[1].ln2_post.set_original_component(torch.nn.LayerNorm(tiny_gemma3.cfg.d_model))
    with pytest.raises(ConfigError, match="LayerNorm"):
        neuron_vocab_moments(tiny_gemma3, layers=[1])
    with pytest.raises(ConfigError, match="LayerNorm"):
        class_neurons(tiny_gemma3, [3, 4])
    assert len(neuron_vocab_moments(tiny_gemma3, layers=[0, 2])) == 2 * tiny_gemma3.cfg.d_mlp
