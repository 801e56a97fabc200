"""A cache of compatibility-mode weights: TransformerLens's weight processing runs once per model file.

``enable_compatibility_mode`` folds the norms into the next linear maps and centres the
unembedding every time a bridge is built. On 2 cores that is most of a cached load
(several seconds for Gemma 3 270M: it clones its 262,144 x 640 unembedding twice).
The processed parameters are a pure function of the raw ones, so after the first
processing :func:`save_processed` writes them as a Hugging Face folder in the cache,
keyed by the weights' sha256, their dtype (processed in float32, then cast: see
:func:`~stages_of_inference.models.bridge.boot`), the layout of the folder and the
transformer-lens and transformers versions; its marker file keeps the record of the steps TransformerLens
applied, which the restored bridge carries. A later load reads that folder (:func:`load_processed`) and
boots the bridge on it with TransformerLens's own processing run with every transform
switched off: that installs the weights into the bridge's components exactly as the
processing does (same forward path, same hooks), without recomputing anything.

The cache is used only where restoring is exact: weights with a known hash (embedded
models and GGUF files), an architecture adapter without weight pre- or post-processing
of its own, and a processing whose parameters all sit in a parameter slot of the
Hugging Face modules. A slot may be empty in the raw model and filled by the processing:
Qwen2's attention output has no bias, and folding the value biases gives it one; the
restored model gets that parameter back in the same slot.
``tests/integration/test_processed_weights.py`` checks, on both embedded models, that
a restored bridge equals a freshly processed one: logits, every hook, state dict,
buffers and config.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from importlib.metadata import version
from pathlib import Path
from typing import cast

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformer_lens.model_bridge import TransformerBridge
from transformer_lens.model_bridge.architecture_adapter import ArchitectureAdapter
from transformers import AutoModelForCausalLM, AutoTokenizer, PretrainedConfig, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from stages_of_inference.devices import dtype_name
from stages_of_inference.errors import ModelLoadError
from stages_of_inference.models.bridge import PROCESSING_STEPS
from stages_of_inference.runs.atomic import atomic_directory

NO_TRANSFORMS = {"fold_ln": False, "center_writing_weights": False, "center_unembed": False, "fold_value_biases": False}
"""Compatibility mode with every weight transform off: installs weights, changes none."""
MARKER = "soi_processed.json"
_LAYOUT = "p2"
"""The folder layout: ``p2`` marker files record the steps applied (``p1`` ones only the steps requested)."""
_WEIGHTS = "model.safetensors"
_TOKENIZER_CONFIG = "tokenizer_config.json"

ParameterOwners = dict[str, tuple[torch.nn.Module, str]]
"""Parameter slot of the raw HF model, empty ones included -> (the module holding it, attribute name)."""


def processed_dir(cache: Path, sha256: str, dtype: torch.dtype) -> Path:
    """Where the processed weights, in ``dtype``, of the model file with this hash are cached.

    Example:
        >>> processed_dir(Path("/c"), "ab" * 32, torch.bfloat16).name  # doctest: +ELLIPSIS
        'abababababababab-tl...-tf...-bfloat16-p2'
    """
    versions = f"tl{version('transformer-lens')}-tf{version('transformers')}"
    return cache / "processed" / f"{sha256[:16]}-{versions}-{dtype_name(dtype)}-{_LAYOUT}"


def parameter_owners(hf_model: PreTrainedModel) -> ParameterOwners:
    """Remember which module holds each parameter slot, before the bridge wraps the modules.

    The bridge replaces parameters on these same modules when it processes weights,
    so reading the attributes afterwards gives the processed parameters under their
    Hugging Face names. Empty slots (a ``Linear`` without bias) are listed too: the
    processing may fill them (see the module docstring).
    """
    owners: ParameterOwners = {}
    for module_name, module in hf_model.named_modules(remove_duplicate=False):
        for attribute in module._parameters:
            owners[f"{module_name}.{attribute}".lstrip(".")] = (module, attribute)
    return owners


def restorable(bridge: TransformerBridge, owners: ParameterOwners) -> bool:
    """Whether a processed bridge can be rebuilt exactly from its HF parameters."""
    adapter = type(bridge.adapter)
    if (
        adapter.preprocess_weights is not ArchitectureAdapter.preprocess_weights
        or adapter.postprocess_weights is not ArchitectureAdapter.postprocess_weights
    ):
        return False
    captured = {id(getattr(module, attribute)) for module, attribute in owners.values()}
    return all(id(parameter) in captured for parameter in bridge.parameters())


def applied_steps(bridge: TransformerBridge) -> dict[str, bool]:
    """The weight-processing steps recorded on a bridge's ``soi_source`` (see :mod:`stages_of_inference.models.bridge`)."""
    return {step: bool(getattr(bridge.soi_source, step)) for step in PROCESSING_STEPS}


