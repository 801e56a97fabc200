"""Oracle tests of layer interventions on the real models against plain Hugging Face.

The oracle is an independently loaded raw HF model whose decoder layer list is edited
by hand (layers removed or reordered in ``model.model.layers``, ``config.num_hidden_layers``
set; on Gemma 3 ``config.layer_types`` set to slot types written out by hand for each
case, never computed by the code under test; Qwen2 lists full attention in every slot). Our interventions run on a bridge.

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

On a tiny Gemma 3, a second oracle checks the attention mask every moved block
receives against masks built from their definition, and the logits against an HF
Gemma built independently with the hand-written slot types and the layers' weights
copied into their new slots.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM

from stages_of_inference.corpus import load_corpus
from stages_of_inference.interventions import delete_layers, final_residual, layer_order, swap_layers
from stages_of_inference.models import bridge_from_hf, load_hf_model, load_model
from stages_of_inference.scoring.decode import unembed
from tests.conftest import EMBEDDED
from tests.tiny_models import tiny_config, tiny_hf_model

pytestmark = pytest.mark.oracle

SEQ_LEN = 48
COMPAT_ROUNDING_FACTOR = 4.0
"""Compatibility mode's float32 error over HF's own: twice the rounding steps, times 2 for safety."""
SESSION_FIXTURE = {"smollm2-135m": "smollm2", "gemma-3-270m": "gemma3", "qwen2.5-coder-0.5b": "qwen05"}
N_LAYERS = {"smollm2-135m": 30, "gemma-3-270m": 18, "qwen2.5-coder-0.5b": 24}

# Gemma 3 270M's slot types, written out by hand: "s" sliding, "g" global (layers 5, 11, 17).
GEMMA_TYPES = "sssssgsssssgsssssg"
# Qwen2's config lists a type per slot too: full attention everywhere (it slides in no layer).
SLOT_TYPES = {"smollm2-135m": None, "gemma-3-270m": GEMMA_TYPES, "qwen2.5-coder-0.5b": "g" * 24}
# (description, our context factory, the HF execution order, Gemma's slot types for it by hand)
CASES = {
    "smollm2-135m": [
        ("delete 0", lambda m: delete_layers(m, [0]), [i for i in range(30) if i != 0], None),
        ("delete 15", lambda m: delete_layers(m, [15]), [i for i in range(30) if i != 15], None),
        ("delete 29", lambda m: delete_layers(m, [29]), list(range(29)), None),
        ("swap 10-11", lambda m: swap_layers(m, 10, 11), [*range(10), 11, 10, *range(12, 30)], None),
    ],
    "gemma-3-270m": [
        ("delete 0", lambda m: delete_layers(m, [0]), [i for i in range(18) if i != 0], "ssssgsssssgsssssg"),
        ("delete 9", lambda m: delete_layers(m, [9]), [i for i in range(18) if i != 9], "sssssgssssgsssssg"),
        ("delete 17", lambda m: delete_layers(m, [17]), list(range(17)), "sssssgsssssgsssss"),
        ("swap 4-5", lambda m: swap_layers(m, 4, 5), [*range(4), 5, 4, *range(6, 18)], "ssssgssssssgsssssg"),
        # a deletion by execution order across the global layer 5: slot types must shift
        (
            "order without 5",
            lambda m: layer_order(m, [i for i in range(18) if i != 5]),
            [i for i in range(18) if i != 5],
            "ssssssssssgsssssg",
        ),
    ],
    "qwen2.5-coder-0.5b": [
        ("delete 0", lambda m: delete_layers(m, [0]), list(range(1, 24)), "g" * 23),
        ("delete 12", lambda m: delete_layers(m, [12]), [i for i in range(24) if i != 12], "g" * 23),
        ("delete 23", lambda m: delete_layers(m, [23]), list(range(23)), "g" * 23),
        ("swap 10-11", lambda m: swap_layers(m, 10, 11), [*range(10), 11, 10, *range(12, 24)], "g" * 24),
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
        self.tokens = load_corpus("python-docs", tokenizer, n_tokens=2 * SEQ_LEN, seq_len=SEQ_LEN)
        assert self.tokens.shape == (2, SEQ_LEN)
        with torch.inference_mode():
            self.hf_base = log_probs(self.hf(self.tokens).logits)
            self.raw_base = log_probs(self.raw(self.tokens))

    def hf_log_probs(self, order: list[int], slot_types: str | None) -> torch.Tensor:
        with hf_layer_order(self.hf, order, slot_types), torch.inference_mode():
            return log_probs(self.hf(self.tokens).logits)

    def hf_float32_error(self, order: list[int], slot_types: str | None) -> float:
        """HF's own float32 rounding on this edited network: max |float32 - float64| log-prob.

        The weights go to float64 and back, which is exact, so the model is unchanged after.
        """
        float32 = self.hf_log_probs(order, slot_types)
        self.hf.double()
        try:
            float64 = self.hf_log_probs(order, slot_types)
        finally:
            self.hf.float()
        return float((float32.double() - float64).abs().max())


def log_probs(logits: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits if logits.dtype == torch.float64 else logits.float(), dim=-1)


def product_error_bound(residual: torch.Tensor, w_u: torch.Tensor) -> float:
    """Twice the float32 rounding bound of ``residual @ w_u`` (two summation orders compared), per logit."""
    eps32 = float(torch.finfo(torch.float32).eps)
    terms = residual.abs().double().reshape(-1, residual.shape[-1]) @ w_u.abs().double()
    return 2 * residual.shape[-1] * eps32 * float(terms.max())


def compat_bound(oracle: Oracle, order: list[int], slot_types: str | None) -> float:
    """The largest float32 rounding difference allowed between compatibility mode and HF (module docstring)."""
    return (1 + COMPAT_ROUNDING_FACTOR) * oracle.hf_float32_error(order, slot_types)


SLOT_TYPE = {"s": "sliding_attention", "g": "full_attention"}


@contextmanager
def hf_layer_order(hf_model: nn.Module, order: list[int], slot_types: str | None) -> Iterator[None]:
    """Run a plain HF decoder's layers in ``order``, edited by hand, with the slot types given
    (``"s"``/``"g"`` per slot; ``None`` for models without per-slot types)."""
    decoder = hf_model.model
    layers = decoder.layers
    configs = {id(c): c for c in (hf_model.config, decoder.config)}.values()
    saved = [(c, c.num_hidden_layers, getattr(c, "layer_types", None)) for c in configs]
    assert all((types is None) == (slot_types is None) for _, _, types in saved)
    assert slot_types is None or len(slot_types) == len(order)
    decoder.layers = nn.ModuleList([layers[i] for i in order])
    for config, _, _ in saved:
        config.num_hidden_layers = len(order)
        if slot_types is not None:
            config.layer_types = [SLOT_TYPE[kind] for kind in slot_types]
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


@pytest.fixture(scope="module", params=EMBEDDED)
def oracle(request: pytest.FixtureRequest) -> Iterator[Oracle]:
    """Loaded once per model and module, freed before the next model loads."""
    built = Oracle(str(request.param))
    yield built
    del built
    gc.collect()


def compat_model(request: pytest.FixtureRequest, name: str):
    return request.getfixturevalue(SESSION_FIXTURE[name])


def test_plain_forwards_agree(oracle: Oracle, request: pytest.FixtureRequest) -> None:
    """The control: no intervention, the bridges equal HF (whose slot types are the hand-written ones)."""
    types = getattr(oracle.hf.config, "layer_types", None)
    slot_types = SLOT_TYPES[oracle.name]
    assert types == (None if slot_types is None else [SLOT_TYPE[kind] for kind in slot_types])
    with torch.inference_mode():
        compat = log_probs(compat_model(request, oracle.name)(oracle.tokens))
    assert torch.equal(oracle.raw_base, oracle.hf_base)
    unchanged = list(range(N_LAYERS[oracle.name]))
    assert (compat - oracle.hf_base).abs().max() <= compat_bound(oracle, unchanged, slot_types)


def test_interventions_equal_hand_edited_hf(oracle: Oracle, request: pytest.FixtureRequest) -> None:
    """Every case of the model in turn (one test, so each model is loaded once)."""
    compat = compat_model(request, oracle.name)
    for label, context, order, slot_types in CASES[oracle.name]:
        expected = oracle.hf_log_probs(order, slot_types)
        bound = compat_bound(oracle, order, slot_types)
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
    assert (naive - oracle.hf_log_probs(order, "ssssgssssssgsssssg")).abs().max() > 1e-3


@pytest.mark.parametrize("mode", ["raw", "compat"])
def test_sweep_baseline_path_equals_the_full_forward(oracle: Oracle, request: pytest.FixtureRequest, mode: str) -> None:
    model = oracle.raw if mode == "raw" else compat_model(request, oracle.name)
    n_layers = N_LAYERS[oracle.name]
    assert model.cfg.n_layers == n_layers
    with torch.inference_mode():
        logits = model(oracle.tokens)
        final, resid_pres = final_residual(model, oracle.tokens, cache_resid_pre=True)
        assert len(resid_pres) == n_layers
        # the sweep's unembedding (vocabulary tiles of the transposed product) against the head:
        # the same float32 products summed in another order, so each logit differs by at most
        # d_model * eps32 * sum_i |h_i W_ij| (the standard bound for a float32 dot product)
        bound = product_error_bound(final, model.W_U)
        assert (unembed(model, final) - logits).abs().max() <= bound
        # the sweep's shortcut for a deletion: start at the deleted slot from the cached residual
        layer = n_layers // 2
        order = [i for i in range(n_layers) if i != layer]
        short, _ = final_residual(model, oracle.tokens, order=order, start=layer, start_residual=resid_pres[layer])
        with delete_layers(model, [layer]):
            deleted = model(oracle.tokens)
        assert (unembed(model, short) - deleted).abs().max() <= product_error_bound(short, model.W_U)
        assert (deleted - logits).abs().max() > 1e-2


# ---------------------------------------------------------------- Gemma 3 slot types, tiny model

# The tiny Gemma 3 of tests/tiny_models.py: layers 0 and 2 slide (window 4), 1 and 3 are global.
TINY_GEMMA_TYPES = ["sliding_attention", "full_attention", "sliding_attention", "full_attention"]
TINY_WINDOW = 4
S, F = "sliding_attention", "full_attention"
# (our context, the order, the slot types an HF model running that order must have, by hand)
TINY_GEMMA_CASES = {
    "swap 0-1": (lambda m: swap_layers(m, 0, 1), [1, 0, 2, 3], [F, S, S, F]),
    "swap 1-3": (lambda m: swap_layers(m, 1, 3), [0, 3, 2, 1], [S, F, S, F]),
    "reversed": (lambda m: layer_order(m, [3, 2, 1, 0]), [3, 2, 1, 0], [F, S, F, S]),
    "without 1": (lambda m: layer_order(m, [0, 2, 3]), [0, 2, 3], [S, S, F]),
    "repeats": (lambda m: layer_order(m, [3, 0, 0, 2, 1]), [3, 0, 0, 2, 1], [F, S, S, S, F]),
}


def allowed_keys(kind: str, n: int) -> torch.Tensor:
    """Which keys each query may attend to, built from the definition: causal, and for a sliding
    layer within the last ``TINY_WINDOW`` positions."""
    query, key = torch.arange(n)[:, None], torch.arange(n)[None, :]
    causal = key <= query
    return causal & (query - key < TINY_WINDOW) if kind == S else causal


def independent_gemma(tokenizer_size: int, order: list[int], slot_types: list[str]) -> nn.Module:
    """A fresh HF Gemma 3 built with ``len(order)`` layers and the given slot types, slot k
    holding the weights of original layer ``order[k]`` (copied by name, no library code)."""
    original = tiny_hf_model("gemma3", vocab_size=tokenizer_size).state_dict()
    config = tiny_config("gemma3", tokenizer_size)
    config.num_hidden_layers = len(order)
    config.layer_types = list(slot_types)
    config.architectures = ["Gemma3ForCausalLM"]
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()
    weights = {}
    for name in model.state_dict():
        if name.startswith("model.layers."):
            slot, _, rest = name.removeprefix("model.layers.").partition(".")
            weights[name] = original[f"model.layers.{order[int(slot)]}.{rest}"]
        else:
            weights[name] = original[name]
    model.load_state_dict(weights)
    return model


def masks_received(model, tokens: torch.Tensor) -> dict[int, list[torch.Tensor]]:
    """The attention mask each original layer's block receives, in the order the blocks run."""
    received: dict[int, list[torch.Tensor]] = {}
    handles = []
    for layer, block in enumerate(model.blocks):

        def capture(module, args, kwargs, layer=layer):
            received.setdefault(layer, []).append(kwargs["attention_mask"])

        handles.append(block.register_forward_pre_hook(capture, with_kwargs=True))
    try:
        with torch.inference_mode():
            logits = model(tokens)
    finally:
        for handle in handles:
            handle.remove()
    return received, logits


