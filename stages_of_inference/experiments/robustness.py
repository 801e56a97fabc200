"""Delete or swap every layer and measure what survives (paper Figure 1 and Table 1), or run another family.

``--interventions default`` (the paper's: every deletion, every adjacent swap) writes
table ``robustness`` (one row per intervention), summary ``robustness.json`` and
figure ``robustness.html``, checkpointing finished batches in
``OUT/<model>/robustness_shards/``; a rerun of the same command resumes there.

Any other family (``blocks``, ``components``, ``swaps-all``, ``repeats``, or a JSON
file of layer orders, see :func:`~stages_of_inference.interventions.resolve_interventions`)
is a variant named ``robustness_<family>`` (a file: ``robustness_<stem>-<hash>``,
:func:`~stages_of_inference.interventions.family_name`): its own table, summary,
figure, checkpoint folder and entry in ``finished.json``, so running one family never
replaces another's results. With ``--backend ray --workers N`` the batches are computed
by N Ray workers and the table is the same.

Example:
    >>> EXPERIMENT.run_name(RobustnessConfig()), EXPERIMENT.run_name(RobustnessConfig(interventions="blocks"))
    ('robustness', 'robustness_blocks')
    >>> RobustnessConfig(interventions="no-such-family")
    Traceback (most recent call last):
    ...
    stages_of_inference.errors.ConfigError: --interventions 'no-such-family' is neither a family (default, blocks, components, swaps-all, repeats) nor a JSON file of layer orders
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from jaxtyping import Int
from torch import Tensor

from stages_of_inference.experiments.config import ExperimentConfig, option, output_folder
from stages_of_inference.experiments.protocol import Experiment, Results
from stages_of_inference.interventions import family_name, resolve_interventions
from stages_of_inference.layers import n_layers_of
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.plots.families import (
    block_grid,
    plot_all_swaps,
    plot_block_deletions,
    plot_component_deletions,
    swap_grid,
)
from stages_of_inference.plots.robustness import plot_robustness
from stages_of_inference.runs.shards import sweep_shards_folder
from stages_of_inference.sweep import robustness_sweep

NAME = "robustness"
DEFAULT_FAMILY = "default"
METRICS = ("top1_agreement", "relative_accuracy", "kl")
"""The retention metrics summarised per intervention kind."""


@dataclass
class RobustnessConfig(ExperimentConfig):
    """The experiment settings plus which family of interventions to sweep."""

    interventions: str = option(
        DEFAULT_FAMILY,
        "default|blocks|components|swaps-all|repeats, or a JSON file of layer orders; "
        "each family writes its own robustness_<family> results",
        variant=True,
    )

    def __post_init__(self) -> None:
        family_name(self.interventions)  # an unknown family or a bad file is refused before any model loads


def variant(config: RobustnessConfig) -> str:
    """The variant a config selects: ``""`` for the paper's family, else its :func:`family_name`."""
    name = family_name(config.interventions)
    return "" if name == DEFAULT_FAMILY else name


def compute(model: LoadedModel, tokens: Int[Tensor, "batch pos"], config: RobustnessConfig) -> Results:
    """Sweep the chosen family (resuming from its own checkpoint folder)."""
    name = EXPERIMENT.run_name(config)
    n_layers = n_layers_of(model)
    table = robustness_sweep(
        model,
        tokens,
        resolve_interventions(config.interventions, n_layers),
        batch_size=config.batch_size,
        seed=config.seed,
        checkpoint_dir=sweep_shards_folder(output_folder(config), name),
        backend=config.backend,
        workers=config.workers,
        address=config.address or None,
        load_options={"trust_remote_code": config.trust_remote_code} if config.backend == "ray" else None,
    )
    family = family_name(config.interventions)
    return Results(
        tables={name: table},
        summary=summarize_table(table, model_name=config.model, n_layers=n_layers, family=family),
        figures={name: family_figure(table, family, model_name=config.model)},
    )


