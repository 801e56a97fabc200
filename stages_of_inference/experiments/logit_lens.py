"""Decode every layer's residual stream through the final norm and unembedding (paper section 3).

Tables ``logit_lens`` (one row per point: embedding, then each block),
``logit_lens_final_scale`` (the old shortcut that reuses the final layer's norm scale,
for comparison, on the first ``final_scale_tokens`` tokens only: its ``n_tokens`` says
how many were scored) and ``logit_lens_top_tokens`` (top token per layer and position
of one prompt); summary ``logit_lens.json``; figures ``logit_lens.html`` (metrics against
relative depth) and ``logit_lens_top_tokens.html``.

The shortcut is a comparison, not a result: it shows how far the old lens was from the
correct one, and the first 1,024 tokens show that gap as clearly as the whole budget
(``docs/performance.md`` has the measurement). A second lens over the whole budget
took as long as the first: half of Gemma 3's 15-16 minute lens step.
"""

from __future__ import annotations

from dataclasses import dataclass

from jaxtyping import Int
from torch import Tensor

from stages_of_inference.analyses.logit_lens import (
    METRICS,
    lens_hook_names,
    logit_lens,
    logit_lens_top_tokens,
)
from stages_of_inference.errors import ConfigError
from stages_of_inference.experiments.config import ExperimentConfig, option
from stages_of_inference.experiments.protocol import Experiment, Results
from stages_of_inference.layers import n_layers_of
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.plots.logit_lens import (
    plot_logit_lens,
    plot_top_tokens_heatmap,
)

NAME = "logit_lens"
DEFAULT_PROMPT = "The capital of France is"


@dataclass
class LogitLensConfig(ExperimentConfig):
    """The experiment settings plus the prompt of the top-token heatmap and the shortcut's budget."""

    prompt: str = option(DEFAULT_PROMPT, "prompt whose top token per layer and position is plotted")
    final_scale_tokens: int = option(
        1024,
        "tokens (whole windows, from the first) scored by the old final-scale shortcut for comparison; "
        "0 skips it, more than --tokens means all",
    )

    def __post_init__(self) -> None:
        if self.final_scale_tokens < 0:
            raise ConfigError(
                f"final_scale_tokens={self.final_scale_tokens} (--final-scale-tokens) is negative; pass 0 to skip"
            )


def final_scale_windows(tokens: Int[Tensor, "batch pos"], budget: int) -> Int[Tensor, "part pos"]:
    """The first windows holding ``budget`` tokens (rounded up to whole windows; all of them at most).

    Example:
        >>> import torch
        >>> final_scale_windows(torch.zeros(16, 256, dtype=torch.long), 1000).shape
        torch.Size([4, 256])
    """
    return tokens[: -(-budget // tokens.shape[1])]


def compute(model: LoadedModel, tokens: Int[Tensor, "batch pos"], config: LogitLensConfig) -> Results:
    """Run the lens, the shortcut on the first ``final_scale_tokens`` tokens, and the prompt heatmap."""
    table = logit_lens(model, tokens, batch_size=config.batch_size)
    tables = {NAME: table}
    if config.final_scale_tokens:
        shortcut_tokens = final_scale_windows(tokens, config.final_scale_tokens)
        tables[f"{NAME}_final_scale"] = logit_lens(
            model, shortcut_tokens, batch_size=config.batch_size, reuse_final_norm_scale=True
        )
    top = logit_lens_top_tokens(model, config.prompt)
    summary = {
        "model": config.model,
        "n_tokens": int(table.n_tokens.iloc[0]),
        "prompt": config.prompt,
        **{metric: dict(zip(table.point.tolist(), table[metric].tolist(), strict=True)) for metric in METRICS},
    }
    return Results(
        tables={**tables, f"{NAME}_top_tokens": top},
        summary=summary,
        figures={
            NAME: plot_logit_lens(table.assign(model=config.model)),
            f"{NAME}_top_tokens": plot_top_tokens_heatmap(top),
        },
    )


def activations(model: LoadedModel, config: LogitLensConfig) -> list[str]:
    """The residuals at every point, and the final norm's scale when the shortcut runs."""
    return lens_hook_names(n_layers_of(model), reuse_final_norm_scale=config.final_scale_tokens > 0)


EXPERIMENT = Experiment(NAME, __doc__.splitlines()[0], LogitLensConfig, compute, activations=activations)
