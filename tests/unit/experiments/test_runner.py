"""The runner: the manifest records the corpus and its documents; experiments share forwards."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from transformers import PreTrainedTokenizerFast

from stages_of_inference.corpus import load_corpus_with_record
from stages_of_inference.experiments.attention import EXPERIMENT as ATTENTION
from stages_of_inference.experiments.cka import EXPERIMENT as CKA
from stages_of_inference.experiments.config import ExperimentConfig, output_folder
from stages_of_inference.experiments.logit_lens import EXPERIMENT as LOGIT_LENS
from stages_of_inference.experiments.norms import EXPERIMENT as NORMS
from stages_of_inference.experiments.reproduce import ReproduceConfig
from stages_of_inference.experiments.runner import MANIFEST_FILE, run_experiments
from stages_of_inference.runs.atomic import read_json

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("corpus", ["python-docs", "embedded"])
def test_the_manifest_records_the_corpus_and_its_documents(
    tiny_folder: Path, tiny_tokenizer: PreTrainedTokenizerFast, tmp_path: Path, corpus: str
) -> None:
    config = ExperimentConfig(model=str(tiny_folder), corpus=corpus, tokens=96, seq_len=32, batch_size=2, out=tmp_path)
    run_experiments([NORMS], config)
    recorded = read_json(output_folder(config) / MANIFEST_FILE)["corpus"]
    _, expected = load_corpus_with_record(corpus, tiny_tokenizer, 96, 32, seed=0)
    assert recorded == expected.to_json()
    assert recorded["corpus"] == ("python-docs" if corpus == "python-docs" else "prose")
    assert recorded["n_documents"] == len(recorded["document_ids"]) >= 1


def test_experiments_that_read_activations_share_forwards_with_the_same_tables(
    tiny_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lens, attention, norms and CKA: one forward per batch for all four, every table bit for bit."""
    experiments = [LOGIT_LENS, ATTENTION, NORMS, CKA]
    tables = {}
    for shared_gb in (0.0, 1.0):
        config = ReproduceConfig(
            model=str(tiny_folder), tokens=128, seq_len=32, batch_size=2, out=tmp_path / str(shared_gb)
        )
        config.shared_gb = shared_gb
        run_experiments(experiments, config)
        folder = output_folder(config)
        tables[shared_gb] = {path.name: pd.read_parquet(path) for path in sorted(folder.glob("*.parquet"))}
    printed = capsys.readouterr().out
    assert "shared forwards: 2 forwards, 10 batches served from memory" in printed  # 2 batches read 6 times
    assert tables[0.0].keys() == tables[1.0].keys() and len(tables[0.0]) >= 6
    for name, table in tables[0.0].items():
        pd.testing.assert_frame_equal(tables[1.0][name], table, check_exact=True, obj=name)
