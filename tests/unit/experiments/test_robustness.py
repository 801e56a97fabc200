"""The robustness experiment's ``--interventions``: each family its own results, none clobbers another.

On a tiny local Llama (a ``save_pretrained`` folder, 4 layers) through
:func:`~stages_of_inference.experiments.runner.run_experiments`, as the command line runs it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from stages_of_inference.errors import ConfigError
from stages_of_inference.experiments import reproduce, runner
from stages_of_inference.experiments.config import ExperimentConfig, model_folder_name
from stages_of_inference.experiments.robustness import (
    EXPERIMENT,
    RobustnessConfig,
    family_experiment,
    summarize_table,
)
from stages_of_inference.experiments.runner import FINISHED_FILE, run_experiments
from stages_of_inference.interventions import family_name
from stages_of_inference.runs.atomic import read_json

pytestmark = pytest.mark.usefixtures("single_thread")
N_LAYERS = 4


def config(model: Path, out: Path, interventions: str = "default") -> RobustnessConfig:
    return RobustnessConfig(
        model=str(model), tokens=64, seq_len=32, batch_size=2, out=str(out), interventions=interventions
    )


def folder_of(out: Path, model: Path) -> Path:
    return out / model_folder_name(str(model))


def snapshot(folder: Path) -> dict[str, int]:
    """Every file's modification time (ns), shards included."""
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}


def test_a_family_after_the_default_keeps_both_finished_and_a_rerun_recomputes_nothing(
    tiny_folder: Path, tmp_path: Path
) -> None:
    run_experiments([EXPERIMENT], config(tiny_folder, tmp_path, "blocks"))
    run_experiments([EXPERIMENT], config(tiny_folder, tmp_path))
    folder = folder_of(tmp_path, tiny_folder)
    finished = read_json(folder / FINISHED_FILE)
    assert finished.keys() == {"robustness", "robustness_blocks"}
    assert all(entry["options"] == {} for entry in finished.values())
    for stem in ("robustness", "robustness_blocks"):
        assert (folder / f"{stem}.parquet").is_file() and (folder / f"{stem}.json").is_file()
        assert (folder / f"{stem}.html").is_file() and list((folder / f"{stem}_shards").glob("batch-*.parquet"))
    blocks = pd.read_parquet(folder / "robustness_blocks.parquet")
    assert set(blocks.intervention) == {"delete_block"} and len(blocks) == 3 + 2  # widths 2 and 3 of 4 layers
    default = pd.read_parquet(folder / "robustness.parquet")
    assert set(default.intervention) == {"delete", "swap"} and len(default) == 2 * N_LAYERS - 1

    before = snapshot(folder)
    summary = run_experiments([EXPERIMENT], config(tiny_folder, tmp_path, "blocks"))
    summary = pd.concat([summary, run_experiments([EXPERIMENT], config(tiny_folder, tmp_path))])
    assert summary.experiment.tolist() == ["robustness_blocks", "robustness"]
    after = snapshot(folder)
    assert {name: t for name, t in after.items() if name != "manifest.json"} == {
        name: t for name, t in before.items() if name != "manifest.json"
    }
    assert read_json(folder / "manifest.json")["experiments"] == ["robustness_blocks", "robustness"]


def test_the_default_family_keeps_todays_names_and_summary(tiny_folder: Path, tmp_path: Path) -> None:
    run_experiments([EXPERIMENT], config(tiny_folder, tmp_path))
    folder = folder_of(tmp_path, tiny_folder)
    assert sorted(p.name for p in folder.glob("robustness*")) == [
        "robustness.html",
        "robustness.json",
        "robustness.parquet",
        "robustness_shards",
    ]
    summary = read_json(folder / "robustness.json")
    assert set(summary) == {
        "model", "n_layers", "n_tokens", "baseline_accuracy", "baseline_loss", "delete", "swap", "wall_seconds"
    }  # fmt: skip
    assert summary["n_layers"] == N_LAYERS


def test_a_file_of_orders_is_named_by_its_stem_and_content(tiny_folder: Path, tmp_path: Path) -> None:
    orders = tmp_path / "my orders.json"
    orders.write_text(json.dumps([[0, 2, 1, 3], [0, 1, 2]]))
    run_experiments([EXPERIMENT], config(tiny_folder, tmp_path / "out", str(orders)))
    name = f"robustness_{family_name(str(orders))}"
    assert name.startswith("robustness_my-orders-") and len(name) == len("robustness_my-orders-") + 8
    folder = folder_of(tmp_path / "out", tiny_folder)
    table = pd.read_parquet(folder / f"{name}.parquet")
    assert table.label.tolist() == ["order 0,2,1,3", "order 0,1,2"]
    assert read_json(folder / f"{name}.json")["n_interventions"] == 2

    orders.write_text(json.dumps([[1, 0, 2, 3]]))  # an edited file is another family
    assert family_name(str(orders)) != name.removeprefix("robustness_")


def test_a_bad_file_is_refused_before_the_model_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def must_not_load(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(runner, "load_model", must_not_load)
    bad = tmp_path / "orders.json"
    bad.write_text("[[0, 1], [2,")
    with pytest.raises(ConfigError, match="is not JSON"):
        RobustnessConfig(interventions=str(bad))
    assert runner.main(EXPERIMENT, ["--interventions", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "is not JSON" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_reproduction_records_a_family_as_the_experiment_does(tiny_folder: Path, tmp_path: Path) -> None:
    run_experiments([EXPERIMENT], config(tiny_folder, tmp_path, "components"))
    folder = folder_of(tmp_path, tiny_folder)
    before = read_json(folder / FINISHED_FILE)
    summary = run_experiments([family_experiment("components")], config(tiny_folder, tmp_path))
    assert summary.experiment.tolist() == ["robustness_components"]
    assert read_json(folder / FINISHED_FILE) == before  # kept, not run again

    chosen = reproduce.chosen_experiments(
        reproduce.ReproduceConfig(experiments=["robustness", "norms"], families=["swaps-all", "default", "swaps-all"])
    )
    assert [e.run_name(ExperimentConfig()) for e in chosen] == ["robustness_swaps-all", "robustness", "norms"]
    with pytest.raises(ConfigError, match="neither a family"):
        reproduce.chosen_experiments(reproduce.ReproduceConfig(families=["block"]))


def test_summaries_by_family() -> None:
    base = {"top1_agreement": 0.5, "n_tokens": 10, "baseline_accuracy": 0.3, "baseline_loss": 2.0}
    swaps = pd.DataFrame(
        {
            "intervention": "swap",
            "layer": [0, 0, 1],
            "label": ["swap layers 0-1", "swap layers 0-2", "swap layers 1-2"],
            "kl": [1.0, 5.0, 3.0],
            "relative_accuracy": [0.9, 0.1, 0.7],
            **base,
        }
    )
    summary = summarize_table(swaps, model_name="m", n_layers=3, family="swaps-all")
    assert summary["by_distance"] == {
        "kl": {"1": 2.0, "2": 5.0},
        "relative_accuracy": {"1": 0.8, "2": pytest.approx(0.1)},
    }
    assert summary["most_damaging"] == {"swap": {"label": "swap layers 0-2", "kl": 5.0}}
    assert summary["n_interventions"] == 3 and summary["interventions"] == "swaps-all"
    assert summary["swap"]["kl"] == {"min": 1.0, "mean": 3.0, "max": 5.0}
    assert "by_distance" not in summarize_table(swaps, model_name="m", n_layers=3)  # the paper's family
