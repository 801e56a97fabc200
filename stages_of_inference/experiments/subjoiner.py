"""Subjoiner heads: attention from a word's last sub-token to its earlier ones (paper section 6).

Words come from the documents of ``--corpus`` in stored order (not from the token
windows, which hold too few multi-token words). Tables ``subjoiner`` (every head,
ranked) and ``subjoiner_prompts`` (the prompts); summary ``subjoiner.json``; figures
``subjoiner.html`` (scores per head) and ``subjoiner_pattern.html`` (the top head's
pattern on the first target prompt).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from jaxtyping import Int
from torch import Tensor

from stages_of_inference.analyses.subjoiner import SubjoinerDetails, subjoiner_heads, subjoiner_pattern
from stages_of_inference.experiments.config import ExperimentConfig, option
from stages_of_inference.experiments.protocol import Experiment, Results
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.plots.subjoiner import plot_head_scores, plot_subjoiner_pattern

NAME = "subjoiner"


@dataclass
class SubjoinerConfig(ExperimentConfig):
    """The experiment settings plus how prompts are built (see :func:`subjoiner_heads`)."""

    n_prompts: int = option(12, "target prompts (and as many controls)")
    context_words: int = option(16, "words of running text before the final word")
    target_subtokens: int = option(4, "tokens the target word splits into")
    max_per_word: int = option(3, "prompts allowed per target word (different contexts)")


def prompt_table(details: SubjoinerDetails) -> pd.DataFrame:
    """One row per prompt: kind, final word, text, token count."""
    rows = [
        {"kind": kind, "index": i, "word": p.word, "text": p.text, "n_tokens": len(p.tokens)}
        for kind, prompts in (("target", details.targets), ("control", details.controls))
        for i, p in enumerate(prompts)
    ]
    return pd.DataFrame(rows)


def compute(model: LoadedModel, tokens: Int[Tensor, "batch pos"], config: SubjoinerConfig) -> Results:
    """Rank every head by its subjoiner score (the words come from the corpus documents, not ``tokens``)."""
    settings = {
        "n_prompts": config.n_prompts,
        "context_words": config.context_words,
        "target_subtokens": config.target_subtokens,
        "max_per_word": config.max_per_word,
    }
    ranking, details = subjoiner_heads(model, config.corpus, **settings, batch_size=config.batch_size)
    top = ranking.iloc[0]
    summary = {
        "model": config.model,
        "corpus": config.corpus,
        **settings,
        "top_heads": ranking.head(5)[["layer", "head", "score"]].to_dict(orient="records"),
    }
    pattern = plot_subjoiner_pattern(subjoiner_pattern(model, details.targets[0], int(top["layer"]), int(top["head"])))
    return Results(
        tables={NAME: ranking, f"{NAME}_prompts": prompt_table(details)},
        summary=summary,
        figures={
            NAME: plot_head_scores(ranking, title=f"{config.model}: subjoiner score per head"),
            f"{NAME}_pattern": pattern,
        },
    )


EXPERIMENT = Experiment(NAME, __doc__.splitlines()[0], SubjoinerConfig, compute)
