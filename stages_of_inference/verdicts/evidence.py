"""What the verdicts read of one model: its saved tables and the sweep's per-sequence sums.

The robustness sweep keeps, per finished batch, one row per (intervention, sequence)
with the *sum* of each token metric over the sequence's scored tokens
(:func:`~stages_of_inference.scoring.per_sequence.score_batch`, in
``<model>/robustness_shards/``). Those rows are the unit of the paired bootstrap. They
are used only when they are exactly the rows the saved ``robustness`` table was built
from (same interventions, same number of sequences); otherwise the robustness claims
are inconclusive and say so, rather than test numbers from another run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from jaxtyping import Float

from stages_of_inference.runs.shards import saved_shards, sweep_shards_folder

NO_SHARDS = "no per-sequence sums (robustness_shards) in the model folder"


@dataclass(frozen=True)
class ModelEvidence:
    """One model's tables by file stem, and the sweep's per-sequence rows when they match its table."""

    model: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    per_sequence: pd.DataFrame | None = None
    """Shard rows: ``batch``, ``sequence``, ``intervention``, ``layer``, ``n_tokens`` and the metric sums."""
    per_sequence_missing: str = NO_SHARDS
    """Why ``per_sequence`` is None ("" when it is not)."""

    def table(self, name: str) -> pd.DataFrame | None:
        """The table ``name``, or None when the folder does not hold it."""
        return self.tables.get(name)


def read_shards(folder: Path, robustness: pd.DataFrame | None) -> tuple[pd.DataFrame | None, str]:
    """The shard rows of a model folder when they match its robustness table, else None and why not."""
    shards = saved_shards(sweep_shards_folder(folder, "robustness"))
    if not shards:
        return None, NO_SHARDS
    rows = pd.concat([pd.read_parquet(path) for path in shards], ignore_index=True)
    mismatch = shard_mismatch(rows, robustness)
    return (None, mismatch) if mismatch else (rows, "")


def shard_mismatch(rows: pd.DataFrame, robustness: pd.DataFrame | None) -> str:
    """Why the shard rows are not those of the saved robustness table ("" when they are).

    Example:
        >>> rows = pd.DataFrame({"intervention": "delete", "layer": 0, "batch": 0, "sequence": [0, 1]})
        >>> shard_mismatch(rows, pd.DataFrame({"intervention": ["delete"], "layer": [0], "n_sequences": [2]}))
        ''
    """
    if robustness is None or "n_sequences" not in robustness.columns:
        return "per-sequence sums present but no robustness table with n_sequences to check them against"
    counted = rows.groupby(["intervention", "layer"]).size()
    expected = robustness.set_index(["intervention", "layer"]).n_sequences
    if set(counted.index) != set(expected.index) or not (counted.reindex(expected.index) == expected).all():
        return "the robustness_shards do not match robustness.parquet (another run's checkpoints); rerun the sweep"
    return ""


def sequence_sums(
    rows: pd.DataFrame, interventions: list[tuple[str, int]], metric: str
) -> Float[np.ndarray, "quantity sequence"]:
    """Per-sequence sums of ``metric`` for each (kind, layer) intervention, sequences in (batch, sequence) order."""
    table = rows.pivot_table(index=["intervention", "layer"], columns=["batch", "sequence"], values=metric)
    return table.reindex(pd.MultiIndex.from_tuples(interventions)).to_numpy(np.float64)


def sequence_tokens(rows: pd.DataFrame) -> Float[np.ndarray, " sequence"]:
    """Scored tokens of each sequence, in (batch, sequence) order."""
    return rows.groupby(["batch", "sequence"]).n_tokens.first().to_numpy(np.float64)


def interventions_of(rows: pd.DataFrame, kind: str) -> list[tuple[str, int]]:
    """The (kind, layer) interventions of one kind in the rows, by layer."""
    layers = sorted(int(layer) for layer in rows[rows.intervention == kind].layer.unique())
    return [(kind, layer) for layer in layers]
