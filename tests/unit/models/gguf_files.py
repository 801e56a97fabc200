"""Small GGUF files written by the ``gguf`` package's own writer: an independent source of headers."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np


def write_gguf(path: Path, *, architecture: str = "qwen2", block_count: int = 24, name: str = "Tiny Qwen") -> Path:
    """A GGUF file whose name comes after arrays of strings and numbers, as in real headers, and one tensor."""
    writer = gguf.GGUFWriter(path, arch=architecture)
    writer.add_array("general.tags", ["text-generation", "code"])
    writer.add_array("general.scores", [1.5, 2.5, 3.5])
    writer.add_uint32(f"{architecture}.context_length", 64)
    writer.add_block_count(block_count)
    writer.add_name(name)
    writer.add_array("tokenizer.ggml.tokens", [f"token{i}" for i in range(50)])
    writer.add_tensor("token_embd.weight", np.arange(8, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
