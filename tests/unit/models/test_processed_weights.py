"""Cached processed weights rebuild exactly the bridge, and the record, that weight processing builds (tiny models)."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import pytest
import torch
from transformer_lens.model_bridge import TransformerBridge
from transformers import PreTrainedTokenizerFast
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from stages_of_inference.errors import ModelLoadError
from stages_of_inference.models.bridge import boot, bridge_from_hf
from stages_of_inference.models.processed_weights import (
    MARKER,
    NO_TRANSFORMS,
    load_processed,
    parameter_owners,
    processed_dir,
    restorable,
    save_processed,
)
from tests.tiny_models import ARCHITECTURES, tiny_hf_model

pytestmark = pytest.mark.usefixtures("single_thread")


def assert_same_bridge(
    expected: TransformerBridge, actual: TransformerBridge, tokens: torch.Tensor, *, tokenizer: bool = True
) -> None:
    """Equal logits, every hook's activation, state dict and config (and tokenizer): not merely close."""
    with torch.inference_mode():
        expected_logits, expected_cache = expected.run_with_cache(tokens)
        actual_logits, actual_cache = actual.run_with_cache(tokens)
    assert torch.equal(expected_logits, actual_logits)
    assert sorted(expected_cache.keys()) == sorted(actual_cache.keys())
    for name in expected_cache:
        assert torch.equal(expected_cache[name], actual_cache[name]), name
    expected_state, actual_state = expected.state_dict(), actual.state_dict()
    assert sorted(expected_state) == sorted(actual_state)
    for name, tensor in expected_state.items():
        assert torch.equal(tensor, actual_state[name]), name
    assert repr(expected.cfg) == repr(actual.cfg)
    if tokenizer:
        assert_same_tokenizer(expected.tokenizer, actual.tokenizer)


TEXTS = ("Hello world", "  two spaces\n\ttab", "Ünïcödé 数学 🙂", "def f(x):\n    return x**2")


def assert_same_tokenizer(expected: PreTrainedTokenizerBase, actual: PreTrainedTokenizerBase) -> None:
    """Same class, special and added tokens, padding side, vocabulary, and the same ids and text for samples."""
    assert type(expected) is type(actual)
    assert expected.special_tokens_map == actual.special_tokens_map
    assert expected.added_tokens_decoder == actual.added_tokens_decoder  # content and every flag
    assert expected.padding_side == actual.padding_side
    assert expected.get_vocab() == actual.get_vocab()
    for text in TEXTS:
        ids = expected(text)["input_ids"]
        assert actual(text)["input_ids"] == ids, text
        assert actual.decode(ids) == expected.decode(ids)


SEPARATE_QKV = ("llama", "gemma3", "qwen2")
"""Architectures whose processed parameters all live in the HF model (the embedded models' kind)."""
JOINT_QKV = tuple(a for a in ARCHITECTURES if a not in SEPARATE_QKV)
"""The bridge splits a joint QKV matrix into new q/k/v parameters that HF has no place for."""


@pytest.mark.parametrize("architecture", SEPARATE_QKV)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_restored_bridge_equals_processed_bridge(
    architecture: str, dtype: torch.dtype, tiny_tokenizer: PreTrainedTokenizerFast, tiny_tokens: torch.Tensor, tmp_path
) -> None:
    hf_model = tiny_hf_model(architecture, vocab_size=len(tiny_tokenizer))
    owners = parameter_owners(hf_model)
    processed = bridge_from_hf(hf_model, tiny_tokenizer, dtype=dtype)
    folder = tmp_path / "processed"
    save_processed(processed, owners, folder)
    hf_restored, tokenizer, applied = load_processed(folder, dtype)
    restored = boot(hf_restored, tokenizer, NO_TRANSFORMS, None, "cpu", dtype=dtype, already_applied=applied)
    # transformers 5 reads a folder's tokenizer as its model type's class: Qwen2's adds a token to the
    # generic tiny tokenizer (the real Qwen2.5's tokenizer is that class: tests/integration checks it)
    assert_same_bridge(processed, restored, tiny_tokens, tokenizer=architecture != "qwen2")
    assert next(restored.parameters()).dtype == dtype
    assert restored.soi_source == processed.soi_source  # the record of the steps applied survives the cache


def test_a_slot_filled_by_the_processing_is_restored(
    tiny_tokenizer: PreTrainedTokenizerFast, tiny_tokens: torch.Tensor, tmp_path
) -> None:
    """Qwen2's attention output has no bias; folding the value biases gives it one, which must come back."""
    hf_model = tiny_hf_model("qwen2", vocab_size=len(tiny_tokenizer))
    assert hf_model.model.layers[0].self_attn.o_proj.bias is None
    owners = parameter_owners(hf_model)
    processed = bridge_from_hf(hf_model, tiny_tokenizer)
    bias = hf_model.model.layers[0].self_attn.o_proj.bias
    assert bias is not None and bias.abs().max() > 0  # the random value biases, folded
    save_processed(processed, owners, tmp_path / "processed")
    restored, _, _ = load_processed(tmp_path / "processed", torch.float32)
    assert torch.equal(restored.model.layers[0].self_attn.o_proj.bias, bias)


