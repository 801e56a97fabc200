"""Tests of stages_of_inference.activations: batched caching, with and without the unembedding, and shared forwards."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from stages_of_inference.activations import cached_activations, cached_batches, shared_forwards
from stages_of_inference.analyses.attention import pattern_hook_names, previous_token_attention
from stages_of_inference.analyses.cka import cka_hook_names, cka_matrix
from stages_of_inference.analyses.logit_lens import lens_hook_names, logit_lens, residual_hook_names
from stages_of_inference.analyses.norms import component_hook_names, component_norms
from stages_of_inference.errors import ConfigError
from stages_of_inference.layers import n_layers_of
from stages_of_inference.models import bridge_from_hf
from stages_of_inference.scoring.decode import tiled_linear
from tests.tiny_models import tiny_hf_model

NAMES = ["blocks.0.hook_resid_pre", "blocks.3.hook_resid_post", "blocks.1.attn.hook_pattern", "ln_final.hook_scale"]


def test_activations_equal_those_of_the_full_forward_bit_for_bit(tiny_model, tiny_tokens) -> None:
    full = list(cached_batches(tiny_model, tiny_tokens, NAMES, batch_size=2))
    stopped = list(cached_activations(tiny_model, tiny_tokens, NAMES, batch_size=2))
    assert len(full) == len(stopped) > 1
    for (batch, logits, cache), (stopped_batch, stopped_cache) in zip(full, stopped, strict=True):
        assert torch.equal(batch, stopped_batch)
        assert logits.shape[-1] == tiny_model.cfg.d_vocab
        assert sorted(stopped_cache) == sorted(cache)  # the names asked for, and their canonical names
        assert set(NAMES) <= set(cache)
        for name in NAMES:
            assert torch.equal(stopped_cache[name], cache[name]), name


def test_the_unembedding_does_not_run(tiny_model, tiny_tokens) -> None:
    calls = []
    spy = [("unembed.hook_out", lambda tensor, hook: calls.append(hook.name))]
    with tiny_model.hooks(fwd_hooks=spy):
        list(cached_batches(tiny_model, tiny_tokens, NAMES[:1]))
        assert len(calls) > 0  # the spy works
        calls.clear()
        list(cached_activations(tiny_model, tiny_tokens, NAMES[:1]))
    assert calls == []


def test_the_stop_is_attached_only_during_each_forward(tiny_model, tiny_tokens) -> None:
    """Between batches, a forward gives logits and the head can be tiled (no hook left on it)."""
    for batch, _ in cached_activations(tiny_model, tiny_tokens, NAMES[:1], batch_size=2):
        assert tiled_linear(tiny_model, torch.zeros(1, tiny_model.cfg.d_model)) is not None
        with torch.inference_mode():
            logits = tiny_model(batch)
        assert logits.shape == (*batch.shape, tiny_model.cfg.d_vocab)


@pytest.mark.parametrize("name", ["unembed.hook_out", "hook_unembed", "unembed.hook_in"])
def test_a_hook_of_the_unembedding_is_refused(tiny_model, tiny_tokens, name) -> None:
    with pytest.raises(ConfigError, match="use cached_batches"):
        next(cached_activations(tiny_model, tiny_tokens, [name]))


def _forwards(model) -> tuple[list[str], list]:
    """A hook that counts the model's forwards (each runs the embedding once)."""
    calls: list[str] = []
    return calls, [("hook_embed", lambda tensor, hook: calls.append(hook.name))]


def _analyses(model, tokens) -> dict[str, pd.DataFrame]:
    return {
        "lens": logit_lens(model, tokens, batch_size=2, progress=False),
        "shortcut": logit_lens(model, tokens[:2], batch_size=2, reuse_final_norm_scale=True, progress=False),
        "attention": previous_token_attention(model, tokens, k=2, batch_size=2),
        "heads": previous_token_attention(model, tokens, k=2, batch_size=2, by="head"),
        "norms": component_norms(model, tokens, batch_size=2),
        "cka": cka_matrix(model, tokens, batch_size=2),
    }


def _union(model) -> list[str]:
    n_layers = n_layers_of(model)
    return [
        *lens_hook_names(n_layers, reuse_final_norm_scale=True),
        *pattern_hook_names(n_layers),
        *component_hook_names(n_layers).values(),
        *cka_hook_names(model),
    ]


def test_shared_forwards_give_every_analysis_the_same_table_with_one_forward_per_batch(tiny_model, tiny_tokens) -> None:
    tokens = torch.cat([tiny_tokens, tiny_tokens.flip(0)])  # 6 windows: 3 batches of 2
    calls, spy = _forwards(tiny_model)
    with tiny_model.hooks(fwd_hooks=spy):
        alone = _analyses(tiny_model, tokens)
        assert len(calls) == 3 * 6 - 2  # six analyses of 3 batches, the shortcut of 1
        calls.clear()
        with shared_forwards(tiny_model, tokens, _union(tiny_model), batch_size=2, budget_bytes=2**30) as shared:
            together = _analyses(tiny_model, tokens)
    assert len(calls) == shared.forwards == 3
    assert shared.served == 3 * 6 - 2 - 3
    for name, table in alone.items():
        pd.testing.assert_frame_equal(together[name], table, check_exact=True, obj=name)


