"""The Ray backend of the sweep, on a local Ray instance: same table as local, survives a killed worker or driver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pytest
import torch

from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.sweep import robustness_sweep

pytestmark = pytest.mark.ray

BATCH_SIZE = 1
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def local_shards(
    folder_model: LoadedModel, folder_tokens: torch.Tensor, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The shards of the local sweep of the tokens, one window a batch."""
    folder = tmp_path_factory.mktemp("local_shards")
    robustness_sweep(folder_model, folder_tokens, batch_size=BATCH_SIZE, checkpoint_dir=folder, progress=False)
    return folder


@pytest.fixture(scope="module")
def local_table(folder_model: LoadedModel, folder_tokens: torch.Tensor, local_shards: Path) -> pd.DataFrame:
    """The local sweep's table (read back from its shards, as a rerun would)."""
    return robustness_sweep(
        folder_model, folder_tokens, batch_size=BATCH_SIZE, checkpoint_dir=local_shards, progress=False
    )


def shard_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("batch-*.parquet"))


def wait_for(condition: Any, seconds: float = 900.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition did not hold in time")
        time.sleep(0.01)


def sweep_worker_pids() -> list[int]:
    """The Ray sweep workers started by this test process (descendants of the Ray instance it started)."""
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if "SweepWorker" in " ".join(process.cmdline()):
                found.append(process.pid)
        except psutil.NoSuchProcess:
            continue
    return found


def test_ray_table_and_shards_equal_the_local_ones(
    ray_cluster: Any,
    folder_model: LoadedModel,
    folder_tokens: torch.Tensor,
    local_shards: Path,
    local_table: pd.DataFrame,
    tmp_path: Path,
) -> None:
    table = robustness_sweep(
        folder_model,
        folder_tokens,
        batch_size=BATCH_SIZE,
        checkpoint_dir=tmp_path,
        backend="ray",
        workers=2,
        progress=False,
    )
    pd.testing.assert_frame_equal(table, local_table, check_exact=True)
    assert [p.name for p in shard_files(tmp_path)] == [p.name for p in shard_files(local_shards)]
    for mine, theirs in zip(shard_files(tmp_path), shard_files(local_shards), strict=True):
        pd.testing.assert_frame_equal(pd.read_parquet(mine), pd.read_parquet(theirs), check_exact=True)


def test_a_killed_worker_is_replaced_and_the_table_is_unchanged(
    ray_cluster: Any, folder_model: LoadedModel, folder_tokens: torch.Tensor, local_table: pd.DataFrame, tmp_path: Path
) -> None:
    killed: dict[str, Any] = {}

    def kill_a_worker_after_the_first_shard() -> None:
        wait_for(lambda: len(shard_files(tmp_path)) >= 1)
        killed["shards"] = len(shard_files(tmp_path))
        killed["pid"] = sweep_worker_pids()[0]
        os.kill(killed["pid"], signal.SIGKILL)

    killer = threading.Thread(target=kill_a_worker_after_the_first_shard)
    killer.start()
    table = robustness_sweep(
        folder_model,
        folder_tokens,
        batch_size=BATCH_SIZE,
        checkpoint_dir=tmp_path,
        backend="ray",
        workers=2,
        progress=False,
    )
    killer.join()
    assert killed["shards"] < folder_tokens.shape[0], "the worker was killed after the run, not during it"
    assert not psutil.pid_exists(killed["pid"]) or psutil.Process(killed["pid"]).status() == psutil.STATUS_ZOMBIE
    pd.testing.assert_frame_equal(table, local_table, check_exact=True)


DRIVER = textwrap.dedent(
    """
    import sys
    import ray
    from stages_of_inference.corpus import load_corpus
    from stages_of_inference.models import load_model
    from stages_of_inference.sweep import robustness_sweep

    folder, address, shards = sys.argv[1:]
    model = load_model(folder, compatibility_mode=False)
    tokens = load_corpus("embedded", model, n_tokens=16 * 32, seq_len=32, seed=0)
    robustness_sweep(model, tokens, batch_size=1, checkpoint_dir=shards, backend="ray", workers=2,
                     address=address, progress=False)
    """
)


def test_a_killed_driver_resumes_from_its_shards(
    ray_cluster: Any,
    tiny_folder: Path,
    folder_model: LoadedModel,
    folder_tokens: torch.Tensor,
    local_table: pd.DataFrame,
    tmp_path: Path,
) -> None:
    shards = tmp_path / "shards"
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(tiny_folder), ray_cluster.address_info["address"], str(shards)],
        cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        wait_for(lambda: len(shard_files(shards)) >= 3 or driver.poll() is not None)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    kept = {path.name: path.stat().st_mtime_ns for path in shard_files(shards)}
    assert 3 <= len(kept) < folder_tokens.shape[0], "the driver was killed after the run, not during it"
    table = robustness_sweep(
        folder_model,
        folder_tokens,
        batch_size=BATCH_SIZE,
        checkpoint_dir=shards,
        backend="ray",
        workers=2,
        progress=False,
    )
    assert {name: (shards / name).stat().st_mtime_ns for name in kept} == kept, "finished shards were recomputed"
    assert len(shard_files(shards)) == folder_tokens.shape[0]
    pd.testing.assert_frame_equal(table, local_table, check_exact=True)
