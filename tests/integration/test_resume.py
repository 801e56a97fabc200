"""A robustness run killed with SIGKILL resumes to exactly the table of an uninterrupted run.

Real processes on the embedded SmolLM2: ``python -m experiments.robustness`` is
started, killed (SIGKILL: no cleanup code runs) once its first batch is checkpointed,
and started again with the same command. The budget is 4 windows of 16 tokens, one
window a batch, so 4 shard files; smaller than a real run so that the three runs
fit in a couple of minutes on one CPU thread.

The same folder then refuses a run with another seed (exit 2, one line naming
``seed``), and ``--overwrite`` starts afresh.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MODEL = "smollm2-135m"
BUDGET = ["--tokens", "64", "--seq-len", "16", "--batch-size", "1"]
N_SHARDS = 4
POLL_TIMEOUT_S = 150.0


def command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "experiments.robustness", "--model", MODEL, *BUDGET, "--out", str(out), *extra]


def env() -> dict[str, str]:
    # The default user cache already holds the converted SmolLM2: do not redirect it.
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_OFFLINE": "1"}


def run(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(out, *extra), cwd=REPO, env=env(), capture_output=True, text=True, timeout=300, check=False
    )


def shards(out: Path) -> list[Path]:
    return sorted((out / MODEL / "robustness_shards").glob("batch-*.parquet"))


def error_lines(stderr: str) -> list[str]:
    """stderr without the sweep's progress bar (tqdm redraws with carriage returns)."""
    return [line for line in stderr.splitlines() if line.strip() and "robustness sweep" not in line]


def test_sigkill_then_rerun_gives_the_uninterrupted_table(tmp_path: Path) -> None:
    resumed_out, fresh_out = tmp_path / "resumed", tmp_path / "fresh"

    # 1. Start, wait for the first checkpointed batch, SIGKILL.
    log = (tmp_path / "killed.log").open("w")
    process = subprocess.Popen(command(resumed_out), cwd=REPO, env=env(), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + POLL_TIMEOUT_S
    try:
        while not shards(resumed_out):
            assert process.poll() is None, (
                f"the run ended before its first batch: {(tmp_path / 'killed.log').read_text()}"
            )
            assert time.monotonic() < deadline, "no batch checkpointed in time"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
        log.close()
    assert process.returncode == -signal.SIGKILL
    done_before = shards(resumed_out)
    assert 1 <= len(done_before) < N_SHARDS, "the run was not interrupted mid-way"
    assert not (resumed_out / MODEL / "robustness.parquet").exists()
    first_shard = done_before[0]
    first_bytes, first_mtime = first_shard.read_bytes(), first_shard.stat().st_mtime_ns

    # 2. The same command finishes the run, reusing the finished batches.
    resumed = run(resumed_out)
    assert resumed.returncode == 0, resumed.stderr
    assert len(shards(resumed_out)) == N_SHARDS
    assert first_shard.read_bytes() == first_bytes and first_shard.stat().st_mtime_ns == first_mtime

    # 3. An uninterrupted run into another folder.
    fresh = run(fresh_out)
    assert fresh.returncode == 0, fresh.stderr

    table_resumed = pd.read_parquet(resumed_out / MODEL / "robustness.parquet")
    table_fresh = pd.read_parquet(fresh_out / MODEL / "robustness.parquet")
    assert len(table_fresh) == 2 * 30 - 1 and int(table_fresh.n_sequences.iloc[0]) == N_SHARDS
    pd.testing.assert_frame_equal(table_resumed, table_fresh, check_exact=True)
    for resumed_shard, fresh_shard in zip(shards(resumed_out), shards(fresh_out), strict=True):
        pd.testing.assert_frame_equal(pd.read_parquet(resumed_shard), pd.read_parquet(fresh_shard), check_exact=True)

    # 4. Another seed into the same folder is refused, naming the seed; nothing changes.
    table_bytes = (resumed_out / MODEL / "robustness.parquet").read_bytes()
    other_seed = run(resumed_out, "--seed", "1")
    lines = error_lines(other_seed.stderr)
    assert other_seed.returncode == 2
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in other_seed.stderr
    assert "seed: 0 there, 1 now" in lines[0] and "--overwrite" in lines[0]
    assert (resumed_out / MODEL / "robustness.parquet").read_bytes() == table_bytes

    # 5. --overwrite starts afresh (one window, to keep it short): old shards are gone.
    overwritten = run(resumed_out, "--seed", "1", "--tokens", "16", "--overwrite")
    assert overwritten.returncode == 0, overwritten.stderr
    identity = json.loads((resumed_out / MODEL / "run.json").read_text())
    assert identity["seed"] == 1 and identity["tokens"] == 16
    assert [p.name for p in shards(resumed_out)] == ["batch-00000.parquet"]
    table = pd.read_parquet(resumed_out / MODEL / "robustness.parquet")
    assert int(table.n_sequences.iloc[0]) == 1
