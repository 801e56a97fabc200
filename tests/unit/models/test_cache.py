"""Pinned hashes: a file is hashed once, hashed again when it changes, and refused when it differs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from stages_of_inference.errors import ModelLoadError
from stages_of_inference.models import cache
from stages_of_inference.models.cache import verify_sha256

CONTENT = b"GGUF" + bytes(1000)
PINNED = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture
def weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(tmp_path / "cache"))
    path = tmp_path / "model.gguf"
    path.write_bytes(CONTENT)
    return path


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files hashed, in order."""
    seen: list[Path] = []
    original = cache.file_sha256

    def counting(path: Path) -> str:
        seen.append(path)
        return original(path)

    monkeypatch.setattr(cache, "file_sha256", counting)
    return seen


def test_a_verified_file_is_not_hashed_again(weights: Path, hashes: list[Path]) -> None:
    verify_sha256(weights, PINNED, fix="reinstall")
    verify_sha256(weights, PINNED, fix="reinstall")
    assert hashes == [weights]


def test_a_changed_file_is_hashed_again_and_refused(weights: Path, hashes: list[Path]) -> None:
    verify_sha256(weights, PINNED, fix="reinstall")
    weights.write_bytes(CONTENT[:-1] + b"\x01")  # same size
    os.utime(weights, ns=(1, 1))
    with pytest.raises(ModelLoadError) as caught:
        verify_sha256(weights, PINNED, fix="reinstall with `pip install x --force-reinstall`")
    assert hashes == [weights, weights]
    message = str(caught.value)
    assert "\n" not in message and f"not the pinned {PINNED[:16]}" in message
    assert message.endswith("reinstall with `pip install x --force-reinstall`")


def test_a_record_for_another_hash_does_not_vouch(weights: Path, hashes: list[Path]) -> None:
    verify_sha256(weights, PINNED, fix="reinstall")
    with pytest.raises(ModelLoadError):
        verify_sha256(weights, "0" * 64, fix="reinstall")
    assert len(hashes) == 2


def test_a_damaged_record_means_hashing_again(weights: Path, hashes: list[Path], tmp_path: Path) -> None:
    verify_sha256(weights, PINNED, fix="reinstall")
    (tmp_path / "cache" / "verified" / "model.gguf.json").write_text("{not json")
    verify_sha256(weights, PINNED, fix="reinstall")
    assert len(hashes) == 2
