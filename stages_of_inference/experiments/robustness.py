"""Delete or swap every layer and measure what survives (paper Figure 1 and Table 1).

Tables ``robustness`` (one row per intervention), summary ``robustness.json``, figure
``robustness.html``. The sweep checkpoints finished batches in
``OUT/<model>/robustness_shards/``; a rerun of the same command resumes there.
With ``--backend ray --workers N`` the batches are computed by N Ray workers and the
table is the same.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from jaxtyping import Int
from torch import Tensor

from stages_of_inference.experiments.config import ExperimentConfig, output_folder
from stages_of_inference.experiments.protocol import Experiment, Results
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.plots.robustness import plot_robustness
from stages_of_inference.sweep import robustness_sweep

NAME = "robustness"


def compute(model: LoadedModel, tokens: Int[Tensor, "batch pos"], config: ExperimentConfig) -> Results:
    """Run the sweep over every deletion and adjacent swap (resuming from its checkpoint folder)."""
    checkpoints = output_folder(config) / f"{NAME}_shards"
    table = robustness_sweep(
        model,
        tokens,
        batch_size=config.batch_size,
        seed=config.seed,
        checkpoint_dir=checkpoints,
        backend=config.backend,
        workers=config.workers,
        address=config.address or None,
        load_options={"trust_remote_code": config.trust_remote_code} if config.backend == "ray" else None,
    )
    return Results(
        tables={NAME: table},
        summary=summarize_table(table, model_name=config.model),
        figures={NAME: plot_robustness(table, title=f"{config.model}: what survives deleting or swapping a layer")},
    )


def summarize_table(table: pd.DataFrame, *, model_name: str) -> dict[str, Any]:
    """Min / mean / max over layers of the retention metrics, per intervention kind."""
    summary: dict[str, Any] = {
        "model": model_name,
        "n_layers": int(table[table.intervention == "delete"].shape[0]),
        "n_tokens": int(table.n_tokens.iloc[0]),
        "baseline_accuracy": float(table.baseline_accuracy.iloc[0]),
        "baseline_loss": float(table.baseline_loss.iloc[0]),
    }
    for kind, part in table.groupby("intervention"):
        summary[str(kind)] = {
            metric: {
                "min": float(part[metric].min()),
                "mean": float(part[metric].mean()),
                "max": float(part[metric].max()),
            }
            for metric in ("top1_agreement", "relative_accuracy", "kl")
        }
    return summary


EXPERIMENT = Experiment(NAME, __doc__.splitlines()[0], ExperimentConfig, compute)
