"""The GGUF header check: architecture, layer count and name, read before any weight is."""

from __future__ import annotations

from pathlib import Path

import gguf
import pytest

from stages_of_inference.errors import ModelLoadError
from stages_of_inference.models.gguf import GGUFMetadata, check_metadata, read_metadata
from tests.unit.models.gguf_files import write_gguf


def test_the_header_fields_are_the_ones_written(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "model.gguf", architecture="qwen2", block_count=24, name="Tiny Qwen")
    assert read_metadata(path) == GGUFMetadata("qwen2", 24, "Tiny Qwen")
    fields = gguf.GGUFReader(path).fields  # the gguf package's own reader agrees
    assert fields["general.name"].contents() == "Tiny Qwen" and fields["qwen2.block_count"].contents() == 24


def test_the_block_count_key_follows_the_architecture(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "model.gguf", architecture="llama", block_count=30)
    assert read_metadata(path) == GGUFMetadata("llama", 30, "Tiny Qwen")


@pytest.mark.parametrize("keep", [0, 16, 60])
def test_a_truncated_header_is_a_model_load_error(tmp_path: Path, keep: int) -> None:
    path = write_gguf(tmp_path / "model.gguf")
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(ModelLoadError, match="cannot read the GGUF header"):
        read_metadata(path)


def test_a_file_that_is_not_gguf_is_a_model_load_error(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(ModelLoadError, match="no GGUF v2/v3 header"):
        read_metadata(path)


@pytest.mark.parametrize("wrong", [GGUFMetadata("llama", 24, "Tiny Qwen"), GGUFMetadata("qwen2", 28, "Tiny Qwen")])
def test_another_model_is_refused(tmp_path: Path, wrong: GGUFMetadata) -> None:
    path = write_gguf(tmp_path / "model.gguf")
    check_metadata(path, GGUFMetadata("qwen2", 24, "Tiny Qwen"), fix="reinstall it")
    with pytest.raises(ModelLoadError, match=r"not the expected .*; reinstall it$"):
        check_metadata(path, wrong, fix="reinstall it")
