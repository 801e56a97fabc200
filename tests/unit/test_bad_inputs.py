"""Every way a user can feed the toolkit bad input fails with a typed, one-line, actionable error.

Each test checks the error type, the key words of the message and, at the command
line, exit code 2 with a single ``error:`` line on stderr and no traceback. The
models here are tiny and local (a 4-layer Llama saved with ``save_pretrained``), so
the command-line cases run in a second. Loading errors raised in Python are tested
with the models subpackage (``tests/unit/models/test_load_errors.py``).
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
import transformers.utils.logging
from transformers import PreTrainedTokenizerFast

from stages_of_inference.corpus import load_corpus
from stages_of_inference.errors import (
    ConfigError,
    CorpusError,
    ResultsError,
)
from stages_of_inference.interventions import (
    Intervention,
    delete_layers,
    layer_order,
    swap_layers,
)
from stages_of_inference.layers import check_layer, check_layers, check_order
from stages_of_inference.models import bridge_from_hf
from stages_of_inference.runs import atomic
from stages_of_inference.runs.identity import IDENTITY_FILE, claim_folder
from stages_of_inference.sweep import robustness_sweep
from tests.tiny_models import N_CTX, N_LAYERS, tiny_hf_model

REPO = Path(__file__).resolve().parents[2]
ENOSPC = OSError(errno.ENOSPC, "No space left on device")


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(autouse=True)
def _no_progress_bars(monkeypatch: pytest.MonkeyPatch) -> None:
    """transformers' "Loading weights" bar writes to stderr; the one-line checks ignore it."""
    monkeypatch.setattr(transformers.utils.logging, "_tqdm_active", False)


# ---------------------------------------------------------------- models


# ---------------------------------------------------------------- corpus


