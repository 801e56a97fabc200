"""Checkpoint shards of a sweep: one parquet file per finished batch, reused only by the same work.

Each shard carries its provenance in the parquet file's own key-value metadata:
what its numbers were computed from — the model and its weight processing
(``model.soi_source.identity()``), the interventions (their labels, in order), the
batch index and a hash of the batch's tokens, the toolkit version and the shard
format. The table and its provenance are written in one atomic rename, so they can
never disagree or exist without each other (a sidecar file would need two writes).

:meth:`ShardFolder.read` returns a shard only when its provenance equals the present
run's; any difference — other tokens, a grown or changed list of interventions,
another model or weight processing, another toolkit version, a shard with no
provenance — raises :class:`~stages_of_inference.errors.ResultsError` naming it.
Nothing is ever deleted: the user decides what to do with the finished work.

Example:
    >>> shards = ShardFolder(folder, run_provenance(model, interventions))  # doctest: +SKIP
    >>> shards.read(0, batch) is None  # doctest: +SKIP
    True
    >>> shards.write(0, batch, table)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from jaxtyping import Int
from torch import Tensor

from stages_of_inference.errors import ConfigError, ResultsError
from stages_of_inference.interventions.spec import Intervention
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.runs.atomic import write_parquet
from stages_of_inference.runs.identity import tokens_sha256

SHARD_FORMAT = 2
"""Version of the shard layout; raised when the columns or their meaning change."""
PROVENANCE_KEY = "stages_of_inference.shard"
"""The parquet key-value metadata key holding a shard's provenance (JSON)."""


def run_provenance(model: LoadedModel, interventions: Sequence[Intervention]) -> dict[str, Any]:
    """What every shard of a sweep shares: format, toolkit version, model identity, interventions.

    Raises:
        ConfigError: The model carries no ``soi_source`` (it was not loaded by
            :func:`~stages_of_inference.models.load_model` or
            :func:`~stages_of_inference.models.bridge_from_hf`), so its
            shards could not be told from another model's.
    """
    from stages_of_inference import __version__

    source = getattr(model, "soi_source", None)
    if source is None:
        raise ConfigError(
            "checkpoints need to know the model: load it with soi.load_model or bridge_from_hf, "
            "or sweep without checkpoint_dir"
        )
    return {
        "shard_format": SHARD_FORMAT,
        "toolkit_version": __version__,
        "model": source.identity(),
        "interventions": [intervention.label for intervention in interventions],
    }


SHARD_PATTERN = "batch-{index:05d}.parquet"
"""A batch's shard file name in its sweep's folder."""


def sweep_shards_folder(results_folder: str | os.PathLike[str], run_name: str) -> Path:
    """Where the sweep recorded as ``run_name`` keeps its shards in a model's results folder.

    Example:
        >>> sweep_shards_folder("results/smollm2-135m", "robustness")
        PosixPath('results/smollm2-135m/robustness_shards')
    """
    return Path(results_folder) / f"{run_name}_shards"


def saved_shards(folder: str | os.PathLike[str]) -> list[Path]:
    """The shard files in a sweep's folder, in batch order (none when the folder does not exist)."""
    return sorted(Path(folder).glob(SHARD_PATTERN.replace("{index:05d}", "*")))


class ShardFolder:
    """The shards of one sweep in ``folder``: ``batch-00000.parquet``, ``batch-00001.parquet``, ..."""

    def __init__(self, folder: str | os.PathLike[str], run: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.run = run

    def path(self, index: int) -> Path:
        """Where batch ``index`` is kept."""
        return self.folder / SHARD_PATTERN.format(index=index)

    def provenance(self, index: int, batch: Int[Tensor, "batch pos"]) -> dict[str, Any]:
        """The provenance of batch ``index``: the run's, the batch index and its tokens' hash."""
        return {**self.run, "batch_index": index, "batch_tokens_sha256": tokens_sha256(batch)}

    def write(self, index: int, batch: Int[Tensor, "batch pos"], table: pd.DataFrame) -> Path:
        """Save a finished batch with its provenance, atomically."""
        metadata = {PROVENANCE_KEY: json.dumps(self.provenance(index, batch))}
        return write_parquet(table, self.path(index), metadata=metadata)

    def read(self, index: int, batch: Int[Tensor, "batch pos"]) -> pd.DataFrame | None:
        """The saved table of batch ``index``, or ``None`` if it was not saved yet.

        Raises:
            ResultsError: The shard was computed from something else than this batch
                of this run, records no provenance, or cannot be read.
        """
        path = self.path(index)
        if not path.exists():
            return None
        try:
            stored = pq.read_table(path)
        except (OSError, pa.ArrowException) as error:
            raise ResultsError(f"cannot read checkpoint {path}: {error}; delete it to recompute that batch") from None
        recorded = (stored.schema.metadata or {}).get(PROVENANCE_KEY.encode())
        if recorded is None:
            raise ResultsError(
                f"checkpoint {path} records no provenance (written by an older version); "
                f"delete {self.folder} or pass another checkpoint_dir"
            )
        differences = _differences(json.loads(recorded), self.provenance(index, batch))
        if differences:
            raise ResultsError(
                f"checkpoint {path} was computed from other inputs ({'; '.join(differences)}); "
                f"delete {self.folder} or pass another checkpoint_dir"
            )
        return stored.to_pandas()


def _differences(stored: dict[str, Any], present: dict[str, Any]) -> list[str]:
    """Each differing provenance field, said briefly: ``key: <there> there, <now> now``."""
    found = []
    for key in sorted(set(stored) | set(present)):
        there, now = stored.get(key), present.get(key)
        if there == now:
            continue
        if key == "interventions" and isinstance(there, list) and isinstance(now, list):
            found.append(_interventions_difference(there, now))
        elif isinstance(there, dict) and isinstance(now, dict):
            found += [
                f"{key} {field}: {there.get(field)!r} there, {now.get(field)!r} now"
                for field in sorted(set(there) | set(now))
                if there.get(field) != now.get(field)
            ]
        else:
            found.append(f"{key}: {there!r} there, {now!r} now")
    return found


def _interventions_difference(there: list[str], now: list[str]) -> str:
    added = [label for label in now if label not in there]
    missing = [label for label in there if label not in now]
    if not added and not missing:
        return "interventions: the same ones in another order"
    parts = [f"{len(there)} there, {len(now)} now"]
    if added:
        parts.append(f"new: {', '.join(added)}")
    if missing:
        parts.append(f"gone: {', '.join(missing)}")
    return f"interventions: {' — '.join(parts)}"
