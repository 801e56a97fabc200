"""Unit tests of the ``stages-of-inference`` command line (stages_of_inference.cli)."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import experiments.reproduce
from stages_of_inference import cli
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
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False,
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


def test_run_passes_its_arguments_to_experiments_reproduce(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(experiments.reproduce, "main", lambda argv: seen.append(list(argv)) or 0)
    code, _, _ = run_cli(["run", "--models", "smollm2-135m", "--tokens", "64"], capsys)
    assert code == 0
    assert seen == [["--models", "smollm2-135m", "--tokens", "64"]]


def test_run_returns_the_reproduction_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(experiments.reproduce, "main", lambda argv: 2)
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
    def interrupted(argv: list[str]) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(experiments.reproduce, "main", interrupted)
    code, _, err = run_cli(["run", "--models", "smollm2-135m"], capsys)
    assert code == cli.EXIT_INTERRUPTED == 130
    assert len(err) == 1 and "resume" in err[0] and "same command" in err[0]


def test_keyboard_interrupt_while_listing_models_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted() -> list[dict[str, str]]:
        raise KeyboardInterrupt

    monkeypatch.setattr("stages_of_inference.models.available_models", interrupted)
    code, _, err = run_cli(["models"], capsys)
    assert code == 130 and len(err) == 1


def test_program_name_is_restored_after_delegating(monkeypatch: pytest.MonkeyPatch) -> None:
    before = sys.argv[0]
    monkeypatch.setattr(experiments.reproduce, "main", lambda argv: 0)
    cli.main(["run"])
    assert sys.argv[0] == before


# ---------------------------------------------------------------- report


def test_report_without_its_module_fails_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "REPORT_MODULE", "experiments.no_such_report_module")
    code, _, err = run_cli(["report", "--results", "results"], capsys)
    assert_one_line_error(code, err, "report", "not available")


def test_report_module_without_main_fails_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "experiments.fake_report", types.ModuleType("experiments.fake_report"))
    monkeypatch.setattr(cli, "REPORT_MODULE", "experiments.fake_report")
    code, _, err = run_cli(["report"], capsys)
    assert_one_line_error(code, err, "main")


def test_report_passes_its_arguments_to_experiments_report(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[list[str]] = []
    fake = types.ModuleType("experiments.fake_report")
    fake.main = lambda argv: seen.append(list(argv)) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "experiments.fake_report", fake)
    monkeypatch.setattr(cli, "REPORT_MODULE", "experiments.fake_report")
    code, _, _ = run_cli(["report", "results/"], capsys)
    assert code == 0 and seen == [["results/"]]


def test_report_help_comes_from_experiments_report(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["report", "--help"], capsys)
    assert code == 0 and "usage: stages-of-inference report" in out