def test_the_bridge_uses_the_cached_tokenizer_without_reading_it_again(
    tiny_tokenizer: PreTrainedTokenizerFast, tmp_path
) -> None:
    """The tiny tokenizer does not prepend BOS, so the bridge re-reads it; the cached copy does."""
    assert not tiny_tokenizer.add_bos_token
    hf_model = tiny_hf_model("llama", vocab_size=len(tiny_tokenizer))
    owners = parameter_owners(hf_model)
    folder = tmp_path / "processed"
    save_processed(bridge_from_hf(hf_model, tiny_tokenizer), owners, folder)
    hf_restored, tokenizer, _ = load_processed(folder, torch.float32)
    assert tokenizer.add_bos_token
    assert boot(hf_restored, tokenizer, NO_TRANSFORMS, None, "cpu").tokenizer is tokenizer


def test_the_cached_tokenizer_is_not_parsed_in_python_for_its_added_tokens(
    tiny_tokenizer: PreTrainedTokenizerFast, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The saved config lists the added tokens, so transformers does not open ``tokenizer.json`` to find them.

    The tiny tokenizer's backend is then read from the file in Rust, which Python's
    ``open`` does not see: no Python read at all (one, without the listed tokens).
    """
    hf_model = tiny_hf_model("llama", vocab_size=len(tiny_tokenizer))
    owners = parameter_owners(hf_model)
    folder = tmp_path / "processed"
    processed = bridge_from_hf(hf_model, tiny_tokenizer)
    save_processed(processed, owners, folder)
    opened: list[str] = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    _, tokenizer, _ = load_processed(folder, torch.float32)
    monkeypatch.undo()
    assert not [name for name in opened if Path(name).name == "tokenizer.json"]
    assert_same_tokenizer(processed.tokenizer, tokenizer)


@pytest.mark.parametrize("architecture", JOINT_QKV)
def test_unrestorable_bridges_are_not_cached(
    architecture: str, tiny_tokenizer: PreTrainedTokenizerFast, tmp_path
) -> None:
    hf_model = tiny_hf_model(architecture, vocab_size=len(tiny_tokenizer))
    owners = parameter_owners(hf_model)
    processed = bridge_from_hf(hf_model, tiny_tokenizer)
    assert not restorable(processed, owners)
    save_processed(processed, owners, tmp_path / "processed")
    assert not (tmp_path / "processed").exists()


def test_damaged_processed_weights_raise_model_load_error(tiny_tokenizer: PreTrainedTokenizerFast, tmp_path) -> None:
    hf_model = tiny_hf_model("llama", vocab_size=len(tiny_tokenizer))
    owners = parameter_owners(hf_model)
    folder = tmp_path / "processed"
    save_processed(bridge_from_hf(hf_model, tiny_tokenizer), owners, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="cannot read processed weights"):
        load_processed(folder, torch.float32)


def test_a_copy_without_the_record_of_the_steps_applied_is_not_restored(
    tiny_tokenizer: PreTrainedTokenizerFast, tmp_path
) -> None:
    """Copies cached before the record existed said which steps were requested, not which ran: rebuild them."""
    hf_model = tiny_hf_model("llama", vocab_size=len(tiny_tokenizer))
    owners = parameter_owners(hf_model)
    folder = tmp_path / "processed"
    save_processed(bridge_from_hf(hf_model, tiny_tokenizer), owners, folder)
    marker = json.loads((folder / MARKER).read_text())
    assert marker["applied"]["center_writing_weights"] is False  # Llama: RMSNorm
    del marker["applied"]
    (folder / MARKER).write_text(json.dumps({**marker, "fold_ln": True, "center_writing_weights": True}))
    with pytest.raises(ModelLoadError, match="cannot read processed weights"):
        load_processed(folder, torch.float32)


def test_the_cache_folder_is_new_for_copies_that_record_the_steps_applied(tmp_path) -> None:
    """Old copies stay where they were (other checkouts may still read them) and are never picked up."""
    assert processed_dir(tmp_path, "ab" * 32, torch.float32).name.endswith("-p2")


def test_each_dtype_has_its_own_cache_folder(tmp_path) -> None:
    folders = {processed_dir(tmp_path, "ab" * 32, dtype) for dtype in (torch.float32, torch.bfloat16, torch.float16)}
    assert len(folders) == 3


def test_weights_of_another_dtype_are_never_served(tiny_tokenizer: PreTrainedTokenizerFast, tmp_path) -> None:
    """A float32 copy asked for as bfloat16 (a folder renamed by hand, say) is refused, not cast silently."""
    hf_model = tiny_hf_model("llama", vocab_size=len(tiny_tokenizer))
    owners = parameter_owners(hf_model)
    folder = tmp_path / "processed"
    save_processed(bridge_from_hf(hf_model, tiny_tokenizer), owners, folder)
    with pytest.raises(ModelLoadError, match="holds float32 weights, not bfloat16"):
        load_processed(folder, torch.bfloat16)
