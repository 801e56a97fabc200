"""Files cut into parts across packages: assembled in order, once, completely or not at all."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stages_of_inference.errors import ModelLoadError
from stages_of_inference.models.parts import assemble, package_file


@pytest.fixture
def parts(tmp_path: Path) -> list[Path]:
    files = [tmp_path / f"part{i:02d}.bin" for i in range(1, 4)]
    for index, file in enumerate(files):
        file.write_bytes(bytes([index]) * (1000 + index))
    return files


def test_the_parts_are_concatenated_in_order(parts: list[Path], tmp_path: Path) -> None:
    target = assemble(parts, tmp_path / "cache" / "model.gguf", 3003)
    assert target.read_bytes() == b"".join(part.read_bytes() for part in parts)
    assert [p.name for p in target.parent.iterdir()] == ["model.gguf"]  # no partial file left


def test_a_file_of_the_right_size_is_not_assembled_again(parts: list[Path], tmp_path: Path) -> None:
    target = tmp_path / "model.gguf"
    target.write_bytes(bytes(3003))
    assert assemble(parts, target, 3003).read_bytes() == bytes(3003)  # the hash check is the caller's


def test_parts_of_the_wrong_total_size_are_refused(parts: list[Path], tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="hold 3,003 bytes, not 3,004; reinstall"):
        assemble(parts, tmp_path / "model.gguf", 3004)
    assert not (tmp_path / "model.gguf").exists()


def test_a_missing_part_is_named(parts: list[Path], tmp_path: Path) -> None:
    parts[1].unlink()
    with pytest.raises(ModelLoadError, match=r"missing part files .*part02\.bin"):
        assemble(parts, tmp_path / "model.gguf", 3003)


def test_an_interrupted_assembly_leaves_nothing(
    parts: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", full_disk)
    with pytest.raises(OSError, match="No space left"):
        assemble(parts, tmp_path / "cache" / "model.gguf", 3003)
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_missing_package_names_itself() -> None:
    with pytest.raises(ModuleNotFoundError) as caught:
        package_file("soi_no_such_package_part1", "data/part01.bin")
    assert caught.value.name == "soi_no_such_package_part1"
