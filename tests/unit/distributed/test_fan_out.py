"""The reproduction on Ray (one task per model and experiment) writes what the local runner writes, and resumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from stages_of_inference.distributed.fan_out import run_experiments_on_ray
from stages_of_inference.experiments import registry
from stages_of_inference.experiments.config import model_folder_name
from stages_of_inference.experiments.reproduce import ReproduceConfig
from stages_of_inference.experiments.runner import FINISHED_FILE, run_experiments
from stages_of_inference.runs.atomic import read_json

pytestmark = pytest.mark.ray
EXPERIMENTS = ["norms", "attention"]


def config(model: Path, out: Path, **overrides: Any) -> ReproduceConfig:
    return ReproduceConfig(
        models=[str(model)], experiments=EXPERIMENTS, tokens=96, seq_len=32, batch_size=2, out=str(out), **overrides
    )


def test_ray_tasks_write_the_local_tables_and_a_rerun_keeps_them(
    ray_cluster: Any, tiny_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    experiments = [registry.BY_NAME[name] for name in EXPERIMENTS]
    local, distributed = tmp_path / "local", tmp_path / "ray"
    run_experiments(experiments, config(tiny_folder, local), models=[str(tiny_folder)])
    summary = run_experiments_on_ray(
        experiments, config(tiny_folder, distributed, backend="ray"), models=[str(tiny_folder)]
    )
    assert sorted(summary.experiment) == sorted(EXPERIMENTS)
    mine, theirs = distributed / model_folder_name(str(tiny_folder)), local / model_folder_name(str(tiny_folder))
    tables = sorted(p.name for p in theirs.glob("*.parquet"))
    assert tables and sorted(p.name for p in mine.glob("*.parquet")) == tables
    for name in tables:
        pd.testing.assert_frame_equal(pd.read_parquet(mine / name), pd.read_parquet(theirs / name), check_exact=True)
    assert set(read_json(mine / FINISHED_FILE)) == set(EXPERIMENTS)
    capsys.readouterr()
    run_experiments_on_ray(experiments, config(tiny_folder, distributed, backend="ray"), models=[str(tiny_folder)])
    printed = capsys.readouterr().out
    assert printed.count("finished earlier") == len(EXPERIMENTS) and "sent to Ray" not in printed