@pytest.fixture(scope="module")
def tiny_gemma(tiny_tokenizer):
    return bridge_from_hf(
        tiny_hf_model("gemma3", vocab_size=len(tiny_tokenizer)), tiny_tokenizer, compatibility_mode=False
    )


def test_tiny_gemma_slot_types_are_the_hand_written_ones(tiny_gemma) -> None:
    assert list(tiny_gemma.original_model.config.layer_types) == TINY_GEMMA_TYPES
    assert tiny_gemma.original_model.config.sliding_window == TINY_WINDOW


@pytest.mark.parametrize("case", list(TINY_GEMMA_CASES))
def test_gemma_moved_layers_keep_their_attention_type(tiny_gemma, tiny_tokenizer, tiny_tokens, case) -> None:
    """Every block gets its own layer's mask wherever it runs, and the logits equal an HF Gemma
    built independently with the slot types written out by hand."""
    context, order, slot_types = TINY_GEMMA_CASES[case]
    tokens = tiny_tokens[:2]
    assert tokens.shape[1] > TINY_WINDOW + 1  # sliding and global masks differ
    with context(tiny_gemma):
        received, logits = masks_received(tiny_gemma, tokens)
    assert sorted(received) == sorted(set(order))
    for layer, masks in received.items():
        assert len(masks) == order.count(layer)
        for mask in masks:
            allowed = mask == 0 if mask.dtype != torch.bool else mask
            expected = allowed_keys(TINY_GEMMA_TYPES[layer], tokens.shape[1])
            assert torch.equal(allowed[0, 0].cpu(), expected), f"layer {layer} got the other attention type"
    # what a reorder that leaves the slot types alone would run: the original pattern by slot
    naive_types = [TINY_GEMMA_TYPES[slot % len(TINY_GEMMA_TYPES)] for slot in range(len(order))]
    with torch.inference_mode():
        expected_logits = independent_gemma(len(tiny_tokenizer), order, slot_types)(tokens).logits
        naive_logits = independent_gemma(len(tiny_tokenizer), order, naive_types)(tokens).logits
    assert torch.equal(log_probs(logits), log_probs(expected_logits))  # the same HF modules, in the same order
    if slot_types != naive_types:  # the slot types matter here: the comparison can fail
        assert (log_probs(naive_logits) - log_probs(expected_logits)).abs().max() > 1e-4
