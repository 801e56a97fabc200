"""Unit tests of the prune experiment (stages_of_inference.experiments.prune) and ``stages-of-inference prune``.

Run end to end on the tiny Llama folder: the experiment through the runner, the saved
plan read back, the export written beside the results, the report's pruning section.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from transformers import AutoModelForCausalLM

from stages_of_inference import cli
from stages_of_inference.experiments.config import output_folder
from stages_of_inference.experiments.prune import EXPERIMENT, TABLES, PruneConfig, read_plan
from stages_of_inference.experiments.registry import BY_NAME, EXPERIMENTS
from stages_of_inference.experiments.reproduce import ReproduceConfig, chosen_experiments
from stages_of_inference.pruning.export import HF_FOLDER, MERGEKIT_FILE, PLAN_FILE
from stages_of_inference.report import build_report
from tests.tiny_models import N_LAYERS

pytestmark = pytest.mark.usefixtures("single_thread")


def prune_args(model: Path, out: Path, *extra: str) -> list[str]:
    return ["prune", "--model", str(model), "--tokens", "144", "--seq-len", "24", "--out", str(out), *extra]


def test_prune_runs_the_experiment_and_exports_beside_its_results(
    tiny_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(prune_args(tiny_folder, tmp_path, "--layers", "2")) == 0
    folder = output_folder(PruneConfig(model=str(tiny_folder), out=tmp_path))
    for stem in TABLES.values():
        assert (folder / f"{stem}.parquet").is_file()
    assert (folder / "prune.html").is_file()

    plan = read_plan(folder)
    summary = json.loads((folder / "prune.json").read_text())
    record = json.loads((folder / PLAN_FILE).read_text())
    assert record["deleted_layers"] == plan.deleted_layers(2) == summary["deleted_layers"]
    assert len(record["deleted_layers"]) == 2 and record["n_layers"] == N_LAYERS
    assert set(summary["budgets"]) == {"1", "2"}
    for budget in summary["budgets"].values():
        kl = budget["held_out_kl"]
        assert budget["beats_or_ties"] == (kl["planner"] <= min(kl["block_influence"], kl["angular_distance"]))
    slices = yaml.safe_load((folder / MERGEKIT_FILE).read_text())["slices"]
    assert [layer for s in slices for layer in range(*s["sources"][0]["layer_range"])] == record["kept_layers"]
    assert slices[0]["sources"][0]["model"] == str(tiny_folder.resolve())  # the full-depth folder mergekit reads
    assert AutoModelForCausalLM.from_pretrained(folder / HF_FOLDER).config.num_hidden_layers == N_LAYERS - 2
    assert f"{folder / HF_FOLDER}" in capsys.readouterr().out

    report = build_report(tmp_path).read_text()
    assert "Pruning plan" in report and "Block Influence (ShortGPT)" in report

    # the same command again keeps the finished experiment and exports the same plan
    assert cli.main(prune_args(tiny_folder, tmp_path, "--layers", "2")) == 0
    assert "finished earlier" in capsys.readouterr().out
    assert json.loads((folder / PLAN_FILE).read_text()) == record


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--layers", str(N_LAYERS)], ["--layers", "between 1 and 3"]),
        (["--layers", "0"], ["between 1 and 3"]),
        (["--layers", "1", "--held-out", "0.01"], ["--held-out", "0 held-out windows"]),
        (["--layers", "1", "--strategy", "sideways"], ["--strategy", "unknown strategy"]),
        (["--layers", "1", "--strategy", "beam", "--beam-width", "0"], ["--beam-width", "at least 1"]),
    ],
)
def test_bad_options_are_one_line_errors(
    extra: list[str], words: list[str], tiny_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(prune_args(tiny_folder, tmp_path, *extra))
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(err) == 1
    assert all(word in err[0] for word in words), err[0]


def test_prune_is_registered_but_not_part_of_the_paper_s_reproduction() -> None:
    assert BY_NAME["prune"] is EXPERIMENT and EXPERIMENT not in EXPERIMENTS
    assert "prune" not in ReproduceConfig().experiments
    assert [e.name for e in chosen_experiments(ReproduceConfig(experiments=["prune", "norms"]))] == ["norms", "prune"]
    assert EXPERIMENT.options(ReproduceConfig(layers=3)) == {
        "layers": 3,
        "strategy": "greedy",
        "beam_width": 4,
        "held_out": 0.5,
    }
