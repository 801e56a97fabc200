"""Decode every layer's residual stream through the final norm and unembedding (paper section 3).

Tables ``logit_lens`` (one row per point: embedding, then each block),
``logit_lens_final_scale`` (the old shortcut that reuses the final layer's norm scale,
for comparison) and ``logit_lens_top_tokens`` (top token per layer and position of one
prompt); summary ``logit_lens.json``; figures ``logit_lens.html`` (metrics against
relative depth) and ``logit_lens_top_tokens.html``.
"""

from __future__ import annotations

from dataclasses import dataclass

from jaxtyping import Int
from torch import Tensor

from stages_of_inference.analyses.logit_lens import (
    METRICS,
    logit_lens,
    logit_lens_top_tokens,
)
from stages_of_inference.experiments.config import ExperimentConfig, option
from stages_of_inference.experiments.protocol import Experiment, Results
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.plots.logit_lens import (
    plot_logit_lens,
    plot_top_tokens_heatmap,
)

NAME = "logit_lens"
DEFAULT_PROMPT = "The capital of France is"


@dataclass
class LogitLensConfig(ExperimentConfig):
    """The experiment settings plus the prompt of the top-token heatmap."""

    prompt: str = option(DEFAULT_PROMPT, "prompt whose top token per layer and position is plotted")


def compute(model: LoadedModel, tokens: Int[Tensor, "batch pos"], config: LogitLensConfig) -> Results:
    """Run the lens (correct and shortcut) and the prompt heatmap."""
    table = logit_lens(model, tokens, batch_size=config.batch_size)
    shortcut = logit_lens(model, tokens, batch_size=config.batch_size, reuse_final_norm_scale=True)
    top = logit_lens_top_tokens(model, config.prompt)
    summary = {
        "model": config.model,
        "n_tokens": int(table.n_tokens.iloc[0]),
        "prompt": config.prompt,
        **{metric: dict(zip(table.point.tolist(), table[metric].tolist(), strict=True)) for metric in METRICS},
    }
    return Results(
        tables={NAME: table, f"{NAME}_final_scale": shortcut, f"{NAME}_top_tokens": top},
        summary=summary,
        figures={
            NAME: plot_logit_lens(table.assign(model=config.model)),
            f"{NAME}_top_tokens": plot_top_tokens_heatmap(top),
        },
    )


EXPERIMENT = Experiment(NAME, __doc__.splitlines()[0], LogitLensConfig, compute)
