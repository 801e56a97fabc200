"""The full reproduction: every experiment of the registry on one or more models, then the report.

:class:`ReproduceConfig` holds the run settings, every experiment's own options (so
``--k``, ``--prompt``, ``--hook``, ... can be set for the whole reproduction), the
models and the experiments to run. :func:`reproduce` runs them with
:func:`stages_of_inference.experiments.runner.run_experiments` (each model loaded
once), or with ``--backend ray`` as one Ray task per model and experiment
(:mod:`stages_of_inference.distributed.fan_out`), prints the time table and rebuilds
``OUT/report.html``.

Example:
    >>> config = ReproduceConfig(models=["smollm2-135m"], tokens=1024, k=3)
    >>> [e.name for e in chosen_experiments(ReproduceConfig(experiments=["norms", "attention"]))]
    ['attention', 'norms']
    >>> [e.run_name(config) for e in chosen_experiments(ReproduceConfig(experiments=["robustness"]))]
    ['robustness']
    >>> beyond = ReproduceConfig(experiments=["robustness"], families=["default", "blocks", "components"])
    >>> [e.run_name(config) for e in chosen_experiments(beyond)]
    ['robustness', 'robustness_blocks', 'robustness_components']
    >>> reproduce(config)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from stages_of_inference.errors import ConfigError
from stages_of_inference.experiments import registry, robustness
from stages_of_inference.experiments.attention import AttentionConfig
from stages_of_inference.experiments.cka import CKAConfig
from stages_of_inference.experiments.command import parse_config, run_main
from stages_of_inference.experiments.config import option
from stages_of_inference.experiments.logit_lens import LogitLensConfig
from stages_of_inference.experiments.neurons import NeuronsConfig
from stages_of_inference.experiments.protocol import Experiment
from stages_of_inference.experiments.prune import PruneConfig
from stages_of_inference.experiments.runner import run_experiments
from stages_of_inference.experiments.self_repair import SelfRepairConfig
from stages_of_inference.experiments.subjoiner import SubjoinerConfig
from stages_of_inference.models import BUNDLED_MODELS
from stages_of_inference.report import build_report

DESCRIPTION = "Run every experiment of the paper on one or more models, model by model, then build the report."

DEFAULT_FAMILIES = ("default",)
"""The robustness families the reproduction sweeps unless ``--families`` says otherwise
(why these: docs/interventions.md, "Families in the reproduction")."""


@dataclass
class ReproduceConfig(
    PruneConfig, SelfRepairConfig, SubjoinerConfig, CKAConfig, NeuronsConfig, AttentionConfig, LogitLensConfig
):
    """The run settings and every experiment's options, applied to several models.

    The bases are the configs of the experiments that have options, last first, so
    that the flags appear in registry order (then the extra experiments'); ``model`` is
    unused (``models`` replaces it).
    """

    models: list[str] = option(list(BUNDLED_MODELS), "models to run, one after the other")
    experiments: list[str] = option(
        [e.name for e in registry.EXPERIMENTS],
        "experiments to run (in registry order); beyond the paper: commit_depth, self_repair, prune",
    )
    families: list[str] = option(
        list(DEFAULT_FAMILIES),
        "intervention families the robustness experiment sweeps, each into its own robustness_<family> "
        "results (default|blocks|components|swaps-all|repeats or a JSON file of layer orders)",
    )


def chosen_experiments(config: ReproduceConfig) -> list[Experiment[Any]]:
    """The registry's experiments named in ``config.experiments``, in registry order.

    The robustness experiment runs once per family of ``config.families``, in that order.

    Raises:
        ConfigError: A name is not an experiment of the registry, or a family is unknown.
    """
    unknown = [name for name in config.experiments if name not in registry.BY_NAME]
    if unknown:
        raise ConfigError(
            f"no experiment named {', '.join(unknown)} (--experiments); choose from {', '.join(registry.BY_NAME)}"
        )
    chosen: list[Experiment[Any]] = []
    for name, experiment in registry.BY_NAME.items():
        if name == robustness.NAME and name in config.experiments:
            chosen.extend(robustness.family_experiment(family) for family in dict.fromkeys(config.families))
        elif name in config.experiments:
            chosen.append(experiment)
    return chosen


def reproduce(config: ReproduceConfig) -> pd.DataFrame:
    """Run the chosen experiments on every model, print their times, rebuild the report.

    Returns:
        One row per model and experiment: ``model``, ``experiment``, ``seconds``.
    """
    if config.backend == "ray":
        from stages_of_inference.distributed.fan_out import run_experiments_on_ray

        summary = run_experiments_on_ray(chosen_experiments(config), config, models=config.models)
    else:
        summary = run_experiments(chosen_experiments(config), config, models=config.models)
    print("\n" + summary.to_string(index=False))
    report = build_report(Path(config.out))
    print(f"\nresults in {Path(config.out).resolve()}; open the report: {report.resolve()}")
    return summary


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Command line of the reproduction; returns the exit code."""
    return run_main(lambda: reproduce(parse_config(ReproduceConfig, argv, DESCRIPTION, prog=prog, exclude={"model"})))
