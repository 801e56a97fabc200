"""Models in a local folder written by ``save_pretrained``: config, safetensors weights, tokenizer.

The folder is checked before anything is read (a missing file is named), and a config
that ships its own Python code (``auto_map``) is refused unless ``trust_remote_code``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from stages_of_inference.errors import ModelLoadError

_REQUIRED_FOLDER_FILES = ("config.json",)
_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.gguf")


def load_folder(path: Path, *, trust_remote_code: bool) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Read a model and its tokenizer from a folder, in float32.

    Raises:
        ModelLoadError: A file is missing, damaged or truncated, or the model needs
            its own code and ``trust_remote_code`` is off.
    """
    missing = [f for f in _REQUIRED_FOLDER_FILES if not (path / f).is_file()]
    if not any(any(path.glob(p)) for p in _WEIGHT_PATTERNS):
        missing.append("weights (*.safetensors)")
    if missing:
        raise ModelLoadError(
            f"model folder {path} is missing {', '.join(missing)}; "
            "point to a folder written by `save_pretrained` (config, weights, tokenizer)"
        )
    _check_remote_code(path / "config.json", str(path), trust_remote_code)
    try:
        hf_model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, trust_remote_code=trust_remote_code)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as error:  # safetensors, json and transformers errors for damaged files
        raise ModelLoadError(
            f"cannot load model folder {path}: {type(error).__name__}: {first_line(error)}; "
            "a file is truncated, corrupted or missing (tokenizer files too) — rewrite it"
        ) from None
    return hf_model, tokenizer


def _check_remote_code(config_path: Path, name: str, trust_remote_code: bool) -> None:
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"cannot read {config_path}: {error}; rewrite the file") from None
    if "auto_map" in config and not trust_remote_code:
        raise ModelLoadError(
            f"model {name!r} ships its own Python code (auto_map in config.json); "
            "read it, then pass trust_remote_code=True (CLI: --trust-remote-code) to run it"
        )


def first_line(error: BaseException) -> str:
    """The first line of an error's message (at most 300 characters), for one-line errors.

    Example:
        >>> first_line(ValueError("bad header\\nat byte 8"))
        'bad header'
    """
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else "no detail"
