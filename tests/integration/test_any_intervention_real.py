"""Every kind of intervention on the real SmolLM2, Gemma 3 and Qwen2.5, through the sweep, against HF layer surgery by hand.

For each model a case of each kind of every family (checked below): HF log-probabilities come from a separately
loaded raw HF model with ``model.model.layers`` rebuilt by hand (Gemma 3's slot types
written out by hand) or its layer's ``self_attn`` / ``mlp`` output zeroed by a forward
hook. The sweep runs on a raw-weights bridge; its KL and top-1 agreement must equal
those computed from the HF log-probabilities over the scored positions.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from stages_of_inference.interventions import Intervention, intervention_family
from stages_of_inference.interventions.families import FAMILIES
from stages_of_inference.sweep import robustness_sweep
from tests.conftest import EMBEDDED
from tests.oracle.test_any_intervention_hf_oracle import hf_zeroed
from tests.oracle.test_interventions_hf_oracle import GEMMA_TYPES, Oracle

pytestmark = pytest.mark.integration

# (intervention, the HF execution order by hand, Gemma's slot types by hand, HF module to zero)
CASES = {
    "smollm2-135m": [
        (Intervention("delete", 3), [0, 1, 2, *range(4, 30)], None, None),
        (Intervention("swap", 17), [*range(17), 18, 17, *range(19, 30)], None, None),
        (Intervention("delete_block", 10, 12), [*range(10), *range(13, 30)], None, None),
        (Intervention("swap", 5, 20), [*range(5), 20, *range(6, 20), 5, *range(21, 30)], None, None),
        (Intervention("repeat", 14, 15), [*range(16), 14, 15, *range(16, 30)], None, None),
        (Intervention("delete_attn", 7), list(range(30)), None, (7, "self_attn")),
        (Intervention("delete_mlp", 20), list(range(30)), None, (20, "mlp")),
        (
            Intervention.of_order([*range(10), 12, 11, 10, *range(13, 30)]),
            [*range(10), 12, 11, 10, *range(13, 30)],
            None,
            None,
        ),
    ],
    "gemma-3-270m": [
        (Intervention("delete", 5), [*range(5), *range(6, 18)], "ssssssssssgsssssg", None),
        (Intervention("swap", 11), [*range(11), 12, 11, *range(13, 18)], "sssssgssssssgssssg", None),
        (Intervention("delete_block", 4, 6), [0, 1, 2, 3, *range(7, 18)], "ssssssssgsssssg", None),
        (Intervention("swap", 2, 11), [0, 1, 11, *range(3, 11), 2, *range(12, 18)], "ssgssgsssssssssssg", None),
        (Intervention("repeat", 5), [*range(6), 5, *range(6, 18)], "sssssggsssssgsssssg", None),
        (Intervention("delete_attn", 5), list(range(18)), GEMMA_TYPES, (5, "self_attn")),
        (Intervention("delete_mlp", 11), list(range(18)), GEMMA_TYPES, (11, "mlp")),
        (Intervention.of_order([*range(6), 17]), [*range(6), 17], "sssssgg", None),
    ],
    "qwen2.5-coder-0.5b": [  # full attention in every slot
        (Intervention("delete", 20), [*range(20), *range(21, 24)], "g" * 23, None),
        (Intervention("swap", 9), [*range(9), 10, 9, *range(11, 24)], "g" * 24, None),
        (Intervention("delete_block", 8, 10), [*range(8), *range(11, 24)], "g" * 21, None),
        (Intervention("swap", 3, 17), [0, 1, 2, 17, *range(4, 17), 3, *range(18, 24)], "g" * 24, None),
        (Intervention("repeat", 12), [*range(13), 12, *range(13, 24)], "g" * 25, None),
        (Intervention("delete_attn", 6), list(range(24)), "g" * 24, (6, "self_attn")),
        (Intervention("delete_mlp", 18), list(range(24)), "g" * 24, (18, "mlp")),
        (Intervention.of_order([*range(8), 23]), [*range(8), 23], "g" * 9, None),
    ],
}


@pytest.fixture(scope="module", params=EMBEDDED)
def oracle(request: pytest.FixtureRequest) -> Iterator[Oracle]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    built = Oracle(str(request.param))
    yield built
    del built
    gc.collect()
    torch.set_num_threads(threads)


@pytest.mark.parametrize("model", list(CASES))
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_is_covered_on_every_model(model: str, family: str) -> None:
    covered = {(case[0].kind, case[0].kind == "swap" and case[0].other == case[0].layer + 1) for case in CASES[model]}
    needed = {(i.kind, i.kind == "swap" and i.other == i.layer + 1) for i in intervention_family(family, 18)}
    assert needed <= covered, f"add a case of each kind of {family!r} for {model}"


def test_every_kind_in_the_sweep_equals_hf_surgery(oracle: Oracle) -> None:
    cases = CASES[oracle.name]
    interventions = [case[0] for case in cases]
    table = robustness_sweep(oracle.raw, oracle.tokens, interventions, n_bootstrap=0, progress=False)
    assert table.label.tolist() == [i.label for i in interventions]
    base = oracle.hf_base[:, 1:-1].double()  # the scored positions: 1 .. seq_len - 2
    for (intervention, order, slot_types, target), row in zip(cases, table.itertuples(), strict=True):
        assert slot_types is None or len(slot_types) == len(order)
        with hf_zeroed(oracle.hf, target):
            hf = oracle.hf_log_probs(order, slot_types)[:, 1:-1].double()
        kl = float((base.exp() * (base - hf)).sum(-1).mean())
        agreement = float((base.argmax(-1) == hf.argmax(-1)).double().mean())
        assert kl > 1e-3, intervention.label  # the intervention matters
        np.testing.assert_allclose(row.kl, kl, rtol=1e-3, atol=1e-5, err_msg=intervention.label)
        assert abs(row.top1_agreement - agreement) <= 1 / base[..., 0].numel(), intervention.label
