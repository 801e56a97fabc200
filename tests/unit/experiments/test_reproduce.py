"""The reproduction loads each model once, keeps finished experiments, and ``--overwrite`` clears a folder only once.

On a tiny local Llama (a ``save_pretrained`` folder), with the two cheapest experiments
standing in for all seven.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from stages_of_inference.experiments import (
    attention,
    norms,
    registry,
    reproduce,
    runner,
)
from stages_of_inference.experiments.config import model_folder_name
from stages_of_inference.experiments.protocol import Experiment, Results
from stages_of_inference.experiments.reproduce import ReproduceConfig
from stages_of_inference.experiments.runner import FINISHED_FILE
from stages_of_inference.runs.atomic import read_json

pytestmark = pytest.mark.usefixtures("single_thread")
EXPERIMENTS = ("norms", "attention")


@pytest.fixture(autouse=True)
def _no_report(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reproduce, "build_report", lambda out: Path(out) / "report.html")


def config(model: Path, out: Path, **overrides: object) -> ReproduceConfig:
    settings: dict[str, Any] = {"models": [str(model)], "experiments": list(EXPERIMENTS), "tokens": 96, "seq_len": 32}
    return ReproduceConfig(**{**settings, "batch_size": 2, "out": str(out), **overrides})


def replace_compute(monkeypatch: pytest.MonkeyPatch, experiment: Experiment[Any], compute: Any) -> None:
    """Make the registry hand out ``experiment`` with another ``compute``."""
    monkeypatch.setitem(registry.BY_NAME, experiment.name, dataclasses.replace(experiment, compute=compute))


def folder_of(out: Path, model: Path) -> Path:
    return out / model_folder_name(str(model))


def outputs(out: Path, model: Path) -> list[str]:
    return sorted(p.name for p in folder_of(out, model).glob("*.parquet"))


def test_a_rerun_keeps_finished_experiments(tiny_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reproduce.reproduce(config(tiny_folder, tmp_path))
    finished = read_json(folder_of(tmp_path, tiny_folder) / FINISHED_FILE)
    assert sorted(finished) == sorted(EXPERIMENTS)

    def must_not_run(*_args: object) -> Results:
        raise AssertionError("a finished experiment ran again")

    replace_compute(monkeypatch, norms.EXPERIMENT, must_not_run)
    replace_compute(monkeypatch, attention.EXPERIMENT, must_not_run)
    summary = reproduce.reproduce(config(tiny_folder, tmp_path))
    assert summary.seconds.tolist() == [finished[name]["seconds"] for name in ("attention", "norms")]  # registry order
    manifest = read_json(folder_of(tmp_path, tiny_folder) / "manifest.json")
    assert manifest["wall_seconds"] == pytest.approx(sum(entry["seconds"] for entry in finished.values()), abs=0.1)


def test_an_interrupted_run_resumes_at_the_unfinished_experiment(
    tiny_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_args: object) -> Results:
        raise KeyboardInterrupt

    replace_compute(monkeypatch, norms.EXPERIMENT, interrupted)  # norms runs after attention
    with pytest.raises(KeyboardInterrupt):
        reproduce.reproduce(config(tiny_folder, tmp_path))
    assert sorted(read_json(folder_of(tmp_path, tiny_folder) / FINISHED_FILE)) == ["attention"]

    ran = []

    def recording(experiment: Experiment[Any]) -> Any:
        return lambda *args: ran.append(experiment.name) or experiment.compute(*args)

    replace_compute(monkeypatch, attention.EXPERIMENT, recording(attention.EXPERIMENT))
    replace_compute(monkeypatch, norms.EXPERIMENT, recording(norms.EXPERIMENT))
    reproduce.reproduce(config(tiny_folder, tmp_path))
    assert ran == ["norms"]
    assert outputs(tmp_path, tiny_folder) == ["attention.parquet", "attention_heads.parquet", "norms.parquet"]


def test_overwrite_clears_the_folder_once_and_keeps_every_experiment(tiny_folder: Path, tmp_path: Path) -> None:
    stale = folder_of(tmp_path, tiny_folder) / "stale.parquet"
    reproduce.reproduce(config(tiny_folder, tmp_path))
    stale.write_text("from another run")
    reproduce.reproduce(config(tiny_folder, tmp_path, seed=1, overwrite=True))
    assert not stale.exists()
    assert outputs(tmp_path, tiny_folder) == ["attention.parquet", "attention_heads.parquet", "norms.parquet"]
    assert sorted(read_json(folder_of(tmp_path, tiny_folder) / FINISHED_FILE)) == sorted(EXPERIMENTS)


def test_the_reproduction_loads_each_model_once(
    tiny_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded: list[str] = []
    real_load = runner.load_model
    monkeypatch.setattr(runner, "load_model", lambda name, **kwargs: loaded.append(name) or real_load(name, **kwargs))
    copy = tmp_path / "second-model"
    copy.symlink_to(tiny_folder, target_is_directory=True)
    reproduce.reproduce(config(tiny_folder, tmp_path / "out", models=[str(tiny_folder), str(copy)]))
    assert loaded == [str(tiny_folder), str(copy)]
    assert outputs(tmp_path / "out", copy) == ["attention.parquet", "attention_heads.parquet", "norms.parquet"]


def test_an_experiment_option_of_the_reproduction_reaches_the_experiment(tiny_folder: Path, tmp_path: Path) -> None:
    reproduce.reproduce(config(tiny_folder, tmp_path, k=2))
    folder = folder_of(tmp_path, tiny_folder)
    assert read_json(folder / "attention.json")["k"] == 2
    assert read_json(folder / FINISHED_FILE)["attention"]["options"] == {"k": 2}


def test_a_finished_experiment_runs_again_when_its_options_change(tiny_folder: Path, tmp_path: Path) -> None:
    reproduce.reproduce(config(tiny_folder, tmp_path, k=2))
    folder = folder_of(tmp_path, tiny_folder)
    norms_bytes = (folder / "norms.parquet").read_bytes()
    reproduce.reproduce(config(tiny_folder, tmp_path, k=3))
    assert read_json(folder / "attention.json")["k"] == 3  # not the k=2 results kept under the k=3 command
    assert read_json(folder / "manifest.json")["experiment_options"]["attention"] == {"k": 3}
    assert (folder / "norms.parquet").read_bytes() == norms_bytes


def test_an_unknown_experiment_name_lists_the_registry(tiny_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(reproduce.ConfigError, match=r"no experiment named bogus.*robustness, logit_lens"):
        reproduce.reproduce(config(tiny_folder, tmp_path, experiments=["norms", "bogus"]))
    assert not tmp_path.joinpath(model_folder_name(str(tiny_folder))).exists()


def test_the_reproduction_config_holds_every_experiments_options() -> None:
    """All but the options selecting a variant: ``--families`` chooses the robustness variants to run."""
    fields = {f.name for f in dataclasses.fields(ReproduceConfig)}
    for experiment in registry.EXPERIMENTS:
        own = {f.name for f in dataclasses.fields(experiment.config_type) if not f.metadata["variant"]}
        assert own <= fields, experiment.name
    assert "families" in fields
