"""Linear CKA between the representations of every pair of layers (paper section 7).

Writes into ``OUT/<model>/``: ``cka.parquet`` (long form: ``layer_a``, ``layer_b``,
``cka``), ``cka.json`` (a summary) and ``cka.html`` (the heatmap). Minibatch CKA with
the unbiased HSIC; one minibatch per batch of windows, BOS excluded.

Example:
    python -m experiments.cka --model smollm2-135m --tokens 4096 --seq-len 256 --out results/
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
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
from stages_of_inference.analyses.cka import cka_matrix
from stages_of_inference.plots.cka import plot_cka

NAME = "cka"
DEFAULT_HOOK = "resid_post"


@dataclass
class CKAConfig(ExperimentConfig):
    """The experiment settings plus the hook compared across layers."""

    hook: str = option(DEFAULT_HOOK, "resid_post, resid_pre, resid_mid, attn_out, mlp_out, or a template with {layer}")


def long_form(matrix: pd.DataFrame) -> pd.DataFrame:
    """The square matrix as rows ``layer_a``, ``layer_b``, ``cka``."""
    stacked = matrix.rename_axis(index="layer_a", columns="layer_b").stack()
    return stacked.rename("cka").reset_index()


def run(config: ExperimentConfig, *, hook: str = DEFAULT_HOOK) -> pd.DataFrame:
    """Compute the layer x layer CKA matrix of one model; write table, summary and figure."""
    started = time.perf_counter()
    model, tokens, folder = prepare(config)
    matrix = cka_matrix(model, tokens, hook=hook, batch_size=config.batch_size)
    save_table(long_form(matrix), folder, NAME)
    values = matrix.to_numpy()
    off_diagonal = values[~np.eye(len(values), dtype=bool)]
    summary = {
        "model": config.model,
        "hook": hook,
        "estimator": "minibatch linear CKA, unbiased HSIC (Song et al. 2012; Nguyen et al. 2021)",
        "n_windows": int(tokens.shape[0]),
        "tokens_per_minibatch": int(min(config.batch_size, tokens.shape[0]) * (tokens.shape[1] - 1)),
        "adjacent_mean": float(np.mean(np.diag(values, k=1))) if len(values) > 1 else None,
        "off_diagonal_min": float(off_diagonal.min()) if off_diagonal.size else None,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    save_summary(summary, folder, NAME)
    save_figure(plot_cka(matrix, title=f"{config.model}: linear CKA between layers ({hook})"), folder, NAME)
    print(f"{config.model}: CKA table, summary and figure in {folder}")
    return matrix


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""

    def body(args: Sequence[str] | None) -> None:
        config = parse_config(args, __doc__.splitlines()[0], CKAConfig)
        run(config, hook=config.hook)

    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
