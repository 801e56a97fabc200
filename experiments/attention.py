"""Mean attention to the previous k tokens, per layer and per head (paper section 4).

Writes into ``OUT/<model>/``: ``attention.parquet`` (one row per layer: mean over heads,
mean and sem over windows), ``attention_heads.parquet`` (one row per layer and head),
``attention.json`` (a summary) and ``attention.html`` (the figure with its error band).

Example:
    python -m experiments.attention --model smollm2-135m --tokens 4096 --seq-len 256 --out results/
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
from stages_of_inference.analyses.attention import DEFAULT_K, previous_token_attention
from stages_of_inference.plots.attention import plot_previous_token_attention

NAME = "attention"


@dataclass
class AttentionConfig(ExperimentConfig):
    """The experiment settings plus how many previous tokens count."""

    k: int = option(DEFAULT_K, "previous tokens attended to (sub-diagonals -1..-k)")


def run(config: ExperimentConfig, k: int = DEFAULT_K) -> pd.DataFrame:
    """Measure attention to the previous ``k`` tokens; write tables, summary and figure."""
    started = time.perf_counter()
    model, tokens, folder = prepare(config)
    table = previous_token_attention(model, tokens, k=k, batch_size=config.batch_size)
    heads = previous_token_attention(model, tokens, k=k, batch_size=config.batch_size, by="head")
    save_table(table, folder, NAME)
    save_table(heads, folder, f"{NAME}_heads")
    peak = table.loc[table["mean"].idxmax()]
    summary = {
        "model": config.model,
        "k": k,
        "n_documents": int(table.n_documents.iloc[0]),
        "peak_layer": int(peak.layer),
        "peak_relative_depth": float(peak.relative_depth),
        "peak_mean": float(peak["mean"]),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    save_summary(summary, folder, NAME)
    save_figure(plot_previous_token_attention(table.assign(model=config.model), k=k), folder, NAME)
    print(f"{config.model}: previous-token attention table, summary and figure in {folder}")
    return table


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""

    def body(args: Sequence[str] | None) -> None:
        config = parse_config(args, __doc__.splitlines()[0], AttentionConfig)
        run(config, k=config.k)

    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
