"""Oracle tests of every kind of intervention, through the sweep's engine, against HF layer surgery by hand.

The oracle is a separately built raw HF model (tiny Llama, Gemma 3, Qwen2) whose
``model.model.layers`` is rebuilt by hand for each order (block deletion, far swap,
repeats, explicit orders), with ``config.layer_types`` written out by hand for Gemma 3
(Qwen2 lists full attention in every slot);
a component deletion zeroes the output of the HF layer's ``self_attn`` or ``mlp`` by a
forward hook on that module. Our side runs the intervention the way the sweep does
(from the cached residual at :func:`start_slot`, with the intervention's hooks) and as
a plain forward under :func:`intervene`; both must agree with HF to 1e-5 in
log-probability.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from torch import nn

from stages_of_inference.corpus import load_corpus
from stages_of_inference.interventions import (
    Intervention,
    final_residual,
    intervene,
    intervened_residual,
    intervention_family,
)
from stages_of_inference.interventions.families import FAMILIES
from stages_of_inference.models import bridge_from_hf
from stages_of_inference.scoring.decode import unembed
from tests.oracle.test_interventions_hf_oracle import hf_layer_order, log_probs
from tests.tiny_models import tiny_hf_model

pytestmark = [pytest.mark.oracle, pytest.mark.usefixtures("single_thread")]

# The tiny Gemma 3 of tests/tiny_models.py: layers 0 and 2 slide ("s"), 1 and 3 are global ("g").
# (intervention, the HF execution order by hand, Gemma's slot types for it by hand, HF module to zero)
CASES = {
    "delete 1": (Intervention("delete", 1), [0, 2, 3], "ssg", None),
    "swap 1-2": (Intervention("swap", 1), [0, 2, 1, 3], "ssgg", None),
    "block 1-2": (Intervention("delete_block", 1, 2), [0, 3], "sg", None),
    "block 2-3": (Intervention("delete_block", 2, 3), [0, 1], "sg", None),
    "far swap 0-3": (Intervention("swap", 0, 3), [3, 1, 2, 0], "ggss", None),
    "far swap 0-2": (Intervention("swap", 0, 2), [2, 1, 0, 3], "sgsg", None),
    "repeat 0": (Intervention("repeat", 0), [0, 0, 1, 2, 3], "ssgsg", None),
    "repeat 3": (Intervention("repeat", 3), [0, 1, 2, 3, 3], "sgsgg", None),
    "repeat 1-2 x2": (Intervention("repeat", 1, 2, 2), [0, 1, 2, 1, 2, 1, 2, 3], "sgsgsgsg", None),
    "order 1,3": (Intervention.of_order([1, 3]), [1, 3], "gg", None),
    "order 3,0,0,2": (Intervention.of_order([3, 0, 0, 2]), [3, 0, 0, 2], "gsss", None),
    "attention 1": (Intervention("delete_attn", 1), [0, 1, 2, 3], "sgsg", (1, "self_attn")),
    "attention 0": (Intervention("delete_attn", 0), [0, 1, 2, 3], "sgsg", (0, "self_attn")),
    "MLP 2": (Intervention("delete_mlp", 2), [0, 1, 2, 3], "sgsg", (2, "mlp")),
    "MLP 3": (Intervention("delete_mlp", 3), [0, 1, 2, 3], "sgsg", (3, "mlp")),
}
ARCHITECTURES = ("llama", "gemma3", "qwen2")


@contextmanager
def hf_zeroed(hf_model: nn.Module, target: tuple[int, str] | None) -> Iterator[None]:
    """Zero the output of ``model.model.layers[i].<module>`` (attention returns a tuple, output first)."""
    if target is None:
        yield
        return
    layer, name = target

    def zero(module, args, output):
        if isinstance(output, tuple):
            return (torch.zeros_like(output[0]), *output[1:])
        return torch.zeros_like(output)

    handle = getattr(hf_model.model.layers[layer], name).register_forward_hook(zero)
    try:
        yield
    finally:
        handle.remove()


class TinyOracle:
    """A raw-weights bridge and a separately built HF model with the same weights."""

    def __init__(self, architecture: str, tokenizer, tokens: torch.Tensor) -> None:
        self.architecture = architecture
        self.bridge = bridge_from_hf(
            tiny_hf_model(architecture, vocab_size=len(tokenizer)), tokenizer, compatibility_mode=False
        )
        self.hf = tiny_hf_model(architecture, vocab_size=len(tokenizer))
        self.hf.set_attn_implementation("eager")
        self.tokens = tokens
        with torch.inference_mode():
            self.hf_base = log_probs(self.hf(tokens, use_cache=False).logits)

    def hf_log_probs(self, order: list[int], slot_types: str, target: tuple[int, str] | None) -> torch.Tensor:
        # Gemma 3's slot types by hand; Qwen2's config lists its (all full) attention types; Llama's none
        types = {"gemma3": slot_types, "qwen2": "g" * len(order)}.get(self.architecture)
        with hf_layer_order(self.hf, order, types), hf_zeroed(self.hf, target), torch.inference_mode():
            return log_probs(self.hf(self.tokens, use_cache=False).logits)


@pytest.fixture(scope="module", params=ARCHITECTURES)
def oracle(request, tiny_tokenizer) -> TinyOracle:
    tokens = load_corpus("python-docs", tiny_tokenizer, n_tokens=48, seq_len=24, seed=1)
    return TinyOracle(str(request.param), tiny_tokenizer, tokens)


def test_the_oracle_starts_equal(oracle: TinyOracle) -> None:
    if oracle.architecture == "gemma3":
        assert list(oracle.hf.config.layer_types) == ["sliding_attention", "full_attention"] * 2
    with torch.inference_mode():
        ours = log_probs(oracle.bridge(oracle.tokens))
    assert torch.equal(ours, oracle.hf_base)  # raw weights: HF's own modules in HF's order


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_is_covered_by_these_cases(family: str) -> None:
    covered = {(case[0].kind, case[0].kind == "swap" and case[0].other == case[0].layer + 1) for case in CASES.values()}
    needed = {(i.kind, i.kind == "swap" and i.other == i.layer + 1) for i in intervention_family(family, 4)}
    assert needed <= covered, f"add a case of each kind of {family!r}"


@pytest.mark.parametrize("case", list(CASES))
def test_the_sweep_engine_equals_hf_surgery(oracle: TinyOracle, case: str) -> None:
    intervention, order, slot_types, target = CASES[case]
    assert len(slot_types) == len(order)
    expected = oracle.hf_log_probs(order, slot_types, target)
    assert (expected - oracle.hf_base).abs().max() > 1e-3, "the intervention must change the output"
    model, tokens = oracle.bridge, oracle.tokens
    with torch.inference_mode():
        _, resid_pres = final_residual(model, tokens, cache_resid_pre=True)
        final = intervened_residual(model, tokens, intervention, resid_pres)
        swept = log_probs(unembed(model, final))
        with intervene(model, intervention):
            full = log_probs(model(tokens))
        assert torch.equal(log_probs(model(tokens)), log_probs(oracle.bridge(tokens)))  # restored
    # raw weights run HF's own modules in the same order on the same float32 values: bit for bit
    assert torch.equal(swept, expected), (case, float((swept - expected).abs().max()))
    assert torch.equal(full, expected), (case, float((full - expected).abs().max()))


@pytest.mark.parametrize("oracle", ["gemma3"], indirect=True)  # the only one with per-slot attention types
def test_gemma_slot_types_matter_for_these_cases(oracle: TinyOracle) -> None:
    """Guards the oracle: for the reorders whose hand-written slot types differ from the original
    pattern, HF run with the original pattern gives other log-probabilities."""
    checked = 0
    for intervention, order, slot_types, target in CASES.values():
        naive = "".join("sg"[slot % 2] for slot in range(len(order)))
        if naive == slot_types or target is not None:
            continue
        gap = (oracle.hf_log_probs(order, naive, None) - oracle.hf_log_probs(order, slot_types, None)).abs().max()
        assert gap > 1e-4, intervention.label
        checked += 1
    assert checked >= 4