def test_batches_beyond_the_budget_are_run_again_by_each_analysis(tiny_model, tiny_tokens) -> None:
    calls, spy = _forwards(tiny_model)
    names = pattern_hook_names(n_layers_of(tiny_model)) + list(component_hook_names(n_layers_of(tiny_model)).values())
    with tiny_model.hooks(fwd_hooks=spy):
        expected = component_norms(tiny_model, tiny_tokens, batch_size=1)
        with shared_forwards(tiny_model, tiny_tokens, names, batch_size=1, budget_bytes=1) as shared:
            previous_token_attention(tiny_model, tiny_tokens, k=2, batch_size=1)
            calls.clear()
            got = component_norms(tiny_model, tiny_tokens, batch_size=1)
    assert shared.forwards == 3 and shared.served == 0 and shared.peak_bytes == 0
    assert len(calls) == 3  # norms ran its own forwards
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_a_batch_is_kept_only_while_the_budget_holds_it(tiny_model, tiny_tokens) -> None:
    names = pattern_hook_names(n_layers_of(tiny_model))
    with shared_forwards(tiny_model, tiny_tokens, names, batch_size=1, budget_bytes=2**30) as probe:
        list(cached_activations(tiny_model, tiny_tokens[:1], names, batch_size=1))
    one_batch = probe.peak_bytes
    assert one_batch > 0
    calls, spy = _forwards(tiny_model)
    with (
        tiny_model.hooks(fwd_hooks=spy),
        shared_forwards(tiny_model, tiny_tokens, names, batch_size=1, budget_bytes=2 * one_batch) as shared,
    ):
        list(cached_activations(tiny_model, tiny_tokens, names, batch_size=1))
        assert shared.kept_bytes == shared.peak_bytes == 2 * one_batch
        list(cached_activations(tiny_model, tiny_tokens, names, batch_size=1))
    assert shared.forwards == 3 and shared.served == 2
    assert len(calls) == 3 + 1  # the third batch did not fit: the second request ran it again
    assert shared.kept_bytes == 0  # released when the block ends


def test_keep_only_releases_what_no_later_analysis_reads(tiny_model, tiny_tokens) -> None:
    patterns, residuals = pattern_hook_names(n_layers_of(tiny_model)), residual_hook_names(n_layers_of(tiny_model))
    calls, spy = _forwards(tiny_model)
    with tiny_model.hooks(fwd_hooks=spy):
        with shared_forwards(tiny_model, tiny_tokens, patterns + residuals, budget_bytes=2**30) as shared:
            list(cached_activations(tiny_model, tiny_tokens, patterns))
            before = shared.kept_bytes
            shared.keep_only(residuals)
            assert 0 < shared.kept_bytes < before
            calls.clear()
            list(cached_activations(tiny_model, tiny_tokens, residuals))
            assert calls == []
            list(cached_activations(tiny_model, tiny_tokens, patterns))  # released: run again
            assert len(calls) == 1


@pytest.mark.parametrize(
    "request_kind", ["other windows", "other batch size", "hook not shared", "a name filter", "other model"]
)
def test_requests_the_shared_forwards_do_not_cover_run_their_own(
    tiny_model, tiny_tokens, request_kind: str, tiny_tokenizer
) -> None:
    names = residual_hook_names(n_layers_of(tiny_model))
    tokens, batch_size, requested, model = tiny_tokens, 2, names[:1], tiny_model
    if request_kind == "other windows":
        tokens = tiny_tokens.clone()
    elif request_kind == "other batch size":
        batch_size = 1
    elif request_kind == "hook not shared":
        requested = ["blocks.0.hook_mlp_out"]
    elif request_kind == "a name filter":
        requested = lambda name: name == names[0]
    else:
        model = bridge_from_hf(tiny_hf_model("llama", vocab_size=len(tiny_tokenizer)), tiny_tokenizer)
    with shared_forwards(tiny_model, tiny_tokens, names, batch_size=2, budget_bytes=2**30) as shared:
        got = list(cached_activations(model, tokens, requested, batch_size=batch_size))
    assert shared.forwards == shared.served == 0
    assert len(got) == -(-tokens.shape[0] // batch_size)


def test_shared_forwards_refuse_a_negative_budget_and_the_unembedding(tiny_model, tiny_tokens) -> None:
    with pytest.raises(ConfigError, match="at least 0"), shared_forwards(tiny_model, tiny_tokens, [], budget_bytes=-1):
        pass
    with (
        pytest.raises(ConfigError, match="unembedding"),
        shared_forwards(tiny_model, tiny_tokens, ["unembed.hook_in"], budget_bytes=1),
    ):
        pass
