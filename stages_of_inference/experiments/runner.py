"""Run experiments on models: load each model once, then compute, time, save and resume each experiment.

For each model the runner checks the budgets, loads the model and the corpus windows
once, claims ``OUT/<model>/`` for this run (:func:`stages_of_inference.runs.identity.claim_folder`:
a folder holding another run is refused unless ``overwrite``, which clears it once,
before the first experiment), then runs the experiments one after the other on that
same model. The experiments that read activations from the windows (the lens, attention,
norms, CKA: :attr:`~stages_of_inference.experiments.protocol.Experiment.activations`)
share one forward per batch when two or more of them run, within ``--shared-gb``
(:func:`stages_of_inference.activations.shared_forwards`). Each experiment's tables
(``.parquet``), summary (``<name>.json``, with
its ``wall_seconds``) and figures (standalone ``.html``) are written atomically; the
experiment is then recorded, with its wall seconds and its own options, in the
folder's :data:`FINISHED_FILE`. Running the same command again keeps the finished
experiments whose options are unchanged and runs the rest, so an interrupted run
resumes where it stopped (the robustness sweep also resumes within itself, batch by
batch). Last, ``manifest.json`` records the toolkit and library versions, the run's
identity, the config, the corpus (its name, the versions of the packages carrying it
and the ids of the documents in the windows:
:class:`~stages_of_inference.corpus.CorpusRecord`) and each experiment's time and options.

Example:
    >>> from stages_of_inference.experiments.norms import EXPERIMENT as NORMS
    >>> config = ExperimentConfig(model="smollm2-135m", tokens=1024, seq_len=64)
    >>> run_experiments([NORMS], config)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import platform
import time
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
from jaxtyping import Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

import stages_of_inference
from stages_of_inference.activations import SharedForwards, shared_forwards
from stages_of_inference.corpus import CorpusRecord, load_corpus_with_record
from stages_of_inference.experiments.command import parse_config, run_main
from stages_of_inference.experiments.config import (
    ExperimentConfig,
    check_budgets,
    output_folder,
)
from stages_of_inference.experiments.protocol import Experiment, Results
from stages_of_inference.models import load_model
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.runs.atomic import (
    read_json,
    write_json,
    write_parquet,
    write_text,
)
from stages_of_inference.runs.identity import IDENTITY_FILE, claim_folder, tokens_sha256

FINISHED_FILE = "finished.json"
"""In each model folder: run name (the experiment's, or ``<name>_<variant>``) -> ``{"seconds": wall seconds, "options": its own options}``."""

MANIFEST_FILE = "manifest.json"

LIBRARIES = ("torch", "transformer-lens", "transformers", "gguf", "numpy", "pandas", "plotly")


def run_experiments(
    experiments: Sequence[Experiment[Any]], config: ExperimentConfig, *, models: Sequence[str] | None = None
) -> pd.DataFrame:
    """Run ``experiments`` on each of ``models`` (default: ``config.model``), loading each model once.

    ``config`` holds every field of every experiment's config (the run settings and
    each experiment's options); each model's results go to ``config.out/<model>/``.

    Returns:
        One row per model and experiment: ``model``, ``experiment`` (its run name,
            ``robustness_blocks`` for a variant), ``seconds`` (the
        wall time of the run that computed it, for an experiment kept from earlier).

    Raises:
        ConfigError: An impossible budget, before any model is loaded or folder claimed.
        ResultsError: A results folder holds another run (and not ``config.overwrite``).
    """
    check_budgets(config)
    names = list(models) if models is not None else [config.model]
    rows: list[dict[str, object]] = []
    for position, model_name in enumerate(names, start=1):
        model_config = dataclasses.replace(run_settings(config), model=model_name)
        seconds = _run_on_model(
            experiments, config, model_config, label=f"[model {position}/{len(names)}: {model_name}]"
        )
        rows.extend({"model": model_name, "experiment": name, "seconds": s} for name, s in seconds.items())
    return pd.DataFrame(rows, columns=["model", "experiment", "seconds"])


def run_settings(config: ExperimentConfig) -> ExperimentConfig:
    """The run settings of ``config`` alone (the fields every experiment shares)."""
    return ExperimentConfig(**{f.name: getattr(config, f.name) for f in dataclasses.fields(ExperimentConfig)})


def _run_on_model(
    experiments: Sequence[Experiment[Any]], config: ExperimentConfig, model_config: ExperimentConfig, *, label: str
) -> dict[str, float]:
    """Every experiment on one model (loaded here, once, and released on return); their wall seconds."""
    model, tokens, folder, corpus = prepare(model_config)
    model_config.overwrite = False  # the folder is this run's now: nothing may clear it again
    finished = read_finished(folder)
    names, pending = [], []
    for experiment in experiments:
        experiment_config = experiment.config_for(config, model=model_config.model)
        experiment_config.overwrite = False
        options = experiment.options(experiment_config)
        name = experiment.run_name(experiment_config)
        names.append(name)
        earlier = finished.get(name)
        if earlier is not None and earlier["options"] == options:
            print(f"{label} {name}: finished earlier ({earlier['seconds']:.0f} s), kept", flush=True)
        else:
            pending.append((experiment, experiment_config, options, name))
    reads = [e.activations(model, c) if e.activations else [] for e, c, _, _ in pending]
    with _shared_forwards(model, tokens, model_config, reads) as shared:
        for position, (experiment, experiment_config, options, name) in enumerate(pending):
            earlier = finished.get(name)
            changed = f" (again: it finished earlier with {earlier['options']})" if earlier is not None else ""
            print(f"{label} {name}{changed}", flush=True)
            began = time.perf_counter()
            results = experiment.compute(model, tokens, experiment_config)
            save_results(results, folder, name, began=began)
            finished[name] = {"seconds": round(time.perf_counter() - began, 1), "options": options}
            write_json(finished, folder / FINISHED_FILE)
            if shared is not None:
                shared.keep_only(hook for later in reads[position + 1 :] for hook in later)
    if shared is not None:
        print(
            f"{label} shared forwards: {shared.forwards} forwards, {shared.served} batches served from memory "
            f"(at most {shared.peak_bytes / 2**30:.2f} GiB kept)",
            flush=True,
        )
    write_manifest(model_config, folder, corpus)
    return {name: float(finished[name]["seconds"]) for name in names}


@contextlib.contextmanager
def _shared_forwards(
    model: LoadedModel, tokens: Tensor, config: ExperimentConfig, readers: list[list[str]]
) -> Iterator[SharedForwards | None]:
    """Shared forwards for the experiments to run, when two or more read activations and the budget allows."""
    if sum(1 for reads in readers if reads) < 2 or config.shared_gb == 0:
        yield None
        return
    names = {name for reads in readers for name in reads}
    budget = int(config.shared_gb * 2**30)
    with shared_forwards(model, tokens, names, batch_size=config.batch_size, budget_bytes=budget) as shared:
        yield shared


def prepare(config: ExperimentConfig) -> tuple[TransformerBridge, Int[Tensor, "batch pos"], Path, CorpusRecord]:
    """Load the model and corpus windows of a config and claim its output folder for this run.

    Returns the model, the windows, the folder and the record of the windows' documents.

    A folder holding the same run is reused (finished work is resumed); one holding
    a different run raises ResultsError unless ``config.overwrite``.
    """
    check_budgets(config)
    model = load_model(
        config.model,
        compatibility_mode=not config.raw_weights,
        trust_remote_code=config.trust_remote_code,
        device=config.device,
        dtype=config.dtype,
    )
    tokens, corpus = load_corpus_with_record(
        config.corpus, model, n_tokens=config.tokens, seq_len=config.seq_len, seed=config.seed
    )
    folder = output_folder(config)
    claim_folder(folder, run_identity(config, model, tokens), overwrite=config.overwrite)
    return model, tokens, folder, corpus


def run_identity(config: ExperimentConfig, model: LoadedModel, tokens: Tensor) -> dict[str, object]:
    """Everything that determines a run's numbers (see :mod:`stages_of_inference.runs.identity`)."""
    return {
        "toolkit_version": stages_of_inference.__version__,
        "model": model.soi_source.identity(),
        "corpus": config.corpus,
        "tokens": config.tokens,
        "seq_len": config.seq_len,
        "seed": config.seed,
        "batch_size": config.batch_size,
        "tokens_sha256": tokens_sha256(tokens),
    }


def save_results(results: Results, folder: Path, name: str, *, began: float) -> None:
    """Write the tables, then the summary (with the seconds since ``began``), then the figures, each atomically."""
    for stem, table in results.tables.items():
        write_parquet(table, folder / f"{stem}.parquet")
    write_json({**results.summary, "wall_seconds": round(time.perf_counter() - began, 1)}, folder / f"{name}.json")
    for stem, figure in results.figures.items():  # plotly.js embedded: the page works offline
        write_text(figure.to_html(include_plotlyjs=True, full_html=True), folder / f"{stem}.html")
    print(f"{name}: {', '.join(results.tables)} tables, summary and figures in {folder}", flush=True)


def read_finished(folder: Path) -> dict[str, dict[str, Any]]:
    """The experiments finished in ``folder``, each with its wall seconds and options.

    An entry in another shape (an older toolkit's bare seconds) is not trusted: that
    experiment runs again.
    """
    path = folder / FINISHED_FILE
    entries = read_json(path) if path.exists() else {}
    return {
        str(name): entry
        for name, entry in entries.items()
        if isinstance(entry, dict) and {"seconds", "options"} <= set(entry)
    }


def write_manifest(config: ExperimentConfig, folder: Path, corpus: CorpusRecord) -> Path:
    """Write ``manifest.json``: everything needed to rerun and compare one model's results.

    ``corpus`` is the record of the run's windows (:meth:`CorpusRecord.to_json`).

    ``wall_seconds`` is the sum of the finished experiments' own times, over every
    invocation that contributed (a resumed run keeps the times of the experiments it kept).
    """
    finished = read_finished(folder)
    return write_json(
        {
            "toolkit_version": metadata.version("stages-of-inference"),
            "libraries": {name: metadata.version(name) for name in LIBRARIES},
            "python": platform.python_version(),
            "platform": platform.platform(),
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(config).items()},
            "run": read_json(folder / IDENTITY_FILE),
            "corpus": corpus.to_json(),
            "experiments": list(finished),
            "wall_seconds": round(sum(entry["seconds"] for entry in finished.values()), 1),
            "experiment_seconds": {name: entry["seconds"] for name, entry in finished.items()},
            "experiment_options": {name: entry["options"] for name, entry in finished.items()},
        },
        folder / MANIFEST_FILE,
    )


def main(experiment: Experiment[Any], argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Command line of one experiment (``python -m experiments.<name>``); returns the exit code."""
    return run_main(
        lambda: run_experiments(
            [experiment], parse_config(experiment.config_type, argv, experiment.description, prog=prog)
        )
    )
