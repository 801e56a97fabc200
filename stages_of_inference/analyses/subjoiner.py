"""Subjoiner heads: attention heads that glue the sub-tokens of a word together.

Section 6 of Lad et al.: some early heads attend from the last sub-token of a word
split into several tokens back to its earlier sub-tokens (Pythia-2.8B layer 1 head 6),
evidence that early layers "detokenize".

Prompts come from running text: ``context_words`` consecutive whitespace-separated
words of a document, then the next word as the *target* -- stripped of surrounding
punctuation, letters only, used at most ``max_per_word`` times (once by default) --
if the model's tokenizer splits it into exactly ``target_subtokens`` tokens when
preceded by a space, as in running text. Each target prompt has a *control*: the same context followed
by a word that is a single token (cycling through the first :data:`MAX_FILLERS`
single-token words of the text). A prompt is kept only if tokenizing it whole gives
the context's tokens followed by the final word's tokens, so sub-token positions are
exact. Every prompt starts with the BOS token of
:func:`stages_of_inference.tokens.bos_token_id`.

Score of a head: the attention from the last token to the ``target_subtokens - 1``
positions before it (summed over those keys), averaged over target prompts, minus
the same average over control prompts. For targets those keys are the word's earlier
sub-tokens; for controls they are the end of the context.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor

from stages_of_inference.activations import cached_activations
from stages_of_inference.analyses.attention import pattern_hook_names
from stages_of_inference.corpus import EMBEDDED_CORPUS, iter_documents
from stages_of_inference.errors import ConfigError
from stages_of_inference.layers import check_layer, n_layers_of
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.tokens import bos_token_id, check_windows

_WORD = re.compile(r"[A-Za-z]+")

MAX_FILLERS = 64
"""How many distinct single-token words are collected to end the control prompts."""


@dataclass(frozen=True)
class Prompt:
    """One prompt: context words, a final word, and the token ids (BOS first)."""

    context: str
    word: str
    tokens: tuple[int, ...]

    @property
    def text(self) -> str:
        """The prompt as text: context, a space, the final word."""
        return f"{self.context} {self.word}"


@dataclass(frozen=True)
class SubjoinerDetails:
    """Everything behind a subjoiner ranking, prompt by prompt."""

    targets: list[Prompt]
    """Prompts ending in a word of exactly ``target_subtokens`` tokens."""
    controls: list[Prompt]
    """The same contexts, ending in a single-token word."""
    target_attention: Float[Tensor, "prompt layer head"]
    """Attention from the last token to the word's earlier sub-tokens."""
    control_attention: Float[Tensor, "prompt layer head"]
    """Attention from the last token to as many positions before it, on controls."""


