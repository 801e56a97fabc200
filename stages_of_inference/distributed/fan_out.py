"""The reproduction on Ray: one Ray task per model and experiment, bookkeeping on the driver.

For each model the driver does what the local runner does first
(:func:`~stages_of_inference.experiments.runner.prepare`: load the model and the
corpus windows, claim ``OUT/<model>/``) and reads which experiments finished earlier
with the same options. Every other experiment becomes one Ray task, which loads the
model again (:class:`~stages_of_inference.distributed.model_spec.ModelSpec`, checked
to be the driver's), computes the experiment on the driver's windows (its robustness
sweep in the task itself) and writes its tables, summary and figures atomically
into the model's folder; the experiments of a model write distinct files. Only the
driver writes ``finished.json`` and ``manifest.json``, as each task ends, so no two
processes ever write the same file, and a rerun after any interruption keeps what
finished. A task whose worker dies is run again (:data:`MAX_RETRIES`).

Example:
    >>> from stages_of_inference.experiments.reproduce import ReproduceConfig
    >>> config = ReproduceConfig(models=["smollm2-135m", "gemma-3-270m"], backend="ray")
    >>> run_experiments_on_ray(chosen_experiments(config), config, models=config.models)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from jaxtyping import Int
from torch import Tensor

from stages_of_inference.corpus import CorpusRecord
from stages_of_inference.distributed.model_spec import ModelSpec
from stages_of_inference.distributed.ray_backend import error_cause, import_ray, join_ray
from stages_of_inference.errors import DistributedError
from stages_of_inference.experiments.config import ExperimentConfig, check_budgets
from stages_of_inference.experiments.protocol import Experiment
from stages_of_inference.experiments.runner import (
    FINISHED_FILE,
    prepare,
    read_finished,
    run_settings,
    save_results,
    write_manifest,
)
from stages_of_inference.runs.atomic import write_json

MAX_RETRIES = 3
"""Times an experiment's task is run again after its worker died."""


def run_experiments_on_ray(
    experiments: Sequence[Experiment[Any]], config: ExperimentConfig, *, models: Sequence[str]
) -> pd.DataFrame:
    """Run every unfinished (model, experiment) as a Ray task; the same folders and table as the local runner.

    Returns:
        One row per model and experiment: ``model``, ``experiment``, ``seconds``.

    Raises:
        ConfigError: An impossible budget, or Ray is not installed.
        ResultsError: A results folder holds another run (and not ``config.overwrite``).
        DistributedError: A task failed, or its worker died more often than it may.
    """
    check_budgets(config)
    ray = import_ray()
    joined = join_ray(ray, config.address or None)
    try:
        compute = ray.remote(max_retries=MAX_RETRIES)(compute_experiment)
        folders: dict[str, Path] = {}
        corpora: dict[str, CorpusRecord] = {}
        finished: dict[str, dict[str, dict[str, Any]]] = {}
        running: dict[Any, tuple[str, str]] = {}
        for model_name in models:
            model_config = dataclasses.replace(run_settings(config), model=model_name)
            model, tokens, folders[model_name], corpora[model_name] = prepare(model_config)
            spec = ModelSpec.of(model, {"trust_remote_code": config.trust_remote_code})
            del model
            finished[model_name] = read_finished(folders[model_name])
            for experiment in experiments:
                experiment_config = experiment.config_for(config, model=model_name)
                options = experiment.options(experiment_config)
                name = experiment.run_name(experiment_config)
                earlier = finished[model_name].get(name)
                if earlier is not None and earlier["options"] == options:
                    print(f"[{model_name}] {name}: finished earlier ({earlier['seconds']:.0f} s), kept")
                    continue
                local = dataclasses.replace(experiment_config, overwrite=False, backend="local", workers=1, address="")
                reference = compute.remote(experiment, local, spec, tokens, folders[model_name])
                running[reference] = (model_name, name)
                print(f"[{model_name}] {name}: sent to Ray", flush=True)
        while running:
            (ready,), _ = ray.wait(list(running), num_returns=1)
            model_name, name = running.pop(ready)
            try:
                seconds, options = ray.get(ready)
            except (ray.exceptions.RayTaskError, ray.exceptions.WorkerCrashedError) as error:
                raise DistributedError(
                    f"{name} on {model_name} failed on Ray ({error_cause(error)}); "
                    "finished experiments are kept: run the same command again to resume"
                ) from None
            finished[model_name][name] = {"seconds": seconds, "options": options}
            write_json(finished[model_name], folders[model_name] / FINISHED_FILE)
            print(f"[{model_name}] {name}: finished on Ray ({seconds:.0f} s)", flush=True)
        for model_name, folder in folders.items():
            write_manifest(dataclasses.replace(run_settings(config), model=model_name), folder, corpora[model_name])
    finally:
        if joined:
            ray.shutdown()
    rows = [
        {
            "model": model_name,
            "experiment": name,
            "seconds": float(finished[model_name][name]["seconds"]),
        }
        for model_name in models
        for name in (experiment.run_name(experiment.config_for(config, model=model_name)) for experiment in experiments)
    ]
    return pd.DataFrame(rows, columns=["model", "experiment", "seconds"])


def compute_experiment(
    experiment: Experiment[Any],
    config: ExperimentConfig,
    spec: ModelSpec,
    tokens: Int[Tensor, "batch pos"],
    folder: Path,
) -> tuple[float, dict[str, Any]]:
    """One Ray task: load the model, compute the experiment, save its results; its wall seconds and options."""
    began = time.perf_counter()
    model = spec.load()
    results = experiment.compute(model, tokens, config)
    save_results(results, folder, experiment.run_name(config), began=began)
    return round(time.perf_counter() - began, 1), experiment.options(config)
