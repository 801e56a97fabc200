"""The result tables of each model folder of a results directory, as the report reads them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from stages_of_inference.analyses.neurons import classify_neurons, neuron_counts
from stages_of_inference.errors import ResultsError
from stages_of_inference.runs.identity import IDENTITY_FILE


@dataclass
class ModelResults:
    """The tables found in one model's results folder, by file stem (``robustness``, ``attention``, ...)."""

    name: str
    folder: Path
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def get(self, name: str) -> pd.DataFrame | None:
        """The table ``name``, or None when the folder does not hold it."""
        return self.tables.get(name)


def find_models(results_dir: Path) -> list[ModelResults]:
    """Every model folder (a subfolder with ``run.json``), with its parquet tables loaded.

    Raises:
        ResultsError: No model folder in ``results_dir``.

    Example:
        >>> [model.name for model in find_models(Path("results"))]  # doctest: +SKIP
        ['gemma-3-270m', 'smollm2-135m']
    """
    results_dir = Path(results_dir)
    folders = sorted(p for p in results_dir.iterdir() if (p / IDENTITY_FILE).is_file()) if results_dir.is_dir() else []
    if not folders:
        raise ResultsError(f"{results_dir} holds no model folder with {IDENTITY_FILE}; run an experiment first")
    return [
        ModelResults(
            folder.name, folder, {path.stem: pd.read_parquet(path) for path in sorted(folder.glob("*.parquet"))}
        )
        for folder in folders
    ]


def neuron_counts_of(model: ModelResults) -> pd.DataFrame | None:
    """Per-layer prediction/suppression counts from whichever neuron table the folder holds.

    Raises:
        ConfigError: The neuron table has neither counts, kinds nor moments.
    """
    table = model.get("neuron_counts")
    table = table if table is not None else model.get("neurons")
    if table is None or {"prediction", "suppression"} <= set(table.columns):
        return table
    return neuron_counts(table if "kind" in table.columns else classify_neurons(table))
