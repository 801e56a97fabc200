"""Oracle tests of layer interventions on the real models against plain Hugging Face.

The oracle is an independently loaded raw HF model whose decoder layer list is edited
by hand (layers removed or reordered in ``model.model.layers``; on Gemma 3 the per-slot
``config.layer_types`` permuted the same way and ``config.num_hidden_layers`` set).
Our interventions run on a bridge.

Tolerances, from what differs between the two sides:

* Raw weights: the bridge runs HF's own modules, in the same order, on the same
  float32 weights (eager attention on both sides), so its log-probabilities must equal
  the hand-edited HF model's bit for bit.
* Compatibility mode folds the norms into the next weights and centres the
  unembedding, in float32: the same function up to float32 rounding. That rounding
  depends on the network (deleting SmolLM2's layer 0 makes it ten times worse), so
  it is measured on each edited network itself: ``e_hf``, HF's own float32 error
  against the same HF model run in float64. Folding adds one rounding per weight to
  the forward's rounding per product, and reorders sums, so the bridge's float32
  error is taken to be at most :data:`COMPAT_ROUNDING_FACTOR` times ``e_hf``, and
  the two float32 results differ by at most ``(1 + COMPAT_ROUNDING_FACTOR) e_hf``.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from torch import nn

from stages_of_inference.corpus import load_corpus
from stages_of_inference.interventions import delete_layers, layer_order, swap_layers
from stages_of_inference.models.loading import load_hf_model, load_model
from stages_of_inference.scoring.decode import unembed
from stages_of_inference.sweep import final_residual

pytestmark = pytest.mark.oracle

SEQ_LEN = 48
COMPAT_ROUNDING_FACTOR = 4.0
"""Compatibility mode's float32 error over HF's own: twice the rounding steps, times 2 for safety."""
SESSION_FIXTURE = {"smollm2-135m": "smollm2", "gemma-3-270m": "gemma3"}
N_LAYERS = {"smollm2-135m": 30, "gemma-3-270m": 18}

# (description, our context factory, the HF execution order)
CASES = {
    "smollm2-135m": [
        ("delete 0", lambda m: delete_layers(m, [0]), [i for i in range(30) if i != 0]),
        ("delete 15", lambda m: delete_layers(m, [15]), [i for i in range(30) if i != 15]),
        ("delete 29", lambda m: delete_layers(m, [29]), list(range(29))),
        ("swap 10-11", lambda m: swap_layers(m, 10, 11), [*range(10), 11, 10, *range(12, 30)]),
    ],
    "gemma-3-270m": [
        ("delete 0", lambda m: delete_layers(m, [0]), [i for i in range(18) if i != 0]),
        ("delete 9", lambda m: delete_layers(m, [9]), [i for i in range(18) if i != 9]),
        ("delete 17", lambda m: delete_layers(m, [17]), list(range(17))),
        ("swap 4-5", lambda m: swap_layers(m, 4, 5), [*range(4), 5, 4, *range(6, 18)]),
        # a deletion by execution order across the global layer 5: slot types must shift
        ("order without 5", lambda m: layer_order(m, [i for i in range(18) if i != 5]),
         [i for i in range(18) if i != 5]),
    ],
}


class Oracle:
    """One real model: a raw-weights bridge, an untouched HF copy, and test windows."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.raw = load_model(name, compatibility_mode=False)
        self.hf, tokenizer, _ = load_hf_model(name)
        # the bridge forces eager attention; HF's default sdpa differs by ~4e-5 in log-prob
        self.hf.set_attn_implementation("eager")
        self.tokens = load_corpus("embedded", tokenizer, n_tokens=2 * SEQ_LEN, seq_len=SEQ_LEN)
        assert self.tokens.shape == (2, SEQ_LEN)
        with torch.inference_mode():
            self.raw_base = log_probs(self.raw(self.tokens))
        self.hf_base = self.hf_log_probs(list(range(self.raw.cfg.n_layers)))

    def hf_log_probs(self, order: list[int]) -> torch.Tensor:
        with hf_layer_order(self.hf, order), torch.inference_mode():
            return log_probs(self.hf(self.tokens).logits)

    def hf_float32_error(self, order: list[int]) -> float:
        """HF's own float32 rounding on this edited network: max |float32 - float64| log-prob.

        The weights go to float64 and back, which is exact, so the model is unchanged after.
        """
        float32 = self.hf_log_probs(order)
        self.hf.double()
        try:
            float64 = self.hf_log_probs(order)
        finally:
            self.hf.float()
        return float((float32.double() - float64).abs().max())


def log_probs(logits: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits if logits.dtype == torch.float64 else logits.float(), dim=-1)


def compat_bound(oracle: Oracle, order: list[int]) -> float:
    """The largest float32 rounding difference allowed between compatibility mode and HF (module docstring)."""
    return (1 + COMPAT_ROUNDING_FACTOR) * oracle.hf_float32_error(order)


