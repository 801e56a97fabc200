"""The mixing rule of the ``prose`` corpus: equal shares of text from each genre, in excerpts.

Rule:
    1. Each part's documents (in stored order) are cut at paragraph breaks (blank
       lines) into excerpts of at least :data:`EXCERPT_CHARS` characters: whole
       paragraphs are added until the excerpt is that long, so an excerpt never cuts
       a paragraph and a document's last excerpt may be shorter. Excerpt ``k`` of
       document ``d`` has the id ``d#k``.
    2. With an int ``seed``, each part's excerpts are permuted by
       ``random.Random(seed)`` (:func:`~stages_of_inference.corpora.documents.seeded_order`);
       ``seed=None`` keeps them in document order.
    3. The parts are interleaved by characters: the next excerpt always comes from
       the part that has given the fewest characters so far (ties go to the part
       listed first). Every part thus gives about the same amount of text until the
       smallest runs out; the others then continue.

Excerpts are the mix's documents: :func:`~stages_of_inference.corpus.load_corpus`
joins them with a separator token like any documents. Short excerpts keep even a
small token budget (the default 4096 tokens are about nine excerpts) drawing on every
genre; the rule counts characters, not tokens, so every tokenizer sees the same
excerpts in the same order.

Example:
    >>> a = [Document("a/1", "x" * 30), Document("a/2", "y" * 30)]
    >>> b = [Document("b/1", "p" * 10 + "\\n\\n" + "q" * 10 + "\\n\\n" + "r" * 10)]
    >>> [excerpt.id for excerpt in mix_parts([a, b], seed=None, min_chars=15)]
    ['a/1#0', 'b/1#0', 'b/1#1', 'a/2#0']
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Sequence

from stages_of_inference.corpora.documents import Document, seeded_order

EXCERPT_CHARS = 2_000
"""Least length of an excerpt, in characters (about 450 tokens of English)."""

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def excerpts(document: Document, min_chars: int = EXCERPT_CHARS) -> list[Document]:
    """Cut ``document`` at paragraph breaks into excerpts of at least ``min_chars`` characters.

    Example:
        >>> [e.text for e in excerpts(Document("d", "ab\\n\\ncd\\n\\nef\\n\\n\\ng"), min_chars=5)]
        ['ab\\n\\ncd', 'ef\\n\\ng']
    """
    paragraphs = [paragraph.strip() for paragraph in _PARAGRAPH_BREAK.split(document.text) if paragraph.strip()]
    texts: list[str] = []
    for paragraph in paragraphs:
        if texts and len(texts[-1]) < min_chars:
            texts[-1] += "\n\n" + paragraph
        else:
            texts.append(paragraph)
    return [Document(f"{document.id}#{index}", text) for index, text in enumerate(texts)]


def mix_parts(parts: Sequence[Sequence[Document]], seed: int | None, min_chars: int = EXCERPT_CHARS) -> list[Document]:
    """Interleave the excerpts of ``parts`` by the module's rule; a part's position breaks ties."""
    queues = [
        seeded_order((excerpt for document in part for excerpt in excerpts(document, min_chars)), seed)
        for part in parts
    ]
    heap = [(0, index) for index, queue in enumerate(queues) if queue]
    heapq.heapify(heap)
    positions = [0] * len(queues)
    mixed = []
    while heap:
        given, index = heapq.heappop(heap)
        excerpt = queues[index][positions[index]]
        mixed.append(excerpt)
        positions[index] += 1
        if positions[index] < len(queues[index]):
            heapq.heappush(heap, (given + len(excerpt.text), index))
    return mixed
