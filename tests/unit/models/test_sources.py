"""Model provenance (ModelSource): what identifies a model's weights and their processing in a run's identity."""

from __future__ import annotations

from dataclasses import replace

from stages_of_inference.models import ModelSource

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
