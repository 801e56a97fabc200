"""GGUF files, dequantized to float32 by ``transformers``, through a cached safetensors copy.

Dequantizing takes 20-60 s on 2 cores, so the first load writes a float32 copy into
the cache (:func:`~stages_of_inference.models.cache.converted_dir`, keyed by the
file's hash); later loads read that copy in seconds, with identical weights.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from stages_of_inference.errors import ModelLoadError
from stages_of_inference.models.cache import converted_dir, discard_damaged, file_sha256
from stages_of_inference.models.folder import first_line, load_folder
from stages_of_inference.runs.atomic import atomic_directory


def load_gguf_cached(
    path: Path, *, architecture: str | None, sha256: str | None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a GGUF file, through a float32 safetensors copy cached by content hash.

    Args:
        path: The GGUF file.
        architecture: The ``transformers`` class to record when GGUF leaves none.
        sha256: The file's hash, if known (computed otherwise).
    """
    cached = converted_dir(path.stem, sha256 or file_sha256(path))
    if cached.is_dir():
        try:
            return load_folder(cached, trust_remote_code=False)
        except ModelLoadError as error:
            discard_damaged(cached, error)
    hf_model, tokenizer = dequantize_gguf(path, architecture)
    try:
        write_converted_copy(hf_model, tokenizer, cached)
    except OSError as error:  # a full disk or unwritable cache costs time, not the load
        warnings.warn(
            f"could not cache the converted weights in {cached.parent} ({error.strerror or error}); "
            "the model is loaded, but the next load converts the GGUF again",
            stacklevel=3,
        )
    return hf_model, tokenizer


def dequantize_gguf(path: Path, architecture: str | None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Read a GGUF file's weights (as float32) and tokenizer with ``transformers``.

    Raises:
        ModelLoadError: The file is truncated, corrupted or not a supported model.
    """
    try:
        hf_model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    except Exception as error:  # gguf and transformers raise many types for bad files
        raise ModelLoadError(
            f"cannot read GGUF file {path}: {type(error).__name__}: {first_line(error)}; "
            "the file is truncated, corrupted or not a supported model — "
            "re-download it (embedded models: reinstall their package)"
        ) from None
    if architecture and not hf_model.config.architectures:
        hf_model.config.architectures = [architecture]
    return hf_model, tokenizer


def write_converted_copy(hf_model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, target: Path) -> None:
    """Save a float32 safetensors copy atomically (temporary folder, then rename).

    ``save_pretrained`` refuses GGUF-loaded models, so the weights go through a fresh
    model built from the same config without its quantization entry.

    Raises:
        OSError: The cache cannot be written (no partial folder is left behind).
    """
    config = hf_model.config.__class__.from_dict(hf_model.config.to_dict())
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with atomic_directory(target) as partial:
        with torch.device("meta"):
            clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        clean.load_state_dict(hf_model.state_dict(), assign=True)
        clean.save_pretrained(partial, safe_serialization=True)
        tokenizer.save_pretrained(partial)
