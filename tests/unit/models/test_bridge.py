"""The bridge boot records the weight processing TransformerLens actually applied, with dtype and device."""

from __future__ import annotations

import warnings

import pytest
import torch
from transformers import PreTrainedTokenizerFast

from stages_of_inference.models import ModelSource, bridge_from_hf
from stages_of_inference.models.bridge import PROCESSING_STEPS
from tests.tiny_models import tiny_hf_model

pytestmark = pytest.mark.usefixtures("single_thread")

NORMS = {"llama": "RMS", "gemma3": "RMS", "qwen2": "RMS", "neox": "LN", "gpt2": "LN"}


def test_the_record_is_what_transformer_lens_did(architecture: str, tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    """RMSNorm models: norms folded, unembedding centred, writing weights left alone; LayerNorm models: all centred."""
    source = bridge_from_hf(tiny_hf_model(architecture, vocab_size=len(tiny_tokenizer)), tiny_tokenizer).soi_source
    layer_norm = NORMS[architecture] == "LN"
    assert source.compatibility_mode and source.fold_ln and source.center_unembed and source.fold_value_biases
    assert source.center_writing_weights is layer_norm


def test_the_record_agrees_with_the_weights(architecture: str, tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    """Oracle: a centred writing weight has zero mean over d_model; an uncentred random one does not."""
    model = bridge_from_hf(tiny_hf_model(architecture, vocab_size=len(tiny_tokenizer)), tiny_tokenizer)
    assert model.cfg.normalization_type == NORMS[architecture]
    means = torch.stack([model.W_out.mean(-1).abs().max(), model.W_O.mean(-1).abs().max()])
    centred = bool((means < 1e-6).all())
    assert centred is model.soi_source.center_writing_weights
    assert model.W_U.mean(-1).abs().max() < 1e-6  # center_unembed, recorded True everywhere


def test_raw_weights_record_no_step(tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    model = bridge_from_hf(
        tiny_hf_model("gpt2", vocab_size=len(tiny_tokenizer)), tiny_tokenizer, compatibility_mode=False
    )
    assert not model.soi_source.compatibility_mode
    assert not any(getattr(model.soi_source, step) for step in PROCESSING_STEPS)


def test_the_record_names_dtype_device_and_keeps_the_source(tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    given = ModelSource("tiny", "folder", "/models/tiny", None)
    model = bridge_from_hf(tiny_hf_model("llama", vocab_size=len(tiny_tokenizer)), tiny_tokenizer, source=given)
    record = model.soi_source.to_dict()
    assert record["dtype"] == "float32" and record["device"] == "cpu"
    assert (record["name"], record["kind"], record["location"]) == ("tiny", "folder", "/models/tiny")
    assert record["center_writing_weights"] is False and record["fold_ln"] is True


def test_the_spies_on_weight_processing_are_removed(tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    from transformer_lens.weight_processing import ProcessWeights

    before = {name: vars(ProcessWeights)[name] for name in PROCESSING_STEPS.values()}
    bridge_from_hf(tiny_hf_model("llama", vocab_size=len(tiny_tokenizer)), tiny_tokenizer)
    assert {name: vars(ProcessWeights)[name] for name in PROCESSING_STEPS.values()} == before


def test_the_boot_lets_warnings_through(
    tiny_tokenizer: PreTrainedTokenizerFast, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warning raised while TransformerLens processes the weights reaches the user."""
    from transformer_lens.weight_processing import ProcessWeights

    original = vars(ProcessWeights)["center_unembed"].__func__

    def warning_center_unembed(*args: object, **kwargs: object) -> object:
        warnings.warn("from TransformerLens", UserWarning, stacklevel=1)
        return original(*args, **kwargs)

    monkeypatch.setattr(ProcessWeights, "center_unembed", staticmethod(warning_center_unembed))
    with pytest.warns(UserWarning, match="from TransformerLens"):
        bridge_from_hf(tiny_hf_model("llama", vocab_size=len(tiny_tokenizer)), tiny_tokenizer)