@contextmanager
def hf_layer_order(hf_model: nn.Module, order: list[int]) -> Iterator[None]:
    """Run a plain HF decoder's layers in ``order``, edited by hand."""
    decoder = hf_model.model
    layers = decoder.layers
    configs = {id(c): c for c in (hf_model.config, decoder.config)}.values()
    saved = [(c, c.num_hidden_layers, getattr(c, "layer_types", None)) for c in configs]
    decoder.layers = nn.ModuleList([layers[i] for i in order])
    for config, _, types in saved:
        config.num_hidden_layers = len(order)
        if types is not None:
            config.layer_types = [types[i] for i in order]
    try:
        yield
    finally:
        decoder.layers = layers
        for config, count, types in saved:
            config.num_hidden_layers = count
            if types is not None:
                config.layer_types = types


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """The machine has 2 cores shared with other jobs: one thread each is faster and fairer."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=list(CASES))
def oracle(request: pytest.FixtureRequest) -> Iterator[Oracle]:
    """Loaded once per model and module, freed before the next model loads."""
    built = Oracle(str(request.param))
    yield built
    del built
    gc.collect()


def compat_model(request: pytest.FixtureRequest, name: str):
    return request.getfixturevalue(SESSION_FIXTURE[name])


def test_plain_forwards_agree(oracle: Oracle, request: pytest.FixtureRequest) -> None:
    """The control: no intervention, the bridges equal HF."""
    with torch.inference_mode():
        compat = log_probs(compat_model(request, oracle.name)(oracle.tokens))
    assert torch.equal(oracle.raw_base, oracle.hf_base)
    assert (compat - oracle.hf_base).abs().max() <= compat_bound(oracle, list(range(N_LAYERS[oracle.name])))


def test_interventions_equal_hand_edited_hf(oracle: Oracle, request: pytest.FixtureRequest) -> None:
    """Every case of the model in turn (one test, so each model is loaded once)."""
    compat = compat_model(request, oracle.name)
    for label, context, order in CASES[oracle.name]:
        expected = oracle.hf_log_probs(order)
        bound = compat_bound(oracle, order)
        # the intervention matters: far larger than the rounding allowed
        assert (expected - oracle.hf_base).abs().max() > 10 * bound, label
        with torch.inference_mode():
            with context(oracle.raw):
                raw = log_probs(oracle.raw(oracle.tokens))
            with context(compat):
                compat_lp = log_probs(compat(oracle.tokens))
            # the bridge is restored
            assert torch.equal(log_probs(oracle.raw(oracle.tokens)), oracle.raw_base), label
        assert torch.equal(raw, expected), (label, float((raw - expected).abs().max()))
        assert (compat_lp - expected).abs().max() <= bound, (label, float((compat_lp - expected).abs().max()), bound)


@pytest.mark.parametrize("oracle", ["gemma-3-270m"], indirect=True)  # the only one with per-slot attention types
def test_gemma_swap_needs_the_slot_types_permuted(oracle: Oracle) -> None:
    """Guards the oracle itself: a reorder that ignores layer_types gives other logits."""
    order = [*range(4), 5, 4, *range(6, 18)]
    decoder = oracle.hf.model
    layers = decoder.layers
    decoder.layers = nn.ModuleList([layers[i] for i in order])
    try:
        with torch.inference_mode():
            naive = log_probs(oracle.hf(oracle.tokens).logits)
    finally:
        decoder.layers = layers
    assert (naive - oracle.hf_log_probs(order)).abs().max() > 1e-3


@pytest.mark.parametrize("mode", ["raw", "compat"])
def test_sweep_baseline_path_equals_the_full_forward(oracle: Oracle, request: pytest.FixtureRequest, mode: str) -> None:
    model = oracle.raw if mode == "raw" else compat_model(request, oracle.name)
    n_layers = N_LAYERS[oracle.name]
    assert model.cfg.n_layers == n_layers
    with torch.inference_mode():
        logits = model(oracle.tokens)
        final, resid_pres = final_residual(model, oracle.tokens, cache_resid_pre=True)
        assert len(resid_pres) == n_layers
        assert (unembed(model, final) - logits).abs().max() <= 1e-4
        # the sweep's shortcut for a deletion: start at the deleted slot from the cached residual
        layer = n_layers // 2
        order = [i for i in range(n_layers) if i != layer]
        short, _ = final_residual(model, oracle.tokens, order=order, start=layer, start_residual=resid_pres[layer])
        with delete_layers(model, [layer]):
            deleted = model(oracle.tokens)
        assert (unembed(model, short) - deleted).abs().max() <= 1e-4
        assert (deleted - logits).abs().max() > 1e-2