def family_figure(table: pd.DataFrame, family: str, *, model_name: str) -> go.Figure:
    """The figure that shows a family at a glance: a heatmap, component curves, or metrics by depth."""
    if family == "blocks":
        return plot_block_deletions(table, title=f"{model_name}: deleting a block of layers")
    if family == "swaps-all":
        return plot_all_swaps(table, title=f"{model_name}: KL when swapping layers i and j")
    if family == "components":
        return plot_component_deletions(table, title=f"{model_name}: deleting attention, MLP or the whole layer")
    if family == DEFAULT_FAMILY:
        return plot_robustness(table, title=f"{model_name}: what survives deleting or swapping a layer")
    return plot_robustness(table, title=f"{model_name}: what survives ({family})")


def summarize_table(
    table: pd.DataFrame, *, model_name: str, n_layers: int, family: str = DEFAULT_FAMILY
) -> dict[str, Any]:
    """Min / mean / max over interventions of the retention metrics, per intervention kind.

    The paper's family gives exactly that. Any other family adds its name, its number
    of interventions, the most damaging intervention of each kind (highest KL) and, for
    ``blocks`` and ``swaps-all``, the mean KL and relative accuracy by block width or
    swap distance.

    Example:
        >>> table = pd.DataFrame({"intervention": "delete_block", "layer": [0, 1, 0],
        ...     "label": ["delete layers 0-1", "delete layers 1-2", "delete layers 0-2"],
        ...     "kl": [1.0, 2.0, 3.0], "relative_accuracy": [0.9, 0.8, 0.5], "top1_agreement": 0.7,
        ...     "n_tokens": 100, "baseline_accuracy": 0.4, "baseline_loss": 3.0})
        >>> summary = summarize_table(table, model_name="m", n_layers=3, family="blocks")
        >>> summary["most_damaging"]["delete_block"], summary["by_width"]["kl"]
        ({'label': 'delete layers 0-2', 'kl': 3.0}, {'2': 1.5, '3': 3.0})
    """
    summary: dict[str, Any] = {
        "model": model_name,
        "n_layers": n_layers,
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
            for metric in METRICS
        }
    if family == DEFAULT_FAMILY:
        return summary
    summary["interventions"] = family
    summary["n_interventions"] = len(table)
    summary["most_damaging"] = {
        str(kind): {"label": str(part.label.loc[part.kl.idxmax()]), "kl": float(part.kl.max())}
        for kind, part in table.groupby("intervention")
    }
    if family == "blocks":
        summary["by_width"] = {metric: _row_means(block_grid(table, metric)) for metric in ("kl", "relative_accuracy")}
    if family == "swaps-all":
        summary["by_distance"] = {
            metric: _diagonal_means(swap_grid(table, metric)) for metric in ("kl", "relative_accuracy")
        }
    return summary


def _row_means(grid: pd.DataFrame) -> dict[str, float]:
    """The mean of each row of a heatmap matrix over its filled cells, keyed by the row's label."""
    return {str(index): float(row.mean()) for index, row in grid.iterrows()}


def _diagonal_means(grid: pd.DataFrame) -> dict[str, float]:
    """The mean over the cells ``j - i == d`` of an i x j matrix, for each distance ``d``."""
    cells = grid.stack().dropna().rename("value").reset_index()
    cells = cells.assign(distance=cells.j - cells.i)
    return {str(d): float(part.value.mean()) for d, part in cells.groupby("distance")}


EXPERIMENT = Experiment(NAME, __doc__.splitlines()[0], RobustnessConfig, compute, variant=variant)


def family_experiment(spec: str) -> Experiment[ExperimentConfig]:
    """The experiment fixed to the family ``spec``, for a run that sweeps several (the reproduction's ``--families``).

    It takes only the run settings and is recorded exactly as ``--interventions SPEC``
    would record it (same run name, same options), so either finds the other's
    results finished.

    Raises:
        ConfigError: ``spec`` is neither a family nor a readable JSON list of orders.

    Example:
        >>> family_experiment("components").run_name(ExperimentConfig())
        'robustness_components'
    """
    family_name(spec)

    def with_family(config: ExperimentConfig) -> RobustnessConfig:
        return RobustnessConfig(
            **{f.name: getattr(config, f.name) for f in fields(ExperimentConfig)}, interventions=spec
        )

    return Experiment(
        NAME,
        EXPERIMENT.description,
        ExperimentConfig,
        lambda model, tokens, config: compute(model, tokens, with_family(config)),
        variant=lambda config: variant(with_family(config)),
    )