def _positive_int(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def source_documents(model: LoadedModel, source: Tensor | Iterable[str] | str) -> Iterator[str]:
    """The texts to draw words from.

    A token tensor ``[batch, pos]`` is decoded row by row (special tokens dropped); a
    string names a corpus source for :func:`~stages_of_inference.corpus.iter_documents`
    (stored order, no shuffle); any other iterable yields the documents themselves.
    """
    if isinstance(source, Tensor):
        check_windows(source, what="the subjoiner's word source", min_len=1)
        return iter(model.tokenizer.batch_decode(source.tolist(), skip_special_tokens=True))
    if isinstance(source, str):
        return iter_documents(source, seed=None)
    return iter(source)


class _PromptBuilder:
    """Tokenizes words once each and assembles prompts whose token split is exact."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.bos = bos_token_id(tokenizer)
        self._word_ids: dict[str, tuple[int, ...]] = {}

    def ids(self, text: str) -> tuple[int, ...]:
        return tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def word_ids(self, word: str) -> tuple[int, ...]:
        """Token ids of `` word`` (with its leading space), memoised."""
        if word not in self._word_ids:
            self._word_ids[word] = self.ids(" " + word)
        return self._word_ids[word]

    def prompt(self, context: str, word: str) -> Prompt | None:
        """The prompt, or None if tokenizing it whole does not give context + word tokens."""
        whole = self.ids(f"{context} {word}")
        if whole != self.ids(context) + self.word_ids(word):
            return None
        return Prompt(context=context, word=word, tokens=(self.bos, *whole))


def _bare_word(text: str) -> str | None:
    """``text`` without surrounding punctuation if what remains is letters only, else None."""
    word = text.strip(string.punctuation)
    return word if _WORD.fullmatch(word) else None


def _windows(words: list[str], context_words: int) -> Iterator[tuple[str, str]]:
    """``(context, word)`` for every bare word preceded by ``context_words`` words."""
    for index in range(context_words, len(words)):
        word = _bare_word(words[index])
        if word is not None:
            yield " ".join(words[index - context_words : index]), word


def _add_single_token_words(builder: _PromptBuilder, words: list[str], fillers: dict[str, None]) -> None:
    """Add the document's single-token bare words to ``fillers`` until it holds MAX_FILLERS."""
    for word in filter(None, map(_bare_word, words)):
        if len(fillers) >= MAX_FILLERS:
            return
        if len(builder.word_ids(word)) == 1:
            fillers.setdefault(word)


def build_prompts(
    model: LoadedModel,
    source: Tensor | Iterable[str] | str = EMBEDDED_CORPUS,
    *,
    n_prompts: int = 16,
    context_words: int = 16,
    target_subtokens: int = 4,
    max_per_word: int = 1,
) -> tuple[list[Prompt], list[Prompt]]:
    """Target prompts and their single-token controls (see the module docstring).

    Prompts follow the order of the text; the first ``n_prompts`` that qualify are kept.

    Raises:
        ConfigError: Bad numbers, or the text holds fewer than ``n_prompts`` suitable words.

    Example:
        >>> targets, controls = build_prompts(model, n_prompts=8)  # doctest: +SKIP
        >>> targets[0].text  # doctest: +SKIP
    """
    _positive_int(n_prompts, "n_prompts")
    _positive_int(context_words, "context_words")
    _positive_int(target_subtokens, "target_subtokens", minimum=2)
    _positive_int(max_per_word, "max_per_word")
    builder = _PromptBuilder(model.tokenizer)
    fillers: dict[str, None] = {}  # an insertion-ordered set
    targets: list[Prompt] = []
    controls: list[Prompt] = []
    uses: Counter[str] = Counter()
    for document in source_documents(model, source):  # one pass: a streamed corpus is read only so far
        words = document.split()
        _add_single_token_words(builder, words, fillers)
        for context, word in _windows(words, context_words):
            if uses[word] >= max_per_word or len(builder.word_ids(word)) != target_subtokens:
                continue
            pair = _target_and_control(builder, context, word, list(fillers), len(targets))
            if pair is not None:
                uses[word] += 1
                targets.append(pair[0])
                controls.append(pair[1])
                if len(targets) == n_prompts:
                    return targets, controls
    raise ConfigError(
        f"the text gives only {len(targets)} prompts of {context_words} words plus a word of exactly "
        f"{target_subtokens} tokens ({len(fillers)} single-token control words, max_per_word="
        f"{max_per_word}); need n_prompts={n_prompts}: lower n_prompts or target_subtokens, "
        "raise max_per_word, or pass more text"
    )


def _target_and_control(
    builder: _PromptBuilder, context: str, word: str, fillers: list[str], offset: int
) -> tuple[Prompt, Prompt] | None:
    target = builder.prompt(context, word)
    if target is None:
        return None
    for k in range(len(fillers)):
        control = builder.prompt(context, fillers[(offset + k) % len(fillers)])
        if control is not None:
            return target, control
    return None


def _right_padded(prompts: list[Prompt], pad: int) -> Int[Tensor, "prompt pos"]:
    width = max(len(p.tokens) for p in prompts)
    return torch.tensor([[*p.tokens, *[pad] * (width - len(p.tokens))] for p in prompts], dtype=torch.long)


def attention_to_previous(
    model: LoadedModel, prompts: list[Prompt], span: int, *, batch_size: int = 8
) -> Float[Tensor, "prompt layer head"]:
    """Attention from each prompt's last token to the ``span`` positions before it.

    Prompts are right-padded to a common length. Attention is causal, so padding after
    a prompt's last token changes nothing at or before it.
    """
    names = pattern_hook_names(n_layers_of(model))
    tokens = _right_padded(prompts, pad=prompts[0].tokens[0])
    rows = []
    start = 0
    for batch, cache in cached_activations(model, tokens, names, batch_size):
        for row in range(batch.shape[0]):
            last = len(prompts[start + row].tokens) - 1
            rows.append(torch.stack([cache[name][row, :, last, last - span : last].sum(dim=-1) for name in names]))
        start += batch.shape[0]
    return torch.stack(rows).float().cpu()


def subjoiner_heads(
    model: LoadedModel,
    corpus_tokens_or_texts: Tensor | Iterable[str] | str = EMBEDDED_CORPUS,
    *,
    n_prompts: int = 16,
    context_words: int = 16,
    target_subtokens: int = 4,
    max_per_word: int = 1,
    batch_size: int = 8,
) -> tuple[pd.DataFrame, SubjoinerDetails]:
    """Rank every attention head by how much it attends within multi-token words.

    Args:
        model: A ``TransformerBridge``.
        corpus_tokens_or_texts: Where the words come from: a ``[batch, pos]`` token
            tensor (decoded), a list of texts, or a corpus source name (default the
            embedded corpus, in stored order).
        n_prompts: Target prompts (and as many controls) to build.
        context_words: Words of running text before the final word.
        target_subtokens: Tokens the target word must split into (at least 2).
        max_per_word: How many prompts may end in the same target word (different contexts).
        batch_size: Prompts per forward pass.

    Returns:
        ``(ranking, details)``: one row per head, highest score first, with columns
        ``layer``, ``head``, ``score``, ``target_attention``, ``control_attention``;
        and the prompts with their per-prompt attention.

    Raises:
        ConfigError: Bad numbers or too few suitable words in the text.

    Example:
        >>> ranking, details = subjoiner_heads(model, n_prompts=16)  # doctest: +SKIP
        >>> ranking.head(3)  # doctest: +SKIP
    """
    _positive_int(batch_size, "batch_size")
    targets, controls = build_prompts(
        model,
        corpus_tokens_or_texts,
        n_prompts=n_prompts,
        context_words=context_words,
        target_subtokens=target_subtokens,
        max_per_word=max_per_word,
    )
    span = target_subtokens - 1
    details = SubjoinerDetails(
        targets=targets,
        controls=controls,
        target_attention=attention_to_previous(model, targets, span, batch_size=batch_size),
        control_attention=attention_to_previous(model, controls, span, batch_size=batch_size),
    )
    return rank_heads(details), details


def rank_heads(details: SubjoinerDetails) -> pd.DataFrame:
    """One row per head, sorted by score (mean target minus mean control attention)."""
    target = details.target_attention.mean(dim=0)
    control = details.control_attention.mean(dim=0)
    n_layers, n_heads = target.shape
    table = pd.DataFrame(
        {
            "layer": [layer for layer in range(n_layers) for _ in range(n_heads)],
            "head": list(range(n_heads)) * n_layers,
            "score": (target - control).flatten().tolist(),
            "target_attention": target.flatten().tolist(),
            "control_attention": control.flatten().tolist(),
        }
    )
    return table.sort_values("score", ascending=False, kind="stable", ignore_index=True)


def subjoiner_pattern(model: LoadedModel, prompt: str | Prompt, layer: int, head: int) -> pd.DataFrame:
    """One head's attention pattern on one prompt (BOS prepended to a text prompt).

    Args:
        model: A ``TransformerBridge``.
        prompt: Text, or a :class:`Prompt` (e.g. from :func:`subjoiner_heads`'s details).
        layer: The head's layer (0-based; negative counts from the end).
        head: The head's index in its layer.

    Returns:
        One row per (query, key) position pair, queries in order and keys in order
        within each query: ``layer``, ``head``, ``query``, ``key``, ``query_token``,
        ``key_token`` (each position's token text) and ``weight`` (float32; 0 for keys
        after the query, as attention is causal).

    Raises:
        ConfigError: The layer or head is out of range, or the prompt is empty.

    Example:
        >>> pattern = subjoiner_pattern(model, details.targets[0], layer=1, head=6)  # doctest: +SKIP
        >>> pattern.groupby("query").weight.sum()  # doctest: +SKIP
    """
    layer = check_layer(layer, n_layers_of(model))
    n_heads = int(model.cfg.n_heads)
    if isinstance(head, bool) or not isinstance(head, int) or not 0 <= head < n_heads:
        raise ConfigError(f"head {head!r} is out of range: this model has heads 0 to {n_heads - 1}")
    tokens = _prompt_tokens(model, prompt)
    name = f"blocks.{layer}.attn.hook_pattern"
    _, cache = next(cached_activations(model, tokens[None], [name], batch_size=1))
    weights = cache[name][0, head].float().cpu()
    texts = model.tokenizer.batch_decode([[token] for token in tokens.tolist()])
    n = len(texts)
    return pd.DataFrame(
        {
            "layer": layer,
            "head": head,
            "query": [query for query in range(n) for _ in range(n)],
            "key": list(range(n)) * n,
            "query_token": [text for text in texts for _ in range(n)],
            "key_token": texts * n,
            "weight": weights.flatten().numpy(),
        }
    )


def _prompt_tokens(model: LoadedModel, prompt: str | Prompt) -> Tensor:
    if isinstance(prompt, Prompt):
        return torch.tensor(prompt.tokens, dtype=torch.long)
    ids = model.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ConfigError("the prompt is empty; pass some text")
    return torch.tensor([bos_token_id(model.tokenizer), *ids], dtype=torch.long)
