"""Unit tests of the ``stages-of-inference`` command line (stages_of_inference.cli)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stages_of_inference import cli
from stages_of_inference.experiments import reproduce
from stages_of_inference.experiments.reproduce import ReproduceConfig
from stages_of_inference.models import EMBEDDED_MODELS

REPO = Path(__file__).resolve().parents[2]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, list[str]]:
    """Call ``cli.main`` in-process; return (exit code, stdout, non-empty stderr lines)."""
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out, [line for line in captured.err.splitlines() if line.strip()]


def assert_one_line_error(code: int, err: list[str], *words: str, expected_code: int = 2) -> None:
    assert code == expected_code
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    assert "Traceback" not in err[0]
    for word in words:
        assert word in err[0], (word, err[0])


def run_subprocess(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "stages_of_inference", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# ---------------------------------------------------------------- help and models


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0
    for command in ("models", "run", "report"):
        assert command in out


def test_models_prints_a_table_of_name_status_how(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["models"], capsys)
    assert code == 0 and not err
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "STATUS", "HOW"]
    names = [row.split()[0] for row in rows]
    assert set(EMBEDDED_MODELS) <= set(names)


def test_models_names_only(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["models", "--names-only"], capsys)
    assert code == 0
    assert set(EMBEDDED_MODELS) <= set(out.split())


def test_models_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["models", "--help"], capsys)
    assert code == 0 and "--names-only" in out


def test_python_dash_m_and_console_script_agree() -> None:
    """``python -m stages_of_inference`` works as a process, with the same output as main()."""
    result = run_subprocess("models", "--names-only")
    assert result.returncode == 0, result.stderr
    assert set(EMBEDDED_MODELS) <= set(result.stdout.split())


# ---------------------------------------------------------------- bad usage


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([], ["required", "<command>"]),
        (["bogus"], ["invalid choice", "bogus"]),
        (["models", "--bogus"], ["unrecognized arguments", "--bogus"]),
        (["run", "--tokens", "many"], ["--tokens", "invalid int value"]),
        (["run", "--no-such-flag"], ["unrecognized arguments"]),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(
    args: list[str], words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(args, capsys)
    assert_one_line_error(code, err, *words, "--help")


def test_usage_error_in_a_process_has_no_traceback() -> None:
    result = run_subprocess("run", "--batch-size", "0", "--out", os.devnull + "/x")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "batch_size" in lines[0] and "Traceback" not in result.stderr


# ---------------------------------------------------------------- run


def test_run_help_shows_the_reproduction_flags(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["run", "--help"], capsys)
    assert code == 0
    assert out.startswith("usage: stages-of-inference run")
    for flag in ("--models", "--tokens", "--seq-len", "--seed", "--batch-size", "--out", "--overwrite"):
        assert flag in out


def test_run_passes_its_arguments_to_the_reproduction(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[ReproduceConfig] = []
    monkeypatch.setattr(reproduce, "reproduce", seen.append)
    code, _, _ = run_cli(["run", "--models", "smollm2-135m", "--tokens", "64"], capsys)
    assert code == 0
    assert seen == [ReproduceConfig(models=["smollm2-135m"], tokens=64)]


def test_run_sets_the_options_of_the_experiments(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[ReproduceConfig] = []
    monkeypatch.setattr(reproduce, "reproduce", seen.append)
    args = ["run", "--k", "3", "--prompt", "Paris is in", "--hook", "mlp_out", "--kurtosis-threshold", "7.5"]
    code, _, _ = run_cli([*args, "--experiments", "attention", "cka"], capsys)
    assert code == 0
    assert seen == [
        ReproduceConfig(
            k=3, prompt="Paris is in", hook="mlp_out", kurtosis_threshold=7.5, experiments=["attention", "cka"]
        )
    ]


def test_run_returns_the_reproduction_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reproduce, "main", lambda argv, prog: 2)
    assert cli.main(["run"]) == 2


@pytest.mark.parametrize("args", [["--tokens", "0"], ["--seq-len", "-1"], ["--batch-size", "0"]])
def test_run_rejects_bad_budgets_in_one_line(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["run", "--models", "smollm2-135m", "--out", str(tmp_path / "out"), *args], capsys)
    assert_one_line_error(code, err, args[0])
    assert not (tmp_path / "out").exists()  # refused before any model load or folder claim


def test_run_unknown_model_lists_the_available_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["run", "--models", "no-such-model", "--out", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "no-such-model", *EMBEDDED_MODELS)


def test_keyboard_interrupt_exits_130_and_says_how_to_resume(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(config: ReproduceConfig) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(reproduce, "reproduce", interrupted)
    code, _, err = run_cli(["run", "--models", "smollm2-135m"], capsys)
    assert code == cli.EXIT_INTERRUPTED == 130
    assert len(err) == 1 and "resume" in err[0] and "same command" in err[0]


def test_keyboard_interrupt_while_listing_models_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted() -> list[dict[str, str]]:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "available_models", interrupted)
    code, _, err = run_cli(["models"], capsys)
    assert code == 130 and len(err) == 1


def test_run_leaves_the_program_name_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    before = sys.argv[0]
    monkeypatch.setattr(reproduce, "reproduce", lambda config: None)
    cli.main(["run"])
    assert sys.argv[0] == before


# ---------------------------------------------------------------- report


def test_report_passes_its_arguments_to_build_report(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    seen: list[tuple[Path, Path | None]] = []
    monkeypatch.setattr(cli, "build_report", lambda results, out: seen.append((results, out)) or tmp_path / "r.html")
    code, out, _ = run_cli(["report", "--results", "results/"], capsys)
    assert code == 0 and seen == [(Path("results/"), None)]
    assert str(tmp_path / "r.html") in out


def test_report_help_shows_its_flags(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["report", "--help"], capsys)
    assert code == 0 and "usage: stages-of-inference report" in out and "--results" in out


def test_report_of_a_folder_without_results_fails_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["report", "--results", str(tmp_path)], capsys)
    assert_one_line_error(code, err, str(tmp_path), "run an experiment first")


def test_run_works_outside_the_repository(tmp_path: Path) -> None:
    """The command depends on no working directory (the repository is on PYTHONPATH only because this checkout is not installed)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "stages_of_inference", "run", "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--models" in result.stdout and "--k" in result.stdout
