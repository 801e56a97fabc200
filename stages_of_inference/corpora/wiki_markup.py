"""Turn MediaWiki markup into plain prose, deterministically, with a few documented rules.

The Wikipedia part of the embedded corpora is stored as wiki markup. This is not a
full MediaWiki parser: it applies these rules, in this order, and nothing else.

1. Comments ``<!-- ... -->``, references ``<ref ...>...</ref>`` and ``<ref ... />``,
   and the blocks ``<math>``, ``<gallery>``, ``<timeline>``, ``<score>`` are removed
   with their content.
2. Templates ``{{...}}`` and tables ``{|...|}`` are removed with their content,
   innermost first, so nested ones go too.
3. Internal links, innermost first: ``[[target|label]]`` becomes ``label``,
   ``[[target]]`` becomes ``target``; links to a ``File:``, ``Image:``, ``Media:`` or
   ``Category:`` page (captions included) are dropped.
4. External links: ``[url label]`` becomes ``label``; a bare ``[url]`` is dropped.
5. Any other HTML tag (``<small>``, ``<br />``, ...) is dropped, its content kept;
   bold and italic quotes (``'''``, ``''``) and magic words (``__NOTOC__``) are dropped.
6. Lines: a heading ``== Title ==`` is kept as the line ``Title``; list and indent
   markers (``*``, ``#``, ``:``, ``;``) at the start of a line are dropped; the
   article ends before the first heading of the back matter
   (:data:`BACK_MATTER`: See also, References, Notes, External links, ...).
7. HTML entities (``&nbsp;``, ``&ndash;``) are decoded, spaces inside a line are
   collapsed, and blank lines separate paragraphs (one blank line between two).

Example:
    >>> print(strip_wiki_markup(
    ...     "{{Infobox|name=x}}The '''aardvark''' is a [[mammal]] of [[Africa|African]] "
    ...     "savannas.<ref>{{cite book|title=T}}</ref>\\n\\n== Diet ==\\n* It eats "
    ...     "[[ant]]s.[[File:A.jpg|thumb|An [[aardvark]]]]\\n[[Category:Mammals]]"
    ... ))
    The aardvark is a mammal of African savannas.
    <BLANKLINE>
    Diet
    It eats ants.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

BACK_MATTER = frozenset(
    {
        "see also",
        "references",
        "notes",
        "footnotes",
        "citations",
        "sources",
        "bibliography",
        "further reading",
        "external links",
        "notes and references",
    }
)
"""Headings (compared in lower case) at which an article's prose ends."""

DROPPED_LINK_NAMESPACES = ("file:", "image:", "media:", "category:")
"""Internal links to pages of these namespaces are dropped with their captions."""

_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_REF = re.compile(r"<ref\b[^>/]*/>|<ref\b[^>]*>.*?</ref\s*>", re.DOTALL | re.IGNORECASE)
_BLOCKS = re.compile(r"<(math|gallery|timeline|score)\b[^>]*>.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_TABLE = re.compile(r"\{\|(?:(?!\{\||\|\}).)*\|\}", re.DOTALL)
_LINK = re.compile(r"\[\[([^\[\]]*)\]\]")
_EXTERNAL = re.compile(r"\[(?:https?:)?//[^\s\]]*\s*([^\]]*)\]")
_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_QUOTES = re.compile(r"'{2,}")
_MAGIC = re.compile(r"__[A-Z]+__")
_HEADING = re.compile(r"^(=+)\s*(.*?)\s*\1\s*$")
_LIST_MARKERS = re.compile(r"^[*#:;]+\s*")
_SPACES = re.compile(r"[ \t\u00a0]+")


def strip_wiki_markup(markup: str) -> str:
    """Return the prose of a wiki article: paragraphs separated by one blank line.

    Args:
        markup: The article's wiki text (the ``<text>`` of a page in a dump).

    Returns:
        Plain text under the rules of the module docstring; empty if nothing is left.
    """
    text = _BLOCKS.sub("", _REF.sub("", _COMMENT.sub("", markup)))
    text = _until_stable(lambda t: _TABLE.sub("", _TEMPLATE.sub("", t)), text)
    text = _until_stable(lambda t: _LINK.sub(_link_text, t), text)
    text = _EXTERNAL.sub(r"\1", text)
    text = _MAGIC.sub("", _QUOTES.sub("", _TAG.sub("", text)))
    return _paragraphs(text)


def _until_stable(step: Callable[[str], str], text: str) -> str:
    """Apply ``step`` until it changes nothing (nested markup goes innermost first)."""
    while True:
        stepped = step(text)
        if stepped == text:
            return text
        text = stepped


def _link_text(match: re.Match[str]) -> str:
    target, _, label = match.group(1).partition("|")
    if target.strip().lower().startswith(DROPPED_LINK_NAMESPACES):
        return ""
    return (label.rpartition("|")[2] if label else target).strip()


def _paragraphs(text: str) -> str:
    paragraphs: list[list[str]] = [[]]
    for raw in text.splitlines():
        heading = _HEADING.match(raw.strip())
        if heading and heading.group(2).lower() in BACK_MATTER:
            break
        line = heading.group(2) if heading else _LIST_MARKERS.sub("", raw.strip())
        line = _SPACES.sub(" ", html.unescape(line)).strip()
        if line:
            paragraphs[-1].append(line)
        elif paragraphs[-1]:
            paragraphs.append([])
    return "\n\n".join("\n".join(lines) for lines in paragraphs if lines)
