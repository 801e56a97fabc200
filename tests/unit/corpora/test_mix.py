"""Unit tests of stages_of_inference.corpora.mix: excerpts and the equal-characters interleaving."""

from __future__ import annotations

import random

from stages_of_inference.corpora.documents import Document
from stages_of_inference.corpora.mix import excerpts, mix_parts


def paragraphs(*lengths: int) -> str:
    return "\n\n".join(chr(ord("a") + index) * length for index, length in enumerate(lengths))


def test_excerpts_hold_whole_paragraphs_and_reach_the_least_length() -> None:
    document = Document("speech", paragraphs(4, 3, 9, 2, 1))
    cut = excerpts(document, min_chars=10)
    assert [excerpt.id for excerpt in cut] == ["speech#0", "speech#1"]
    assert [excerpt.text for excerpt in cut] == ["aaaa\n\nbbb\n\nccccccccc", "dd\n\ne"]
    assert "\n\n".join(excerpt.text for excerpt in cut) == document.text


def test_excerpts_skip_blank_paragraphs_and_keep_a_long_one_whole() -> None:
    cut = excerpts(Document("d", "  \n\n" + "x" * 50 + "\n \n\n\ny"), min_chars=10)
    assert [excerpt.text for excerpt in cut] == ["x" * 50, "y"]


def test_parts_give_equal_characters_until_the_smallest_runs_out() -> None:
    long_part = [Document(f"long/{i}", "l" * 100) for i in range(10)]
    short_part = [Document(f"short/{i}", "s" * 25) for i in range(8)]
    mixed = [excerpt.id.removesuffix("#0") for excerpt in mix_parts([long_part, short_part], seed=None, min_chars=1)]
    # characters given (long, short) before each pick: the part behind goes next, ties to the first part
    assert mixed == [
        "long/0",  # (0, 0)
        *[f"short/{i}" for i in range(4)],  # (100, 0) .. (100, 75)
        "long/1",  # (100, 100)
        *[f"short/{i}" for i in range(4, 8)],  # (200, 100) .. (200, 175)
        *[f"long/{i}" for i in range(2, 10)],  # (200, 200), then the short part is spent
    ]


def test_a_seed_permutes_each_part_and_keeps_the_interleaving_rule() -> None:
    parts = [[Document(f"p{p}/{i}", "x" * 10) for i in range(6)] for p in range(3)]
    stored = mix_parts(parts, seed=None, min_chars=1)
    assert [e.id for e in stored[:3]] == ["p0/0#0", "p1/0#0", "p2/0#0"]
    seeded = mix_parts(parts, seed=5, min_chars=1)
    assert seeded == mix_parts(parts, seed=5, min_chars=1)
    assert seeded != mix_parts(parts, seed=6, min_chars=1)
    assert [e.id.split("/")[0] for e in seeded] == [e.id.split("/")[0] for e in stored]  # same genre rhythm
    for p in range(3):
        expected = [f"p{p}/{i}#0" for i in range(6)]
        random.Random(5).shuffle(expected)
        assert [e.id for e in seeded if e.id.startswith(f"p{p}/")] == expected
