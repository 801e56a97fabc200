"""A results folder of synthetic tables, written in the layout the experiments use."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from stages_of_inference.runs.atomic import write_json, write_parquet

N_LAYERS = 10
DELETION_KL = [3.0, 2.0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 4.0]


def robustness(n_layers: int = N_LAYERS) -> pd.DataFrame:
    """A sweep table: deleting each layer, swapping each adjacent pair."""
    depth = [layer / (n_layers - 1) for layer in range(n_layers)]
    delete = pd.DataFrame(
        {"intervention": "delete", "layer": range(n_layers), "relative_depth": depth, "kl": DELETION_KL[:n_layers]}
    )
    swap = pd.DataFrame({"intervention": "swap", "layer": range(n_layers - 1), "relative_depth": depth[:-1], "kl": 0.2})
    table = pd.concat([delete, swap], ignore_index=True)
    return table.assign(top1_agreement=0.8, relative_accuracy=0.9, entropy_bits=3.0)


def attention(n_layers: int = N_LAYERS) -> pd.DataFrame:
    """A per-layer attention table, strongest in the first layers."""
    return pd.DataFrame(
        {
            "layer": range(n_layers),
            "relative_depth": [layer / (n_layers - 1) for layer in range(n_layers)],
            "mean": [0.3, 0.2] + [0.05] * (n_layers - 2),
            "sem": 0.01,
            "n_documents": 4,
        }
    )


def write_results(results: Path, model: str, tables: dict[str, pd.DataFrame]) -> Path:
    """A model folder holding ``tables`` and its run.json; returns the results directory."""
    folder = results / model
    for name, table in tables.items():
        write_parquet(table, folder / f"{name}.parquet")
    write_json({"model": model, "tokens": 64, "seq_len": 32, "seed": 0}, folder / "run.json")
    return results


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    """One model with a robustness and an attention table, nothing else."""
    return write_results(tmp_path / "results", "tiny", {"robustness": robustness(), "attention": attention()})
