"""Subjoiner heads: attention from a word's last sub-token to its earlier ones (paper section 6).

Words come from the documents of ``--corpus`` in stored order (not from the token
windows, which hold too few multi-token words). Writes into
``OUT/<model>/``: ``subjoiner.parquet`` (every head, ranked), ``subjoiner_prompts.parquet``
(the prompts), ``subjoiner.json`` (a summary), ``subjoiner.html`` (scores per head) and
``subjoiner_pattern.html`` (the top head's pattern on the first target prompt).

Example:
    python -m experiments.subjoiner --model smollm2-135m --out results/
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from experiments.common import (
    ExperimentConfig,
    option,
    parse_config,
    prepare,
    run_main,
    save_figure,
    save_summary,
    save_table,
)
from stages_of_inference.analyses.subjoiner import (
    SubjoinerDetails,
    subjoiner_heads,
    subjoiner_pattern,
)
from stages_of_inference.plots.subjoiner import plot_head_scores, plot_subjoiner_pattern

NAME = "subjoiner"


@dataclass(frozen=True)
class PromptSettings:
    """How the subjoiner prompts are built (see :func:`subjoiner_heads`)."""

    n_prompts: int = 12
    context_words: int = 16
    target_subtokens: int = 4
    max_per_word: int = 3


@dataclass
class SubjoinerConfig(ExperimentConfig):
    """The experiment settings plus how prompts are built."""

    n_prompts: int = option(PromptSettings.n_prompts, "target prompts (and as many controls)")
    context_words: int = option(PromptSettings.context_words, "words of running text before the final word")
    target_subtokens: int = option(PromptSettings.target_subtokens, "tokens the target word splits into")
    max_per_word: int = option(PromptSettings.max_per_word, "prompts allowed per target word (different contexts)")


def prompt_table(details: SubjoinerDetails) -> pd.DataFrame:
    """One row per prompt: kind, final word, text, token count."""
    rows = [
        {"kind": kind, "index": i, "word": p.word, "text": p.text, "n_tokens": len(p.tokens)}
        for kind, prompts in (("target", details.targets), ("control", details.controls))
        for i, p in enumerate(prompts)
    ]
    return pd.DataFrame(rows)


def run(config: ExperimentConfig, settings: PromptSettings = PromptSettings()) -> pd.DataFrame:
    """Rank the heads of one model; write tables, summary and figures."""
    started = time.perf_counter()
    model, _, folder = prepare(config)  # the words come from the corpus documents, not the windows
    ranking, details = subjoiner_heads(
        model, config.corpus, n_prompts=settings.n_prompts, context_words=settings.context_words,
        target_subtokens=settings.target_subtokens, max_per_word=settings.max_per_word, batch_size=config.batch_size,
    )
    save_table(ranking, folder, NAME)
    save_table(prompt_table(details), folder, f"{NAME}_prompts")
    top = ranking.iloc[0]
    summary = {
        "model": config.model,
        "corpus": config.corpus,
        **vars(settings),
        "top_heads": ranking.head(5)[["layer", "head", "score"]].to_dict(orient="records"),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    save_summary(summary, folder, NAME)
    save_figure(plot_head_scores(ranking, title=f"{config.model}: subjoiner score per head"), folder, NAME)
    pattern = subjoiner_pattern(model, details.targets[0], int(top["layer"]), int(top["head"]))
    save_figure(plot_subjoiner_pattern(pattern), folder, f"{NAME}_pattern")
    print(f"{config.model}: subjoiner tables, summary and figures in {folder}")
    return ranking


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""

    def body(args: Sequence[str] | None) -> None:
        config = parse_config(args, __doc__.splitlines()[0], SubjoinerConfig)
        settings = PromptSettings(config.n_prompts, config.context_words, config.target_subtokens, config.max_per_word)
        run(config, settings)

    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
