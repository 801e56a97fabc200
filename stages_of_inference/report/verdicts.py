"""The verdicts of a results folder: each model folder read as evidence, and ``verdicts.json`` written."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from stages_of_inference.report.results import ModelResults, find_models, neuron_counts_of
from stages_of_inference.runs.atomic import write_json
from stages_of_inference.verdicts import ModelEvidence, Verdict, all_verdicts
from stages_of_inference.verdicts.evidence import read_shards
from stages_of_inference.verdicts.stats import ALPHA

VERDICTS_FILE = "verdicts.json"
"""Written at the results root (every verdict) and in each model folder (that model's)."""


def model_evidence(model: ModelResults) -> ModelEvidence:
    """One model folder as evidence: its tables (neuron counts derived as the report does) and its shards."""
    tables = dict(model.tables)
    counts = neuron_counts_of(model)
    if counts is not None:
        tables["neuron_counts"] = counts
    rows, missing = read_shards(model.folder, model.get("robustness"))
    return ModelEvidence(model.name, tables, rows, missing)


def claim_verdicts(results_dir: Path | str, alpha: float = ALPHA) -> list[Verdict]:
    """The paper's claims tested on every model folder of ``results_dir``, then across them.

    Raises:
        ResultsError: ``results_dir`` holds no model folder.

    Example:
        >>> import stages_of_inference as soi
        >>> soi.verdict_table(soi.claim_verdicts("results"))  # doctest: +SKIP
    """
    return models_verdicts(find_models(Path(results_dir)), alpha)


def models_verdicts(models: list[ModelResults], alpha: float = ALPHA) -> list[Verdict]:
    """The verdicts of the model folders read by :func:`~stages_of_inference.report.results.find_models`."""
    return all_verdicts([model_evidence(model) for model in models], alpha)


def write_verdicts(
    results_dir: Path, models: list[ModelResults], verdicts: list[Verdict], alpha: float = ALPHA
) -> Path:
    """Write ``verdicts.json`` at the results root (every verdict) and each model's own into its folder.

    NaN (an untested effect or interval) is written as null.

    Returns:
        The path of the root's ``verdicts.json``.
    """
    for model in models:
        own = [asdict(verdict) for verdict in verdicts if verdict.model == model.name]
        write_json({"alpha": alpha, "verdicts": own}, model.folder / VERDICTS_FILE)
    everything = [asdict(verdict) for verdict in verdicts]
    return write_json({"alpha": alpha, "verdicts": everything}, Path(results_dir) / VERDICTS_FILE)
