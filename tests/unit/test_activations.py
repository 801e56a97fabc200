"""Tests of stages_of_inference.activations: batched caching, with and without the unembedding."""

from __future__ import annotations

import pytest
import torch

from stages_of_inference.activations import cached_activations, cached_batches
from stages_of_inference.errors import ConfigError
from stages_of_inference.scoring.decode import tiled_linear

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
