"""The reproduction keeps finished experiments, and ``--overwrite`` clears a folder only once.

On a tiny local Llama (a ``save_pretrained`` folder), with the two cheapest experiments
standing in for all seven.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments import attention, norms, reproduce
from experiments.common import model_folder_name
from experiments.reproduce import FINISHED_FILE, ReproduceConfig
from stages_of_inference.runs.atomic import read_json

pytestmark = pytest.mark.usefixtures("single_thread")
EXPERIMENTS = ("norms", "attention")


@pytest.fixture(autouse=True)
def _two_experiments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reproduce, "EXPERIMENTS", EXPERIMENTS)
    monkeypatch.setattr(reproduce, "build_report", lambda out: Path(out) / "report.html")


def config(model: Path, out: Path, **overrides: object) -> ReproduceConfig:
    return ReproduceConfig(models=[str(model)], tokens=96, seq_len=32, batch_size=2, out=str(out), **overrides)


def folder_of(out: Path, model: Path) -> Path:
    return out / model_folder_name(str(model))


def outputs(out: Path, model: Path) -> list[str]:
    return sorted(p.name for p in folder_of(out, model).glob("*.parquet"))


def test_a_rerun_keeps_finished_experiments(tiny_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reproduce.reproduce(config(tiny_folder, tmp_path))
    finished = read_json(folder_of(tmp_path, tiny_folder) / FINISHED_FILE)
    assert sorted(finished) == sorted(EXPERIMENTS)

    def must_not_run(_config: object) -> None:
        raise AssertionError("a finished experiment ran again")

    monkeypatch.setattr(norms, "run", must_not_run)
    monkeypatch.setattr(attention, "run", must_not_run)
    summary = reproduce.reproduce(config(tiny_folder, tmp_path))
    assert summary.seconds.tolist() == [finished[name] for name in EXPERIMENTS]
    manifest = read_json(folder_of(tmp_path, tiny_folder) / "manifest.json")
    assert manifest["wall_seconds"] == pytest.approx(sum(finished.values()), abs=0.1)


def test_an_interrupted_run_resumes_at_the_unfinished_experiment(
    tiny_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_attention = attention.run

    def interrupted(_config: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(attention, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        reproduce.reproduce(config(tiny_folder, tmp_path))
    assert sorted(read_json(folder_of(tmp_path, tiny_folder) / FINISHED_FILE)) == ["norms"]

    ran = []
    monkeypatch.setattr(norms, "run", lambda c: ran.append("norms"))
    monkeypatch.setattr(attention, "run", lambda c: ran.append("attention") or real_attention(c))
    reproduce.reproduce(config(tiny_folder, tmp_path))
    assert ran == ["attention"]
    assert outputs(tmp_path, tiny_folder) == ["attention.parquet", "attention_heads.parquet", "norms.parquet"]


def test_overwrite_clears_the_folder_once_and_keeps_every_experiment(tiny_folder: Path, tmp_path: Path) -> None:
    stale = folder_of(tmp_path, tiny_folder) / "stale.parquet"
    reproduce.reproduce(config(tiny_folder, tmp_path))
    stale.write_text("from another run")
    reproduce.reproduce(config(tiny_folder, tmp_path, seed=1, overwrite=True))
    assert not stale.exists()
    assert outputs(tmp_path, tiny_folder) == ["attention.parquet", "attention_heads.parquet", "norms.parquet"]
    assert sorted(read_json(folder_of(tmp_path, tiny_folder) / FINISHED_FILE)) == sorted(EXPERIMENTS)
