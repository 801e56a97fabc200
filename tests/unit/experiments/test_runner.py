"""The runner's manifest records which corpus and which of its documents a run's windows hold."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import PreTrainedTokenizerFast

from stages_of_inference.corpus import load_corpus_with_record
from stages_of_inference.experiments.config import ExperimentConfig, output_folder
from stages_of_inference.experiments.norms import EXPERIMENT as NORMS
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
