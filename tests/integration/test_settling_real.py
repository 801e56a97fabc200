"""Integration tests of the commit depth and self-repair on the real models, at a tiny budget.

One short window per model (Gemma's 262k vocabulary makes every lens point costly);
the tests assert what must hold on any model plus the token classes of both real
tokenizers' conventions (byte-level BPE for SmolLM2 and Qwen2.5, SentencePiece for Gemma 3).
"""

from __future__ import annotations

import pytest
import torch

from stages_of_inference.analyses.commit_depth import commit_depth, token_classes
from stages_of_inference.analyses.self_repair import self_repair
from stages_of_inference.corpus import load_corpus
from stages_of_inference.interventions import Intervention, delete_layers
from stages_of_inference.scoring.metrics import token_metrics

pytestmark = pytest.mark.integration

WINDOW = {"smollm2-135m": 64, "gemma-3-270m": 32, "qwen2.5-coder-0.5b": 32}

BYTE_LEVEL_BPE = {
    "Ġthe": "word_initial",
    "ing": "continuation",
    "9": "digits",
    ",": "punctuation",
    "Ġ(": "punctuation",
    "Ċ": "other",
    "Ġ": "other",
}
"""Hand-picked tokens of a GPT-2-style byte-level vocabulary (SmolLM2 and Qwen2.5 share these spellings)."""

HAND_PICKED = {
    "smollm2-135m": BYTE_LEVEL_BPE,
    "qwen2.5-coder-0.5b": BYTE_LEVEL_BPE,
    "gemma-3-270m": {
        "▁the": "word_initial",
        "ing": "continuation",
        "1": "digits",
        ",": "punctuation",
        "▁(": "punctuation",
        "\n": "other",
        "▁": "other",
    },
}
"""Tokens of each tokenizer, in its own spelling, with their class."""


def one_window(model) -> torch.Tensor:
    name = model.soi_source.name
    return load_corpus("embedded", model, n_tokens=WINDOW[name], seq_len=WINDOW[name])


def test_token_classes_follow_each_tokenizers_convention(real_model) -> None:
    picked = HAND_PICKED[real_model.soi_source.name]
    ids = real_model.tokenizer.convert_tokens_to_ids(list(picked))
    assert real_model.tokenizer.unk_token_id not in ids  # every hand-picked token is in the vocabulary
    assert token_classes(real_model.tokenizer, ids) == list(picked.values())
    assert token_classes(real_model.tokenizer, [real_model.tokenizer.bos_token_id]) == ["other"]


def test_commit_depth_and_exit_curve(real_model) -> None:
    tokens = one_window(real_model)
    result = commit_depth(real_model, tokens, progress=False)
    per_token = result.per_token
    n_layers = real_model.cfg.n_layers
    assert len(per_token) == tokens.shape[1] - 2
    assert per_token.commit_point.between(0, n_layers).all()
    assert per_token.relative_commit_depth.median() > 0.25  # pretrained predictions settle past the first quarter
    curve = result.exit_curve(n_bootstrap=0)
    assert curve.accuracy.iloc[-1] == per_token.correct.mean()
    assert curve.kl_to_final.iloc[-1] < 1e-4 and curve.kl_to_final.iloc[0] > curve.kl_to_final.iloc[-1]


def test_deleting_a_layer_damages_and_the_output_matches_a_full_forward(real_model) -> None:
    tokens = one_window(real_model)
    layer = real_model.cfg.n_layers // 2
    table = self_repair(real_model, tokens, Intervention("delete", layer), progress=False)
    assert table.excess_kl.iloc[-1] > 0  # the output moves; the damage may have either sign (docs/settling.md)
    with torch.inference_mode():
        original = real_model(tokens)
        with delete_layers(real_model, layer):
            deleted = real_model(tokens)
    expected = float(token_metrics(original, deleted, tokens)["kl"].double().mean())
    assert table.intervened_kl_to_final.iloc[-1] == pytest.approx(expected, rel=1e-3, abs=1e-5)
    undone = table.damage.iloc[0] - table.excess_kl.iloc[-1]
    assert table.repair.sum() == pytest.approx(undone, abs=1e-9)
