"""Delete or swap every layer and measure what survives (paper Figure 1 and Table 1).

Writes into ``OUT/<model>/``: ``robustness.parquet`` (one row per intervention),
``robustness.json`` (a summary), ``robustness.html`` (the figure), and
``robustness_shards/`` (finished batches; a rerun of the same command resumes there).

Example:
    python -m experiments.robustness --model smollm2-135m --corpus embedded --tokens 4096 --seq-len 256 --seed 0 --out results/
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import pandas as pd

from experiments.common import (
    ExperimentConfig,
    parse_config,
    prepare,
    run_main,
    save_figure,
    save_summary,
    save_table,
)
from stages_of_inference.plots.robustness import plot_robustness
from stages_of_inference.sweep import robustness_sweep

NAME = "robustness"


def run(config: ExperimentConfig) -> pd.DataFrame:
    """Run the sweep for one model and write its table, summary and figure."""
    started = time.perf_counter()
    model, tokens, folder = prepare(config)
    table = robustness_sweep(model, tokens, batch_size=config.batch_size, seed=config.seed, checkpoint_dir=folder / f"{NAME}_shards")
    save_table(table, folder, NAME)
    save_summary(summarize_table(table, model_name=config.model, seconds=time.perf_counter() - started), folder, NAME)
    save_figure(plot_robustness(table, title=f"{config.model}: what survives deleting or swapping a layer"), folder, NAME)
    print(f"{config.model}: robustness table, summary and figure in {folder}")
    return table


def summarize_table(table: pd.DataFrame, *, model_name: str, seconds: float) -> dict[str, object]:
    """Min / mean / max over layers of the retention metrics, per intervention kind."""
    summary: dict[str, object] = {
        "model": model_name,
        "n_layers": int(table[table.intervention == "delete"].shape[0]),
        "n_tokens": int(table.n_tokens.iloc[0]),
        "baseline_accuracy": float(table.baseline_accuracy.iloc[0]),
        "baseline_loss": float(table.baseline_loss.iloc[0]),
        "wall_seconds": round(seconds, 1),
    }
    for kind, part in table.groupby("intervention"):
        summary[str(kind)] = {
            metric: {"min": float(part[metric].min()), "mean": float(part[metric].mean()), "max": float(part[metric].max())}
            for metric in ("top1_agreement", "relative_accuracy", "kl")
        }
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    return run_main(lambda args: run(parse_config(args, __doc__.splitlines()[0])), argv)


if __name__ == "__main__":
    sys.exit(main())
