"""Bad input to an experiment's command line fails in one line: exit code 2, one ``error:`` line, no traceback.

Each test checks the key words of the message and that nothing was written that a
corrected rerun would trip over. The models are tiny and local (a 4-layer Llama saved
with ``save_pretrained``), so each case runs in a second; the robustness experiment
stands in for all (they share :func:`stages_of_inference.experiments.runner.main`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import transformers.utils.logging

from stages_of_inference.experiments import runner
from stages_of_inference.experiments.robustness import EXPERIMENT as ROBUSTNESS
from stages_of_inference.models import EMBEDDED_MODELS
from stages_of_inference.runs.identity import IDENTITY_FILE
from tests.tiny_models import N_CTX

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def broken_copy(tiny_folder: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model folder that a test may damage."""
    return Path(shutil.copytree(tiny_folder, tmp_path / "model"))


@pytest.fixture(autouse=True)
def _no_progress_bars(monkeypatch: pytest.MonkeyPatch) -> None:
    """transformers' "Loading weights" bar writes to stderr; the one-line checks ignore it."""
    monkeypatch.setattr(transformers.utils.logging, "_tqdm_active", False)


def robustness_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """Run ``python -m experiments.robustness ARGS`` in-process; return (exit code, stderr lines)."""
    capsys.readouterr()
    code = runner.main(ROBUSTNESS, ["--tokens", "128", "--seq-len", "32", *args])
    return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def assert_cli_error(code: int, err: list[str], *words: str) -> None:
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith("error: ") and "Traceback" not in err[0]
    for word in words:
        assert word in err[0], (word, err[0])


def tiny_args(tiny_folder: Path, out: Path, *extra: str) -> list[str]:
    return ["--model", str(tiny_folder), "--out", str(out), *extra]


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def test_unknown_model_name_at_the_command_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "experiments.robustness", "--model", "no-such-model", "--out", str(tmp_path)],
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert_cli_error(result.returncode, lines, "no-such-model", *EMBEDDED_MODELS)
    assert not any(tmp_path.iterdir())


def test_corrupted_safetensors_at_the_command_line(
    broken_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = broken_copy / "model.safetensors"
    weights.write_bytes(b"\x00" * 64)
    code, err = robustness_cli(tiny_args(broken_copy, tmp_path / "out"), capsys)
    assert_cli_error(code, err, "cannot load model folder", "corrupted")


def test_auto_map_at_the_command_line(broken_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = json.loads((broken_copy / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
    (broken_copy / "config.json").write_text(json.dumps(config))
    code, err = robustness_cli(tiny_args(broken_copy, tmp_path / "out"), capsys)
    assert_cli_error(code, err, "--trust-remote-code")


def test_empty_corpus_at_the_command_line(
    tiny_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "empty.txt"
    corpus.write_text("")
    code, err = robustness_cli(tiny_args(tiny_folder, tmp_path / "out", "--corpus", str(corpus)), capsys)
    assert_cli_error(code, err, "empty.txt", "holds no text")
    assert not (tmp_path / "out").exists()


def test_too_short_corpus_at_the_command_line(
    tiny_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "short.txt"
    corpus.write_text("Only a few words here.")
    code, err = robustness_cli(tiny_args(tiny_folder, tmp_path / "out", "--corpus", str(corpus)), capsys)
    assert_cli_error(code, err, "short.txt", "tokens", "lower n_tokens or add text")


def test_non_utf8_corpus_at_the_command_line(tiny_folder: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "latin1.txt"
    corpus.write_bytes("Der Bär läuft über die Straße. ".encode("latin-1") * 50)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.robustness",
            *tiny_args(tiny_folder, tmp_path / "out"),
            "--corpus",
            str(corpus),
            "--tokens",
            "128",
            "--seq-len",
            "32",
        ],
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert_cli_error(result.returncode, lines, "latin1.txt", "not valid UTF-8", "byte offset 5")


def test_missing_corpus_path_at_the_command_line(
    tiny_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = robustness_cli(tiny_args(tiny_folder, tmp_path / "out", "--corpus", str(tmp_path / "nope.txt")), capsys)
    assert_cli_error(code, err, "nope.txt", "does not exist")


def test_seq_len_beyond_the_model_context(
    tiny_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = tiny_args(tiny_folder, tmp_path / "out", "--seq-len", str(2 * N_CTX), "--tokens", str(4 * N_CTX))
    code, err = robustness_cli(args, capsys)
    assert_cli_error(code, err, f"seq_len={2 * N_CTX}", f"context of {N_CTX} tokens", f"seq_len <= {N_CTX}")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--tokens", "0", ["tokens=0", "--tokens", "positive"]),
        ("--tokens", "-5", ["tokens=-5", "positive"]),
        ("--seq-len", "-1", ["seq_len=-1", "--seq-len", "BOS"]),
        ("--seq-len", "0", ["seq_len=0", "--seq-len >= 3"]),
        ("--batch-size", "0", ["batch_size=0", "--batch-size", "at least 1"]),
        ("--batch-size", "-3", ["batch_size=-3", "at least 1"]),
        ("--tokens", "16", ["tokens=16", "below seq_len=32", "no window fits"]),
    ],
)
def test_zero_or_negative_budgets_fail_before_anything_is_loaded_or_written(
    flag: str, value: str, words: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The model does not exist: a budget error must come first, before any loading.
    code, err = robustness_cli(["--model", "never-loaded", "--out", str(tmp_path / "out"), flag, value], capsys)
    assert_cli_error(code, err, *words)
    assert not (tmp_path / "out").exists()  # no run.json claims the folder for a bad run


def test_a_refused_batch_size_does_not_block_the_next_run(
    tiny_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: ``--batch-size 0`` used to write run.json first, so a corrected rerun was refused."""
    out = tmp_path / "out"
    code, _ = robustness_cli(tiny_args(tiny_folder, out, "--batch-size", "0"), capsys)
    assert code == 2
    code, err = robustness_cli(tiny_args(tiny_folder, out, "--batch-size", "2"), capsys)
    assert code == 0, err
    assert json.loads(next(out.glob(f"*/{IDENTITY_FILE}")).read_text())["batch_size"] == 2


def test_out_under_a_regular_file_is_one_line(
    tiny_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Tests run as root, where chmod does not stop writes; a path under a file always fails.
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    code, err = robustness_cli(tiny_args(tiny_folder, blocker / "out"), capsys)
    assert_cli_error(code, err, "cannot write to", str(blocker), "--out")
    assert blocker.read_text() == "not a folder"


def test_another_seed_into_a_finished_folder_at_the_command_line(
    tiny_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, err = robustness_cli(tiny_args(tiny_folder, out), capsys)
    assert code == 0, err
    code, err = robustness_cli(tiny_args(tiny_folder, out, "--seed", "7"), capsys)
    assert_cli_error(code, err, "different run", "seed: 0 there, 7 now", "--overwrite")
    code, err = robustness_cli(tiny_args(tiny_folder, out, "--seed", "7", "--overwrite"), capsys)
    assert code == 0, err
