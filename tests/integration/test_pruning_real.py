"""The pruning planner and its export on the embedded real models, at a small budget.

* The exported SmolLM2 folder, loaded by plain ``transformers``, equals the toolkit's
  deletion of the same layers on a raw-weights bridge: the same dequantized float32
  weights through the same modules; only the attention kernel may differ (PyTorch SDPA
  after loading, eager in the bridge), a float32 rounding difference. Logits (tens of
  units in size) must agree to ``1e-3``; deleting the layers moves them by over 100 times that.
* The planner runs on both models (2 selection + 2 held-out windows of 32 tokens, one
  budget: kept small, as every candidate is unembedded over the whole vocabulary); its
  step is the single deletion of least KL as the plain sweep of named deletions measures it.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from stages_of_inference.corpus import load_corpus
from stages_of_inference.interventions import Intervention, delete_layers
from stages_of_inference.models import load_hf_model, load_model
from stages_of_inference.pruning import export_hf, prune_plan, split_held_out
from stages_of_inference.pruning.plan import METHODS
from stages_of_inference.sweep import robustness_sweep

pytestmark = pytest.mark.integration

N_WINDOWS, SEQ_LEN = 2, 32
LOGIT_TOLERANCE = 1e-3
DELETED = [3, 17, 18]


def test_the_exported_smollm2_loads_in_plain_transformers_and_equals_the_deletion(tmp_path: Path) -> None:
    hf_model, tokenizer, _ = load_hf_model("smollm2-135m")
    folder = export_hf(DELETED, tmp_path / "pruned", hf_model, tokenizer)
    del hf_model
    gc.collect()
    loaded = AutoModelForCausalLM.from_pretrained(folder).eval()
    bridge = load_model("smollm2-135m", compatibility_mode=False)
    tokens = load_corpus("embedded", bridge, n_tokens=2 * SEQ_LEN, seq_len=SEQ_LEN)
    with torch.inference_mode():
        got = loaded(tokens).logits
        with delete_layers(bridge, DELETED):
            expected = bridge(tokens)
        full = bridge(tokens)
    assert loaded.config.num_hidden_layers == 27
    torch.testing.assert_close(got, expected, rtol=0, atol=LOGIT_TOLERANCE)
    assert (got - full).abs().max() > 100 * LOGIT_TOLERANCE  # the layers are really gone


def test_the_planner_runs_on_each_real_model(real_model) -> None:
    tokens = load_corpus("embedded", real_model, n_tokens=2 * N_WINDOWS * SEQ_LEN, seq_len=SEQ_LEN)
    plan = prune_plan(real_model, tokens, 1, batch_size=N_WINDOWS, n_bootstrap=200, progress=False)
    selection, _ = split_held_out(tokens, 0.5)
    singles = robustness_sweep(
        real_model,
        selection,
        [Intervention("delete", layer) for layer in range(plan.n_layers)],
        batch_size=N_WINDOWS,
        n_bootstrap=0,
        progress=False,
    )
    first = json.loads(plan.steps.deleted_layers.iloc[0])
    assert first == [int(singles.sort_values("kl", kind="stable").layer.iloc[0])]
    assert plan.steps.selection_kl.iloc[0] == pytest.approx(singles.kl.min(), rel=1e-5)
    assert sorted(plan.comparison.method.unique()) == sorted(METHODS)
    for metric in ("kl", "relative_accuracy", "loss"):
        values = plan.comparison[[f"{metric}_ci_low", metric, f"{metric}_ci_high"]].to_numpy()
        assert (
            np.isfinite(values).all() and (values[:, 0] <= values[:, 1]).all() and (values[:, 1] <= values[:, 2]).all()
        )
