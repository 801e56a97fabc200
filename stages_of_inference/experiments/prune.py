"""Plan which layers to delete by measuring joint deletions; compare with Block Influence and angular distance.

Tables ``prune_steps`` (the planner's set per budget, selection and held-out metrics),
``prune_comparison`` (planner, Block Influence and angular distance per budget, held
out, with CIs), ``prune_layer_scores`` and ``prune_angular_distance`` (the baselines'
scores); summary ``prune.json`` (the plan, and per budget whether the planner beats or
ties both baselines on held-out KL); figure ``prune.html``. Not part of the paper's
reproduction: it runs when named (``python -m experiments.prune``,
``stages-of-inference prune``, or ``run --experiments prune``). See docs/pruning.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from jaxtyping import Int
from torch import Tensor

from stages_of_inference.errors import ResultsError
from stages_of_inference.experiments.config import ExperimentConfig, option
from stages_of_inference.experiments.protocol import Experiment, Results
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.plots.pruning import plot_pruning
from stages_of_inference.pruning.plan import METHODS, OBJECTIVE, PrunePlan, prune_plan
from stages_of_inference.runs.atomic import read_json

NAME = "prune"
TABLES = {
    "steps": "prune_steps",
    "comparison": "prune_comparison",
    "layer_scores": "prune_layer_scores",
    "angular_distances": "prune_angular_distance",
}
""":class:`PrunePlan` table -> the file stem it is saved under."""


@dataclass
class PruneConfig(ExperimentConfig):
    """The experiment settings plus the planner's budget, search and held-out split."""

    layers: int = option(4, "most layers to delete (every budget 1..LAYERS is planned)")
    strategy: str = option("greedy", "search: 'greedy' (best set per step) or 'beam' (best BEAM_WIDTH sets)")
    beam_width: int = option(4, "sets kept per step by --strategy beam")
    held_out: float = option(0.5, "fraction of the windows (the last ones) held out to evaluate the plans")


def compute(model: LoadedModel, tokens: Int[Tensor, "batch pos"], config: PruneConfig) -> Results:
    """Plan every budget up to ``config.layers`` and evaluate the plans and both baselines held out."""
    plan = prune_plan(
        model,
        tokens,
        config.layers,
        strategy=config.strategy,
        beam_width=config.beam_width,
        held_out=config.held_out,
        batch_size=config.batch_size,
        seed=config.seed,
    )
    return Results(
        tables={stem: getattr(plan, field) for field, stem in TABLES.items()},
        summary=summarize_plan(plan, model_name=config.model),
        figures={NAME: plot_pruning(plan.comparison, title=f"{config.model}: layers deleted by each method, held out")},
    )


def summarize_plan(plan: PrunePlan, *, model_name: str) -> dict[str, Any]:
    """The plan's metadata (what :func:`read_plan` needs) and, per budget, the planner against each baseline.

    ``beats_or_ties`` holds when the planner's held-out KL is at most each baseline's.
    """
    comparison = plan.comparison.set_index(["n_deleted", "method"])
    budgets = {}
    for budget in range(1, plan.max_layers + 1):
        kl = {method: float(comparison.loc[(budget, method), "kl"]) for method in METHODS}
        budgets[str(budget)] = {
            "deleted_layers": plan.deleted_layers(budget),
            "held_out_kl": kl,
            "beats_or_ties": all(kl["planner"] <= kl[method] for method in METHODS[1:]),
        }
    return {
        "model": model_name,
        "model_identity": plan.model_identity,
        "n_layers": plan.n_layers,
        "strategy": plan.strategy,
        "beam_width": plan.beam_width,
        "objective": OBJECTIVE,
        "tokens_sha256": plan.tokens_sha256,
        "n_held_out_tokens": int(plan.comparison.n_tokens.iloc[0]),
        "deleted_layers": plan.deleted_layers(),
        "kept_layers": plan.kept_layers(),
        "budgets": budgets,
    }


def read_plan(folder: Path) -> PrunePlan:
    """The :class:`PrunePlan` saved by this experiment in a model's results folder.

    Raises:
        ResultsError: A table or the summary is missing or damaged.
    """
    summary = read_json(folder / f"{NAME}.json")
    tables = {field: _read_table(folder / f"{stem}.parquet") for field, stem in TABLES.items()}
    return PrunePlan(
        model=summary["model"],
        model_identity=summary["model_identity"],
        n_layers=summary["n_layers"],
        strategy=summary["strategy"],
        beam_width=summary["beam_width"],
        tokens_sha256=summary["tokens_sha256"],
        **tables,
    )


def _read_table(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise ResultsError(f"cannot read {path}: {error}; run the prune experiment again") from None


EXPERIMENT = Experiment(NAME, __doc__.splitlines()[0], PruneConfig, compute)
