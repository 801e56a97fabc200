"""Named corpora embedded in installed packages: readers, the wiki-markup stripper and the prose mix.

:func:`stages_of_inference.load_corpus` takes any of these names as its source; this
package says what each name holds (:data:`EMBEDDED_CORPORA`), reads it from the
package files (:mod:`~stages_of_inference.corpora.readers`) and mixes the genres
(:mod:`~stages_of_inference.corpora.mix`).
"""

from stages_of_inference.corpora.documents import Document, seeded_order
from stages_of_inference.corpora.mix import EXCERPT_CHARS, excerpts, mix_parts
from stages_of_inference.corpora.registry import (
    DEFAULT_CORPUS,
    EMBEDDED_ALIAS,
    EMBEDDED_CORPORA,
    EmbeddedCorpus,
    embedded_corpus,
)
from stages_of_inference.corpora.wiki_markup import strip_wiki_markup

__all__ = [
    "DEFAULT_CORPUS",
    "EMBEDDED_ALIAS",
    "EMBEDDED_CORPORA",
    "EXCERPT_CHARS",
    "Document",
    "EmbeddedCorpus",
    "embedded_corpus",
    "excerpts",
    "mix_parts",
    "seeded_order",
    "strip_wiki_markup",
]
