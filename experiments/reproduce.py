"""Run every experiment of the paper on one or more models, model by model.

Each model's results go to ``OUT/<model>/`` (parquet tables, JSON summaries, HTML
figures) with a ``manifest.json`` recording the toolkit and library versions, the
model's file hash, the corpus, token budget, seed, weight processing and wall time.
Each finished experiment is recorded in the folder's ``finished.json``; running the
same command again keeps those and runs the rest, so an interrupted reproduction
resumes where it stopped (the robustness sweep also resumes within itself, batch by
batch). ``--overwrite`` clears a model's folder once, before its first experiment.

Example:
    python -m experiments.reproduce --models gemma-3-270m smollm2-135m --tokens 4096 --out results/
"""

from __future__ import annotations

import dataclasses
import importlib
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pandas as pd

from experiments.common import ExperimentConfig, build_parser, option, prepare, run_main
from experiments.report import build_report
from stages_of_inference.models import EMBEDDED_MODELS
from stages_of_inference.runs.atomic import read_json, write_json
from stages_of_inference.runs.identity import IDENTITY_FILE

EXPERIMENTS = ("robustness", "logit_lens", "attention", "norms", "neurons", "cka", "subjoiner")
"""The experiment modules run for every model, in this order."""

FINISHED_FILE = "finished.json"
"""In each model folder: experiment name -> wall seconds, for the experiments this run finished."""

LIBRARIES = ("torch", "transformer-lens", "transformers", "gguf", "numpy", "pandas", "plotly")


@dataclass
class ReproduceConfig(ExperimentConfig):
    """The reproduction's inputs: the experiment settings, applied to several models."""

    models: list[str] = option(list(EMBEDDED_MODELS), "models to run, one after the other")


def reproduce(config: ReproduceConfig) -> pd.DataFrame:
    """Run :data:`EXPERIMENTS` for every model; returns one summary row per model and experiment.

    Each model's folder is claimed once, before its first experiment (``--overwrite``
    clears it then, and only then). An experiment recorded in the folder's
    :data:`FINISHED_FILE` is kept, not run again.
    """
    rows = []
    for position, model_name in enumerate(config.models, start=1):
        single = ExperimentConfig(**{f.name: getattr(config, f.name) for f in dataclasses.fields(ExperimentConfig)})
        single.model = model_name
        folder = claim_model_folder(single)
        single.overwrite = False  # the folder is this run's now: no experiment may clear it again
        finished = read_finished(folder)
        for name in EXPERIMENTS:
            label = f"[model {position}/{len(config.models)}: {model_name}] {name}"
            if name in finished:
                print(f"{label}: finished earlier ({finished[name]:.0f} s), kept", flush=True)
            else:
                print(label, flush=True)
                began = time.perf_counter()
                importlib.import_module(f"experiments.{name}").run(single)
                finished[name] = round(time.perf_counter() - began, 1)
                write_json(finished, folder / FINISHED_FILE)
            rows.append({"model": model_name, "experiment": name, "seconds": finished[name]})
        write_manifest(single, folder, wall_seconds=sum(finished.values()))
    summary = pd.DataFrame(rows)
    print("\n" + summary.to_string(index=False))
    report = build_report(Path(config.out))
    print(f"\nresults in {Path(config.out).resolve()}; open the report: {report.resolve()}")
    return summary


def claim_model_folder(config: ExperimentConfig) -> Path:
    """Claim a model's folder for this run (loading the model and corpus to identify it)."""
    model, tokens, folder = prepare(config)
    del model, tokens
    return folder


def read_finished(folder: Path) -> dict[str, float]:
    """The experiments this run finished in ``folder``, with their wall seconds."""
    path = folder / FINISHED_FILE
    return {str(k): float(v) for k, v in read_json(path).items()} if path.exists() else {}


def write_manifest(config: ExperimentConfig, folder: Path, *, wall_seconds: float) -> Path:
    """Write ``manifest.json``: everything needed to rerun and compare this model's results.

    ``wall_seconds`` is the sum of the experiments' own times, over every invocation
    that contributed (a resumed run keeps the times of the experiments it kept).
    """
    return write_json(
        {
            "toolkit_version": metadata.version("stages-of-inference"),
            "libraries": {name: metadata.version(name) for name in LIBRARIES},
            "python": platform.python_version(),
            "platform": platform.platform(),
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(config).items()},
            "run": read_json(folder / IDENTITY_FILE),
            "experiments": list(EXPERIMENTS),
            "wall_seconds": round(wall_seconds, 1),
            "experiment_seconds": read_finished(folder),
        },
        folder / "manifest.json",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""

    def body(args: Sequence[str] | None) -> None:
        namespace = build_parser(__doc__.splitlines()[0], ReproduceConfig, exclude={"model"}).parse_args(args)
        reproduce(ReproduceConfig(**vars(namespace)))

    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
