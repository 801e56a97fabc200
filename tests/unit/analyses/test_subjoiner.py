"""Unit tests of subjoiner prompts, head scores and the pattern plot (tiny models)."""

from __future__ import annotations

import pytest
import torch

from stages_of_inference.analyses.subjoiner import (
    Prompt,
    attention_to_previous,
    build_prompts,
    subjoiner_heads,
    subjoiner_pattern,
)
from stages_of_inference.errors import ConfigError


def _word_ids(model, word: str) -> tuple[int, ...]:
    return tuple(model.tokenizer(" " + word, add_special_tokens=False)["input_ids"])


def test_prompts_end_in_words_of_the_requested_split(tiny_model) -> None:
    targets, controls = build_prompts(tiny_model, n_prompts=6, context_words=5, target_subtokens=3)
    assert len(targets) == len(controls) == 6
    assert len({p.word for p in targets}) == 6  # max_per_word=1: each word once
    bos = tiny_model.tokenizer.bos_token_id
    for target, control in zip(targets, controls, strict=True):
        assert target.context == control.context and len(target.context.split()) == 5
        assert target.word.isalpha()
        assert target.tokens[0] == bos == control.tokens[0]
        assert target.tokens[-3:] == _word_ids(tiny_model, target.word)
        assert control.tokens[-1:] == _word_ids(tiny_model, control.word)


def test_heads_are_ranked_by_target_minus_control(tiny_model) -> None:
    ranking, details = subjoiner_heads(tiny_model, n_prompts=5, context_words=4, batch_size=2)
    n_layers, n_heads = tiny_model.cfg.n_layers, tiny_model.cfg.n_heads
    assert len(ranking) == n_layers * n_heads
    assert ranking.columns.tolist() == ["layer", "head", "score", "target_attention", "control_attention"]
    assert sorted(zip(ranking["layer"], ranking["head"], strict=True)) == [
        (layer, head) for layer in range(n_layers) for head in range(n_heads)
    ]
    assert ranking["score"].is_monotonic_decreasing
    assert torch.allclose(
        torch.tensor(ranking["score"].values),
        torch.tensor((ranking["target_attention"] - ranking["control_attention"]).values),
    )
    for attention in (details.target_attention, details.control_attention):
        assert attention.shape == (5, n_layers, n_heads)
        assert (attention >= 0).all() and (attention <= 1 + 1e-5).all()


def test_right_padding_leaves_the_last_token_attention_unchanged(tiny_model) -> None:
    targets, _ = build_prompts(tiny_model, n_prompts=4, context_words=6)
    assert len({len(p.tokens) for p in targets}) > 1  # the batch really is padded
    together = attention_to_previous(tiny_model, targets, span=3, batch_size=4)
    alone = torch.cat([attention_to_previous(tiny_model, [p], span=3) for p in targets])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


def test_texts_and_token_tensors_are_word_sources(tiny_model, tiny_tokens) -> None:
    from_tokens, _ = build_prompts(tiny_model, tiny_tokens, n_prompts=2, context_words=3, target_subtokens=3)
    decoded = tiny_model.tokenizer.batch_decode(tiny_tokens[:, 1:])
    assert all(any(p.text in text for text in decoded) for p in from_tokens)
    text = "of the a to in or " * 3 + "zygomorphic"
    from_text, _ = build_prompts(
        tiny_model, [text], n_prompts=1, context_words=3, target_subtokens=len(_word_ids(tiny_model, "zygomorphic"))
    )
    assert from_text[0].word == "zygomorphic"


def test_repeated_words_need_max_per_word(tiny_model) -> None:
    n_tokens = len(_word_ids(tiny_model, "zygomorphic"))
    texts = ["of the a zygomorphic " * 5]
    with pytest.raises(ConfigError, match="only 1 prompts"):
        build_prompts(tiny_model, texts, n_prompts=3, context_words=3, target_subtokens=n_tokens)
    targets, _ = build_prompts(
        tiny_model, texts, n_prompts=3, context_words=3, target_subtokens=n_tokens, max_per_word=3
    )
    assert [p.word for p in targets] == ["zygomorphic"] * 3


@pytest.mark.parametrize(
    "kwargs",
    [{"n_prompts": 0}, {"context_words": 0}, {"target_subtokens": 1}, {"max_per_word": 0}, {"n_prompts": 10**6}],
)
def test_bad_settings_raise(tiny_model, kwargs) -> None:
    with pytest.raises(ConfigError):  # the small python-docs corpus: n_prompts=10**6 reads all of it
        build_prompts(tiny_model, "python-docs", **kwargs)


def test_pattern_is_one_head_on_one_prompt(tiny_model) -> None:
    pattern = subjoiner_pattern(tiny_model, "the attention pattern", layer=1, head=1)
    ids = tiny_model.tokenizer("the attention pattern", add_special_tokens=False)["input_ids"]
    n = len(ids) + 1
    assert pattern.columns.tolist() == ["layer", "head", "query", "key", "query_token", "key_token", "weight"]
    assert len(pattern) == n * n and (pattern.layer == 1).all() and (pattern["head"] == 1).all()
    weights = torch.tensor(pattern.pivot(index="query", columns="key", values="weight").to_numpy())
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(n))
    assert torch.triu(weights, diagonal=1).abs().max() == 0  # causal
    tokens = pattern.drop_duplicates("key").key_token.tolist()
    assert tokens == tiny_model.tokenizer.batch_decode([[tiny_model.tokenizer.bos_token_id]] + [[i] for i in ids])
    assert (pattern.query_token == [tokens[q] for q in pattern["query"]]).all()
    prompt = Prompt(context="a b", word="c", tokens=(0, 5, 6, 7))
    assert sorted(subjoiner_pattern(tiny_model, prompt, layer=0, head=0)["key"].unique()) == [0, 1, 2, 3]


@pytest.mark.oracle
def test_pattern_equals_the_full_cache(tiny_model) -> None:
    prompt = Prompt(context="a b", word="c", tokens=(0, 5, 6, 7))
    with torch.inference_mode():
        _, cache = tiny_model.run_with_cache(torch.tensor([prompt.tokens]))
    head = tiny_model.cfg.n_heads - 1
    expected = cache["blocks.2.attn.hook_pattern"][0, head].float().flatten()
    pattern = subjoiner_pattern(tiny_model, prompt, layer=2, head=head)
    torch.testing.assert_close(torch.tensor(pattern.weight.to_numpy()), expected)


@pytest.mark.parametrize(("layer", "head"), [(99, 0), (0, 99), (0, -1)])
def test_pattern_rejects_bad_heads(tiny_model, layer, head) -> None:
    with pytest.raises(ConfigError):
        subjoiner_pattern(tiny_model, "some text", layer=layer, head=head)
