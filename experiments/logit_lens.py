"""Decode every layer's residual stream through the final norm and unembedding (paper section 3).

Writes into ``OUT/<model>/``: ``logit_lens.parquet`` (one row per point: embedding, then
each block), ``logit_lens_final_scale.parquet`` (the old shortcut that reuses the final
layer's norm scale, for comparison), ``logit_lens.json`` (a summary), ``logit_lens.html``
(metrics against relative depth), and ``logit_lens_top_tokens.parquet`` /
``logit_lens_top_tokens.html`` (top token per layer and position of one prompt).

Example:
    python -m experiments.logit_lens --model smollm2-135m --tokens 4096 --seq-len 256 --out results/
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
from stages_of_inference.analyses.logit_lens import (
    METRICS,
    logit_lens,
    logit_lens_top_tokens,
)
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


def run(config: ExperimentConfig, prompt: str = DEFAULT_PROMPT) -> pd.DataFrame:
    """Run the lens (correct and shortcut) and the prompt heatmap; write tables, summary, figures."""
    started = time.perf_counter()
    model, tokens, folder = prepare(config)
    table = logit_lens(model, tokens, batch_size=config.batch_size)
    shortcut = logit_lens(model, tokens, batch_size=config.batch_size, reuse_final_norm_scale=True)
    top = logit_lens_top_tokens(model, prompt)
    save_table(table, folder, NAME)
    save_table(shortcut, folder, f"{NAME}_final_scale")
    save_table(top, folder, f"{NAME}_top_tokens")
    summary = {
        "model": config.model,
        "n_tokens": int(table.n_tokens.iloc[0]),
        "prompt": prompt,
        "wall_seconds": round(time.perf_counter() - started, 1),
        **{metric: dict(zip(table.point.tolist(), table[metric].tolist(), strict=True)) for metric in METRICS},
    }
    save_summary(summary, folder, NAME)
    save_figure(plot_logit_lens(table.assign(model=config.model)), folder, NAME)
    save_figure(plot_top_tokens_heatmap(top), folder, f"{NAME}_top_tokens")
    print(f"{config.model}: logit-lens tables, summary and figures in {folder}")
    return table


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""

    def body(args: Sequence[str] | None) -> None:
        config = parse_config(args, __doc__.splitlines()[0], LogitLensConfig)
        run(config, prompt=config.prompt)

    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