def save_processed(bridge: TransformerBridge, owners: ParameterOwners, target: Path) -> None:
    """Write a processed bridge's parameters and tokenizer as an HF folder, atomically; skip if not restorable.

    The tokenizer saved is the bridge's own. The bridge re-reads any tokenizer whose
    ``add_bos_token`` is off with ``add_bos_token=True`` (4 s for Gemma 3's 262k
    vocabulary); ``save_pretrained`` does not keep that flag, so the marker records it
    and :func:`load_processed` reads the tokenizer with it, once. The tokenizer config
    also gets the added tokens (:func:`_record_added_tokens`).

    Raises:
        OSError: The cache cannot be written (the caller warns and carries on).
    """
    if target.is_dir() or not restorable(bridge, owners):
        return
    hf_config = cast(PretrainedConfig, bridge.original_model.config)  # an HF model under the bridge
    weights: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, (module, attribute) in owners.items():
        parameter = module._parameters.get(attribute)
        if parameter is None:  # an empty slot the processing left without a parameter
            continue
        tensor = parameter.detach()
        weights[name] = tensor.clone() if tensor.data_ptr() in seen else tensor.contiguous()
        seen.add(tensor.data_ptr())
    with atomic_directory(target) as partial:
        save_file(weights, partial / _WEIGHTS, metadata={"format": "pt"})
        hf_config.save_pretrained(partial)
        bridge.tokenizer.save_pretrained(partial)
        _record_added_tokens(bridge.tokenizer, partial / _TOKENIZER_CONFIG)
        marker = {
            "tie_word_embeddings": bool(getattr(hf_config, "tie_word_embeddings", False)),
            "add_bos_token": bool(getattr(bridge.tokenizer, "add_bos_token", False)),
            "applied": applied_steps(bridge),
            "dtype": bridge.soi_source.dtype,
        }
        (partial / MARKER).write_text(json.dumps(marker, indent=1))


def _record_added_tokens(tokenizer: PreTrainedTokenizerBase, config_file: Path) -> None:
    """Write the tokenizer's added tokens into its saved config, as transformers reads them.

    transformers 5 leaves ``added_tokens_decoder`` out of the config of a
    ``tokenizers``-backed tokenizer; loading one then parses the whole ``tokenizer.json``
    in Python to find them, before parsing it again to build the tokenizer (1.5 s of
    Gemma 3's load: 33 MB, 6,384 added tokens). With the field present, the first parse
    is skipped and the tokenizer read is the same.
    """
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config.setdefault(
        "added_tokens_decoder",
        {
            str(index): {
                "content": token.content,
                "single_word": token.single_word,
                "lstrip": token.lstrip,
                "rstrip": token.rstrip,
                "normalized": token.normalized,
                "special": token.special,
            }
            for index, token in tokenizer.added_tokens_decoder.items()
        },
    )
    config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")


def load_processed(
    folder: Path, dtype: torch.dtype
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict[str, bool]]:
    """Read a folder written by :func:`save_processed`: the HF model holds processed weights in ``dtype``.

    Every parameter is read as saved (the unembedding is never re-tied to the
    embedding); the config then gets back its original ``tie_word_embeddings``, as
    on a freshly processed model. Parameters that the processing put in slots the raw
    model leaves empty (Qwen2's attention output bias) are put back in those slots. The
    tokenizer is read with the ``add_bos_token`` the bridge gave it, so booting the
    bridge does not read it again.

    Returns:
        ``(hf_model, tokenizer, applied)``: ``applied`` is the record of the steps
        TransformerLens ran when the weights were processed.

    Raises:
        ModelLoadError: A file is missing, damaged, does not match the config, or
            holds weights of another dtype.
    """
    try:
        marker = json.loads((folder / MARKER).read_text())
        if marker["dtype"] != dtype_name(dtype):
            raise ValueError(f"it holds {marker['dtype']} weights, not {dtype_name(dtype)}")
        loaded: tuple[PreTrainedModel, dict[str, list[str]]] = AutoModelForCausalLM.from_pretrained(
            folder, dtype=dtype, tie_word_embeddings=False, output_loading_info=True
        )  # type: ignore[assignment]  # output_loading_info=True returns (model, info)
        hf_model, info = loaded
        bos = {"add_bos_token": True} if marker.get("add_bos_token") else {}
        tokenizer = AutoTokenizer.from_pretrained(folder, **bos)
        applied = {step: bool(marker["applied"][step]) for step in PROCESSING_STEPS}
        info["unexpected_keys"] = _fill_empty_slots(hf_model, folder / _WEIGHTS, info["unexpected_keys"])
    except Exception as error:  # json, safetensors and transformers errors for damaged files
        raise ModelLoadError(f"cannot read processed weights in {folder}: {type(error).__name__}: {error}") from None
    wrong = {kind: sorted(keys) for kind, keys in info.items() if kind != "error_msgs" and keys}
    if wrong or info.get("error_msgs"):
        raise ModelLoadError(f"processed weights in {folder} do not match their config: {wrong}")
    hf_model.config.tie_word_embeddings = marker["tie_word_embeddings"]
    return hf_model, tokenizer, applied


def _fill_empty_slots(hf_model: PreTrainedModel, weights: Path, unexpected: Collection[str]) -> list[str]:
    """Put saved parameters whose slot is empty in a fresh model into that slot; return the keys with no slot."""
    owners = parameter_owners(hf_model)
    fillable = [name for name in unexpected if name in owners and getattr(*owners[name]) is None]
    with safe_open(weights, framework="pt") as saved:
        for name in fillable:
            module, attribute = owners[name]
            setattr(module, attribute, torch.nn.Parameter(saved.get_tensor(name)))
    return [name for name in unexpected if name not in fillable]
