"""Reduced precision and device placement: every analysis in bfloat16 on tiny models, and where tensors are made.

A bfloat16 bridge is the float32 one, processed in float32 and then cast
(:func:`stages_of_inference.models.bridge.boot`). Each analysis and the sweep must run
on it, give finite numbers, and stay close to float32: bfloat16 keeps 8 bits of
mantissa (a relative rounding of 2^-9 per value), so after a few layers of rounded
products continuous results agree to about 1% (the bound below, 2%, is loose on
purpose), while a metric that counts argmaxes (top-1 agreement, accuracy, the true
token's rank) moves by whole tokens wherever two logits nearly tie, as they do often in
a random tiny model: those get a bound in tokens instead.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.overrides import TorchFunctionMode
from transformers import PreTrainedTokenizerFast

import stages_of_inference as soi
from stages_of_inference.experiments import ExperimentConfig, run_experiments
from stages_of_inference.experiments.norms import EXPERIMENT as NORMS
from stages_of_inference.models import bridge_from_hf
from stages_of_inference.runs.atomic import read_json
from tests.tiny_models import tiny_hf_model

pytestmark = pytest.mark.usefixtures("single_thread")

RELATIVE_BOUND = 0.02
"""Continuous results: ``|bf16 - f32| <= RELATIVE_BOUND * |f32| + ABSOLUTE_BOUND``."""
ABSOLUTE_BOUND = 0.01
COUNTED_BOUND = 0.1
"""Fractions of tokens (top-1 agreement, accuracy): at most 10% of the scored tokens flip."""
RANK_BOUND = 2.0
"""Mean rank of the true token among 500: at most 2 places."""
COUNTED = {"top1_agreement", "accuracy", "baseline_accuracy", "agreement_with_final"}
RATIOS = {"relative_accuracy"}
"""Accuracy over baseline accuracy: both are checked; their ratio of small counts is not bounded."""


Analysis = Callable[[soi.LoadedModel, torch.Tensor], pd.DataFrame]
ANALYSES: dict[str, Analysis] = {
    "sweep": lambda model, tokens: soi.robustness_sweep(model, tokens, progress=False, n_bootstrap=0),
    "logit_lens": lambda model, tokens: soi.logit_lens(model, tokens, progress=False),
    "attention": lambda model, tokens: soi.previous_token_attention(model, tokens, k=2),
    "cka": lambda model, tokens: soi.cka_matrix(model, tokens, batch_size=3),
    "neurons": lambda model, tokens: soi.neuron_vocab_moments(model),
    "norms": lambda model, tokens: soi.component_norms(model, tokens),
    "subjoiner": lambda model, tokens: soi.subjoiner_heads(model, n_prompts=5, context_words=4, batch_size=2)[0],
}


def both_dtypes(architecture: str, tokenizer: PreTrainedTokenizerFast) -> dict[str, soi.LoadedModel]:
    """The same tiny model (compatibility mode) in float32 and in bfloat16."""
    return {
        dtype: bridge_from_hf(tiny_hf_model(architecture, vocab_size=len(tokenizer)), tokenizer, dtype=dtype)
        for dtype in ("float32", "bfloat16")
    }


def assert_close_tables(reference: pd.DataFrame, reduced: pd.DataFrame, what: str) -> None:
    """Same shape and integer columns; finite where float32 is; floats within the bounds of this module."""
    assert reference.shape == reduced.shape, what
    floats = reference.select_dtypes("floating").columns
    for column in reference.columns.difference(floats):
        assert reference[column].equals(reduced[column]), f"{what}: {column}"
    for column in floats:
        if column in RATIOS or str(column).endswith(("_ci_low", "_ci_high")):
            continue
        expected, actual = reference[column].to_numpy(), reduced[column].to_numpy()
        assert np.array_equal(np.isfinite(expected), np.isfinite(actual)), f"{what}: {column} finiteness"
        finite = np.isfinite(expected)
        error = np.abs(actual[finite] - expected[finite])
        if column in COUNTED:
            bound = np.full_like(error, COUNTED_BOUND)
        elif column == "true_token_rank":
            bound = np.full_like(error, RANK_BOUND)
        else:
            bound = RELATIVE_BOUND * np.abs(expected[finite]) + ABSOLUTE_BOUND
        assert (error <= bound).all(), f"{what}: {column} differs by up to {error.max():.3g}"


@pytest.mark.parametrize("analysis", list(ANALYSES))
def test_every_analysis_runs_in_bfloat16_close_to_float32(
    analysis: str, architecture: str, tiny_tokenizer: PreTrainedTokenizerFast, tiny_tokens: torch.Tensor
) -> None:
    models = both_dtypes(architecture, tiny_tokenizer)
    assert next(models["bfloat16"].parameters()).dtype == torch.bfloat16
    tables = {dtype: ANALYSES[analysis](model, tiny_tokens) for dtype, model in models.items()}
    if analysis == "subjoiner":  # ranked by score: near-equal heads may trade places
        tables = {dtype: table.sort_values(["layer", "head"], ignore_index=True) for dtype, table in tables.items()}
    assert_close_tables(tables["float32"], tables["bfloat16"], f"{analysis} on {architecture}")


def test_bfloat16_weights_are_the_float32_processed_weights_rounded_once(
    tiny_tokenizer: PreTrainedTokenizerFast,
) -> None:
    """Processing happens in float32, then one cast: no weight was folded in reduced precision."""
    models = both_dtypes("gemma3", tiny_tokenizer)
    reference = dict(models["float32"].named_parameters())
    for name, parameter in models["bfloat16"].named_parameters():
        assert torch.equal(parameter, reference[name].to(torch.bfloat16)), name
    buffers = dict(models["bfloat16"].named_buffers())
    frequencies = [name for name in buffers if name.endswith("inv_freq")]
    assert frequencies and all(buffers[name].dtype == torch.float32 for name in frequencies)
    assert models["bfloat16"].soi_source.dtype == "bfloat16"
    assert models["bfloat16"].cfg.dtype == torch.bfloat16


def test_float16_runs_on_the_cpu(tiny_tokenizer: PreTrainedTokenizerFast, tiny_tokens: torch.Tensor) -> None:
    model = bridge_from_hf(tiny_hf_model("llama", vocab_size=len(tiny_tokenizer)), tiny_tokenizer, dtype="float16")
    chosen = [soi.Intervention("delete", 1), soi.Intervention("swap", 2)]
    table = soi.robustness_sweep(model, tiny_tokens, chosen, progress=False, n_bootstrap=0)
    assert np.isfinite(table[["kl", "loss", "entropy_bits"]].to_numpy()).all()


FACTORIES = (
    torch.zeros,
    torch.ones,
    torch.empty,
    torch.full,
    torch.arange,
    torch.tensor,
    torch.as_tensor,
    torch.eye,
    torch.linspace,
    torch.randn,
    torch.rand,
)
"""Functions that make a tensor from nothing: on the CPU unless told ``device=``."""

HOST_SIDE = {
    ("logit_lens", "_prompt_tokens"): "token ids of a prompt; cached_batches moves them",
    ("subjoiner", "_right_padded"): "token ids of the prompts; cached_batches moves them",
    ("subjoiner", "_prompt_tokens"): "token ids of a prompt; cached_batches moves them",
    ("neurons", "token_class_mask"): "a mask from the tokenizer's texts; moved to W_U's device before use",
    ("neurons", "_id_mask"): "a mask from token ids; moved to W_U's device before use",
    ("logit_lens", "logit_lens"): "the table's float64 sums, on the host; each batch's sums are moved there",
    ("logit_lens", "logit_lens_top_tokens"): "row indices into the top tokens, moved to the host before",
}
"""Package functions that make host tensors on purpose, and why that is right on any device."""


class FactoryAudit(TorchFunctionMode):
    """Record each tensor factory called directly from the package without a ``device``."""

    def __init__(self) -> None:
        super().__init__()
        self.deviceless: set[tuple[str, str]] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func in FACTORIES and "device" not in kwargs:
            caller = inspect.currentframe().f_back  # type: ignore[union-attr]
            path = Path(caller.f_code.co_filename)  # type: ignore[union-attr]
            if "stages_of_inference" in path.parts and not (
                func is torch.as_tensor and isinstance(args[0], torch.Tensor)
            ):
                self.deviceless.add((path.stem, caller.f_code.co_name))  # type: ignore[union-attr]
        return func(*args, **kwargs)


def test_tensors_are_made_on_the_model_device_or_on_purpose_on_the_host(
    tiny_tokenizer: PreTrainedTokenizerFast, tiny_tokens: torch.Tensor
) -> None:
    """No analysis, sweep or scoring step makes a tensor on the CPU by default, but for the listed host-side data.

    On a CPU-only machine a CPU tensor meeting model tensors cannot fail, so what is
    checked is how each tensor is made: any factory call without ``device=`` outside
    :data:`HOST_SIDE` would put a tensor on the CPU next to a model on a GPU.
    """
    model = bridge_from_hf(tiny_hf_model("gemma3", vocab_size=len(tiny_tokenizer)), tiny_tokenizer)
    audit = FactoryAudit()
    with audit:
        for analysis in ANALYSES.values():
            analysis(model, tiny_tokens)
        soi.logit_lens(model, tiny_tokens, progress=False, reuse_final_norm_scale=True)
        soi.logit_lens_top_tokens(model, "The cat sat", k=2)
        soi.class_neurons(model, [3, 4, 5])
        soi.class_neurons(model, lambda text: text.startswith(" "))
        soi.subjoiner_pattern(model, "The cat sat", layer=0, head=0)
    unexpected = audit.deviceless - set(HOST_SIDE)
    assert not unexpected, f"tensors made on the CPU by default in {sorted(unexpected)}"


def test_the_run_records_device_dtype_and_library_versions(tiny_folder: Path, tmp_path: Path) -> None:
    config = ExperimentConfig(model=str(tiny_folder), tokens=96, seq_len=32, out=tmp_path, dtype="bfloat16")
    run_experiments([NORMS], config)
    (folder,) = tmp_path.iterdir()
    manifest = read_json(folder / "manifest.json")
    assert (manifest["config"]["device"], manifest["config"]["dtype"]) == ("cpu", "bfloat16")
    assert (manifest["run"]["model"]["device"], manifest["run"]["model"]["dtype"]) == ("cpu", "bfloat16")
    assert {"torch", "transformers", "transformer-lens"} <= set(manifest["libraries"])
    norms = pd.read_parquet(folder / "norms.parquet")
    assert all(math.isfinite(value) for value in norms.resid_post_norm)