def test_empty_corpus_is_a_corpus_error(tiny_tokenizer: PreTrainedTokenizerFast, tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(CorpusError, match="holds no text"):
        load_corpus(tmp_path / "empty.jsonl", tiny_tokenizer, n_tokens=64, seq_len=32)


# ---------------------------------------------------------------- budgets and context


def test_seq_len_beyond_the_context_of_a_bridge(tiny_folder: Path, tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    bridge = bridge_from_hf(tiny_hf_model("llama", vocab_size=len(tiny_tokenizer)), tiny_tokenizer)
    assert bridge.cfg.n_ctx == N_CTX
    load_corpus("python-docs", bridge, n_tokens=N_CTX, seq_len=N_CTX)  # the limit itself is fine
    with pytest.raises(ConfigError, match=f"exceeds the model's context of {N_CTX}"):
        load_corpus("python-docs", bridge, n_tokens=4 * N_CTX, seq_len=N_CTX + 1)


@pytest.mark.parametrize(("kwargs", "match"), [({"n_tokens": 0}, "n_tokens=0"), ({"seq_len": -1}, "seq_len=-1")])
def test_bad_budgets_in_python_are_config_errors(
    tiny_tokenizer: PreTrainedTokenizerFast, kwargs: dict[str, int], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        load_corpus("python-docs", tiny_tokenizer, **{"n_tokens": 64, "seq_len": 32, **kwargs})


def test_zero_batch_size_in_python_is_a_config_error(tiny_tokenizer: PreTrainedTokenizerFast) -> None:
    bridge = bridge_from_hf(tiny_hf_model("llama", vocab_size=len(tiny_tokenizer)), tiny_tokenizer)
    tokens = load_corpus("python-docs", tiny_tokenizer, n_tokens=64, seq_len=16)
    with pytest.raises(ConfigError, match="batch_size must be at least 1, got 0"):
        robustness_sweep(bridge, tokens, [Intervention("delete", 0)], batch_size=0, progress=False)


# ---------------------------------------------------------------- layer specs


@pytest.fixture(scope="module")
def tiny_bridge(tiny_tokenizer: PreTrainedTokenizerFast) -> Any:
    return bridge_from_hf(tiny_hf_model("llama", vocab_size=len(tiny_tokenizer)), tiny_tokenizer)


@pytest.mark.parametrize("layer", [N_LAYERS, -1, 100])
def test_layer_out_of_range_names_the_valid_range(layer: int) -> None:
    with pytest.raises(ConfigError) as caught:
        check_layer(layer, N_LAYERS)
    assert f"layer {layer} is out of range" in str(caught.value)
    assert f"numbered 0 to {N_LAYERS - 1}" in str(caught.value)


@pytest.mark.parametrize("layer", ["3", 1.0, True, None, [1]])
def test_malformed_layer_must_be_an_integer(layer: object) -> None:
    with pytest.raises(ConfigError, match="must be an integer"):
        check_layer(layer, N_LAYERS)


@pytest.mark.parametrize(
    ("layers", "match"),
    [
        ([], "empty"),
        ([1, 1], "repeat"),
        ("0,1", "list of ints"),
        ([0, N_LAYERS], "out of range"),
        (None, "list of ints"),
    ],
)
@pytest.mark.usefixtures("unchecked_shapes")  # malformed on purpose: our ConfigError must answer
def test_malformed_layer_sets(layers: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        check_layers(layers, N_LAYERS)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("order", "match"), [("0123", "list of ints"), ([0, 9], "out of range"), ([0, "1"], "integer")]
)
def test_malformed_layer_orders(order: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        check_order(order, N_LAYERS)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("intervention", "match"),
    [
        (Intervention("delete", N_LAYERS), "delete layer 4 is out of range"),
        (Intervention("swap", N_LAYERS - 1), "swap layer 3 is out of range"),
        (Intervention("rotate", 0), "unknown intervention 'rotate'"),
    ],
)
def test_bad_interventions(intervention: Intervention, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        intervention.check(N_LAYERS)


def test_bad_layers_on_a_model_leave_it_usable(tiny_bridge: Any) -> None:
    tokens = torch.tensor([[0, 5, 6, 7]])
    before = tiny_bridge(tokens)
    for bad in (
        lambda: delete_layers(tiny_bridge, [N_LAYERS]),
        lambda: swap_layers(tiny_bridge, 0, N_LAYERS),
        lambda: layer_order(tiny_bridge, [0, -1]),
    ):
        with pytest.raises(ConfigError), bad():
            pass
    torch.testing.assert_close(tiny_bridge(tokens), before, rtol=0, atol=0)


# ---------------------------------------------------------------- results folder


def test_unwritable_folder_in_python_is_a_results_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(ResultsError, match="cannot write to"):
        claim_folder(blocker / "run", {"seed": 0})
    with pytest.raises(ResultsError, match="cannot write to"):
        atomic.write_parquet(pd.DataFrame({"a": [1]}), blocker / "table.parquet")


class _FullDisk:
    """Stands in for the ``os`` module inside results_io, failing one call with ENOSPC."""

    def __init__(self, failing: str) -> None:
        self.failing = failing

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def replace(self, *args: Any, **kwargs: Any) -> None:
        if self.failing == "replace":
            raise ENOSPC
        os.replace(*args, **kwargs)

    def fdopen(self, *args: Any, **kwargs: Any) -> Any:
        stream = os.fdopen(*args, **kwargs)
        if self.failing != "write":
            return stream

        class FullStream:
            def __enter__(self) -> FullStream:
                return self

            def __exit__(self, *exc: object) -> None:
                stream.close()

            def write(self, data: bytes) -> int:
                raise ENOSPC

            def __getattr__(self, name: str) -> Any:
                return getattr(stream, name)

        return FullStream()


@pytest.mark.parametrize("failing", ["write", "replace"])
@pytest.mark.parametrize("kind", ["parquet", "json", "text"])
def test_full_disk_leaves_no_partial_file_and_the_old_result_intact(
    failing: str, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writers = {
        "parquet": (lambda v, p: atomic.write_parquet(pd.DataFrame({"v": [v]}), p), lambda p: pd.read_parquet(p).v[0]),
        "json": (lambda v, p: atomic.write_json({"v": v}, p), lambda p: json.loads(p.read_text())["v"]),
        "text": (lambda v, p: atomic.write_text(f"{v}", p), lambda p: float(p.read_text())),
    }
    write, read = writers[kind]
    target = tmp_path / f"result.{kind}"
    write(1.0, target)
    finished = target.read_bytes()
    monkeypatch.setattr(atomic, "os", _FullDisk(failing))
    with pytest.raises(ResultsError) as caught:
        write(2.0, target)
    assert "No space left on device" in str(caught.value) and "nothing was left half-written" in str(caught.value)
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary file left
    assert target.read_bytes() == finished and read(target) == 1.0


def test_full_disk_during_a_sweep_keeps_finished_shards_and_resumes(
    tiny_bridge: Any, tiny_tokenizer: PreTrainedTokenizerFast, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = load_corpus("python-docs", tiny_tokenizer, n_tokens=4 * 16, seq_len=16)
    interventions = [Intervention("delete", 1), Intervention("swap", 2)]
    sweep = lambda: robustness_sweep(
        tiny_bridge, tokens, interventions, batch_size=1, n_bootstrap=20, checkpoint_dir=tmp_path, progress=False
    )
    real_write = atomic._atomic_write
    calls = {"n": 0}

    def fill_up_after_two(path: Path, write: Any) -> Path:
        calls["n"] += 1
        if calls["n"] > 2:
            monkeypatch.setattr(atomic, "os", _FullDisk("write"))
        return real_write(path, write)

    monkeypatch.setattr(atomic, "_atomic_write", fill_up_after_two)
    with pytest.raises(ResultsError, match="No space left on device"):
        sweep()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch-00000.parquet", "batch-00001.parquet"]
    monkeypatch.undo()
    expected = robustness_sweep(tiny_bridge, tokens, interventions, batch_size=1, n_bootstrap=20, progress=False)
    pd.testing.assert_frame_equal(sweep(), expected, check_exact=True)


# ---------------------------------------------------------------- mixed runs


def test_a_folder_holding_another_run_is_refused_naming_the_differences(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    assert claim_folder(folder, {"seed": 0, "tokens": 64}) is False  # fresh
    (folder / "table.parquet").write_bytes(b"finished")
    assert claim_folder(folder, {"seed": 0, "tokens": 64}) is True  # same run: resume
    with pytest.raises(ResultsError) as caught:
        claim_folder(folder, {"seed": 1, "tokens": 64})
    assert "seed: 0 there, 1 now" in str(caught.value) and "tokens" not in str(caught.value).split("(")[1]
    assert (folder / "table.parquet").read_bytes() == b"finished"
    assert claim_folder(folder, {"seed": 1, "tokens": 64}, overwrite=True) is False
    assert [p.name for p in folder.iterdir()] == [IDENTITY_FILE]


def test_a_damaged_run_json_is_a_results_error(tmp_path: Path) -> None:
    (tmp_path / IDENTITY_FILE).write_text("{truncated")
    with pytest.raises(ResultsError, match="--overwrite"):
        claim_folder(tmp_path, {"seed": 0})


def test_undefined_ratios_are_written_as_json_null(tmp_path: Path) -> None:
    """Regression: a NaN relative accuracy (baseline never right) crashed write_json with ValueError."""
    import numpy as np

    path = atomic.write_json({"ratio": float("nan"), "nested": [np.float64("inf"), 1.5]}, tmp_path / "s.json")
    assert json.loads(path.read_text()) == {"ratio": None, "nested": [None, 1.5]}
