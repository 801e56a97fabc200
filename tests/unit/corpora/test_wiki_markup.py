"""Unit tests of stages_of_inference.corpora.wiki_markup on hand-written wiki markup, one rule at a time."""

from __future__ import annotations

import pytest

from stages_of_inference.corpora.wiki_markup import strip_wiki_markup


@pytest.mark.parametrize(
    ("markup", "prose"),
    [
        ("Before {{cite web|url=x|title={{nested|y}}}} after.", "Before after."),
        ("A {|\n| cell {{t}} || cell\n|-\n| {| inner |} \n|} B", "A B"),
        ("Text.<ref name=a>{{cite book|t}}</ref> More.<ref name=a /> End.", "Text. More. End."),
        ("Hidden <!-- a\ncomment --> shown.", "Hidden shown."),
        ("The [[cat]] and [[Felis catus|domestic cat]]s.", "The cat and domestic cats."),
        ("[[File:Cat.jpg|thumb|A [[cat]] sits]]Cats.[[Category:Felines]]", "Cats."),
        ("[[Image:X.png|left]]See [https://example.org the site] or [https://example.org].", "See the site or ."),
        ("'''Bold''' and ''italic'' and <small>small</small>.__NOTOC__", "Bold and italic and small."),
        ("Energy <math>E = mc^2</math> matters.", "Energy matters."),
        ("A&nbsp;B &ndash; C", "A B – C"),
    ],
)
def test_each_rule_leaves_the_prose(markup: str, prose: str) -> None:
    assert strip_wiki_markup(markup) == prose


def test_headings_are_kept_as_text_and_lists_lose_their_markers() -> None:
    markup = "Intro.\n\n== History ==\n* first point\n# second point\n: indented\n\n=== Later ===\nMore."
    assert strip_wiki_markup(markup) == "Intro.\n\nHistory\nfirst point\nsecond point\nindented\n\nLater\nMore."


@pytest.mark.parametrize("heading", ["See also", "References", "External links", "Further reading"])
def test_the_article_ends_at_the_back_matter(heading: str) -> None:
    markup = f"Prose stays.\n\n== {heading} ==\n* [[Other article]]\n\n== Later section ==\nGone too."
    assert strip_wiki_markup(markup) == "Prose stays."


def test_blank_lines_collapse_to_one_paragraph_break() -> None:
    assert strip_wiki_markup("One.\n\n\n\n{{only a template}}\n\nTwo.  \t words") == "One.\n\nTwo. words"


def test_markup_with_nothing_left_is_empty() -> None:
    assert strip_wiki_markup("{{Infobox|a=b}}\n[[Category:X]]\n") == ""
