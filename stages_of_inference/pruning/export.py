"""Export a pruning plan: a pruned Hugging Face folder, a mergekit passthrough config and ``plan.json``.

* :func:`export_hf` writes the original model without the deleted layers as a plain
  Hugging Face folder (config, safetensors, tokenizer) that
  ``transformers.AutoModelForCausalLM.from_pretrained`` loads with no code of ours. The
  weights are the float32 weights the toolkit measured (for GGUF-backed models, the
  dequantized GGUF), so its logits equal the toolkit's deletion of the same layers.
  Per-slot config lists (Gemma 3's ``layer_types``: sliding or global attention, and its
  RoPE base, are chosen by slot) keep each kept layer's own entry.
* :func:`mergekit_yaml` describes the same cut as a mergekit ``passthrough`` merge:
  one slice per run of kept layers, ``layer_range: [start, end]`` with ``end`` exclusive.
* :func:`plan_record` is ``plan.json``: ``deleted_layers`` and ``kept_layers`` in the
  original, 0-based numbering, the model's identity and the hashes of the windows.

Example:
    >>> kept_ranges([0, 1, 2, 5, 6, 9])
    [(0, 3), (5, 7), (9, 10)]
    >>> print(mergekit_yaml([3, 4, 7, 8], 10, "HuggingFaceTB/SmolLM2-135M-Instruct"), end="")
    # passthrough merge deleting layers [3, 4, 7, 8] (0-based, original numbering) of 10
    slices:
      - sources:
          - model: HuggingFaceTB/SmolLM2-135M-Instruct
            layer_range: [0, 3]
      - sources:
          - model: HuggingFaceTB/SmolLM2-135M-Instruct
            layer_range: [5, 7]
      - sources:
          - model: HuggingFaceTB/SmolLM2-135M-Instruct
            layer_range: [9, 10]
    merge_method: passthrough
    dtype: float32
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn
from transformers import AutoModelForCausalLM, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from stages_of_inference.errors import ConfigError
from stages_of_inference.interventions import deletion_order
from stages_of_inference.models import load_hf_model
from stages_of_inference.pruning.plan import HELD_OUT_METRICS, METHODS, OBJECTIVE, PrunePlan
from stages_of_inference.runs.atomic import atomic_directory, write_json, write_text

PER_LAYER_CONFIG = ("layer_types",)
"""Config entries holding one value per layer slot, cut like the layers."""

HF_FOLDER = "pruned_model"
MERGEKIT_FILE = "mergekit.yaml"
PLAN_FILE = "plan.json"


def pruned_hf_model(hf_model: PreTrainedModel, deleted_layers: Sequence[int]) -> PreTrainedModel:
    """A new HF model: ``hf_model`` without ``deleted_layers`` (0-based), its config cut to match.

    ``hf_model`` is left untouched. The new model is built from the edited config by
    ``AutoModelForCausalLM.from_config`` (so nothing of a GGUF load is carried over) and
    given the kept layers' weights, renumbered ``0 .. kept - 1``.

    Raises:
        ConfigError: A layer is not in the model, or every layer would be deleted.
    """
    n_layers = int(hf_model.config.num_hidden_layers)
    prefix = _decoder_layers_prefix(hf_model)
    deleted = sorted(set(deleted_layers))
    if not deleted or deleted[0] < 0 or deleted[-1] >= n_layers or len(deleted) >= n_layers:
        raise ConfigError(
            f"cannot delete layers {deleted} of a {n_layers}-layer model; name 1 to {n_layers - 1} layers in 0..{n_layers - 1}"
        )
    kept = deletion_order(n_layers, deleted)
    config = copy.deepcopy(hf_model.config)
    config.__dict__.pop("quantization_config", None)  # a GGUF load's; the weights saved here are plain float32
    config.num_hidden_layers = len(kept)
    for name in PER_LAYER_CONFIG:
        values = getattr(config, name, None)
        if values is not None:
            setattr(config, name, [values[layer] for layer in kept])
    config.use_cache = True  # for generation by its users; the toolkit's forwards turn it off themselves
    new_slot = {old: new for new, old in enumerate(kept)}
    state = {}
    for key, value in hf_model.state_dict().items():
        if key.startswith(prefix):
            layer, rest = key[len(prefix) :].split(".", 1)
            if int(layer) not in new_slot:
                continue
            key = f"{prefix}{new_slot[int(layer)]}.{rest}"
        state[key] = value
    pruned = AutoModelForCausalLM.from_config(config, dtype=next(hf_model.parameters()).dtype)
    pruned.load_state_dict(state)
    return pruned.eval()


def export_hf(
    deleted_layers: Sequence[int],
    folder: str | os.PathLike[str],
    hf_model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
) -> Path:
    """Write ``hf_model`` without ``deleted_layers`` and its tokenizer to ``folder`` (complete or not at all).

    Example:
        >>> hf_model, tokenizer, _ = load_hf_model("smollm2-135m")  # doctest: +SKIP
        >>> export_hf([20, 21], "pruned", hf_model, tokenizer)  # doctest: +SKIP
        >>> AutoModelForCausalLM.from_pretrained("pruned")  # doctest: +SKIP
    """
    target = Path(folder)
    pruned = pruned_hf_model(hf_model, deleted_layers)
    with atomic_directory(target) as partial:
        pruned.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
    return target


def kept_ranges(kept_layers: Sequence[int]) -> list[tuple[int, int]]:
    """Runs of consecutive layers as ``(start, end)`` with ``end`` exclusive, in order."""
    ranges: list[tuple[int, int]] = []
    for layer in kept_layers:
        if ranges and ranges[-1][1] == layer:
            ranges[-1] = (ranges[-1][0], layer + 1)
        else:
            ranges.append((layer, layer + 1))
    return ranges


def mergekit_yaml(deleted_layers: Sequence[int], n_layers: int, model: str) -> str:
    """A mergekit passthrough config keeping every layer of ``model`` but ``deleted_layers`` (0-based)."""
    deleted = sorted(set(deleted_layers))
    lines = [f"# passthrough merge deleting layers {deleted} (0-based, original numbering) of {n_layers}", "slices:"]
    for start, end in kept_ranges(deletion_order(n_layers, deleted)):
        lines += ["  - sources:", f"      - model: {json.dumps(model) if _needs_quotes(model) else model}"]
        lines.append(f"        layer_range: [{start}, {end}]")
    lines += ["merge_method: passthrough", "dtype: float32"]
    return "\n".join(lines) + "\n"


def plan_record(plan: PrunePlan, n_deleted: int | None = None) -> dict[str, Any]:
    """``plan.json``: what to cut (0-based, original numbering), from which model, and what it costs held out."""
    deleted = plan.deleted_layers(n_deleted)
    rows = plan.comparison[plan.comparison.n_deleted == len(deleted)].set_index("method")
    return {
        "model": plan.model,
        "model_identity": plan.model_identity,
        "n_layers": plan.n_layers,
        "layer_numbering": "0-based, the original model's layers",
        "deleted_layers": deleted,
        "kept_layers": plan.kept_layers(n_deleted),
        "strategy": plan.strategy,
        "beam_width": plan.beam_width,
        "objective": OBJECTIVE,
        "tokens_sha256": plan.tokens_sha256,
        "held_out": {
            method: {
                "deleted_layers": json.loads(rows.loc[method, "deleted_layers"]),
                **{
                    column: float(rows.loc[method, column])
                    for metric in HELD_OUT_METRICS
                    for column in (metric, f"{metric}_ci_low", f"{metric}_ci_high")
                },
            }
            for method in METHODS
            if method in rows.index
        },
    }


def export_plan(
    plan: PrunePlan,
    folder: str | os.PathLike[str],
    *,
    n_deleted: int | None = None,
    hf_model: PreTrainedModel | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
    mergekit_model: str | None = None,
) -> Path:
    """Write the pruned HF folder (:data:`HF_FOLDER`), :data:`MERGEKIT_FILE` and :data:`PLAN_FILE` into ``folder``.

    Args:
        plan: The plan; its step ``n_deleted`` (default: the largest) is exported.
        folder: Where the three go.
        n_deleted: The budget to export.
        hf_model: The original HF model (not a bridge's: the bridge edits its own copy);
            by default loaded with :func:`~stages_of_inference.models.load_hf_model` from ``plan.model``.
        tokenizer: Its tokenizer (required with ``hf_model``).
        mergekit_model: What the mergekit config names as the model (a hub id or a
            folder mergekit can read); by default the full-depth float32 folder the
            weights were read from, when there is one, else ``plan.model``.

    Example:
        >>> export_plan(plan, "results/smollm2-135m")  # doctest: +SKIP
    """
    target = Path(folder)
    reference = mergekit_model or plan.model
    if hf_model is None:
        hf_model, tokenizer, source = load_hf_model(plan.model)
        if mergekit_model is None and Path(source.location).is_dir():
            reference = source.location
    if tokenizer is None:
        raise ConfigError("export_plan got an hf_model without its tokenizer; pass both or neither")
    deleted = plan.deleted_layers(n_deleted)
    export_hf(deleted, target / HF_FOLDER, hf_model, tokenizer)
    write_text(mergekit_yaml(deleted, plan.n_layers, reference), target / MERGEKIT_FILE)
    write_json(plan_record(plan, n_deleted), target / PLAN_FILE)
    return target


def _decoder_layers_prefix(hf_model: PreTrainedModel) -> str:
    """The state-dict prefix of the decoder layers (``"model.layers."`` on Llama and Gemma 3)."""
    n_layers = int(hf_model.config.num_hidden_layers)
    for name, module in hf_model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n_layers:
            return f"{name}."
    raise ConfigError(f"{type(hf_model).__name__} has no list of {n_layers} decoder layers; it cannot be pruned here")


def _needs_quotes(text: str) -> bool:
    return not text or any(c in text for c in ":#{}[],&*?|<>=!%@`'\"") or text != text.strip()
