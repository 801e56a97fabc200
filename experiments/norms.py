"""Mean L2 norms of each block's attention output, MLP output and residual stream (paper section 7).

Writes into ``OUT/<model>/``: ``norms.parquet`` (one row per layer), ``norms.json`` (a
summary) and ``norms.html`` (the figure, log y axis).

Example:
    python -m experiments.norms --model smollm2-135m --tokens 4096 --seq-len 256 --out results/
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
from stages_of_inference.analyses.norms import COMPONENTS, component_norms
from stages_of_inference.plots.norms import plot_component_norms

NAME = "norms"


def run(config: ExperimentConfig) -> pd.DataFrame:
    """Measure the component norms of one model; write table, summary and figure."""
    started = time.perf_counter()
    model, tokens, folder = prepare(config)
    table = component_norms(model, tokens, batch_size=config.batch_size)
    save_table(table, folder, NAME)
    summary = {
        "model": config.model,
        "n_tokens": int(table.n_tokens.iloc[0]),
        **{column: {"first": float(table[column].iloc[0]), "last": float(table[column].iloc[-1]),
                    "max": float(table[column].max())} for column in COMPONENTS},
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    save_summary(summary, folder, NAME)
    save_figure(plot_component_norms(table.assign(model=config.model)), folder, NAME)
    print(f"{config.model}: component norms table, summary and figure in {folder}")
    return table


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    return run_main(lambda args: run(parse_config(args, __doc__.splitlines()[0])), argv)


if __name__ == "__main__":
    sys.exit(main())
