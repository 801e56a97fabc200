"""On both embedded models, a load from cached processed weights equals a processing load.

Each test uses its own cache folder (the converted float32 copies are linked in from
the user's cache, so nothing is converted twice): the first ``load_model`` processes
the weights and caches them, the second restores them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from stages_of_inference.corpus import load_corpus
from stages_of_inference.experiments import ExperimentConfig, run_experiments
from stages_of_inference.experiments.norms import EXPERIMENT as NORMS
from stages_of_inference.models import CACHE_ENV_VAR, cache_dir, load_model
from stages_of_inference.models.processed_weights import processed_dir
from tests.conftest import EMBEDDED
from tests.unit.models.test_processed_weights import assert_same_bridge


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder that shares the user's converted weights and assembled GGUFs."""
    shared = cache_dir()
    for part in ("converted", "gguf"):
        if (shared / part).is_dir():
            (tmp_path / part).symlink_to(shared / part)
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("name", EMBEDDED)
def test_cached_processed_weights_rebuild_the_processed_bridge(name: str, private_cache: Path) -> None:
    processed = load_model(name)
    folder = processed_dir(private_cache, str(processed.soi_source.sha256), torch.float32)
    assert folder.is_dir()
    assert processed.soi_source.location != str(folder)

    restored = load_model(name)
    assert restored.soi_source.location == str(folder)
    assert restored.soi_source == replace(processed.soi_source, location=str(folder))
    tokens = load_corpus("python-docs", processed, n_tokens=128, seq_len=64, seed=0)
    assert_same_bridge(processed, restored, tokens)


@pytest.mark.parametrize("name", EMBEDDED)
def test_the_record_is_what_transformer_lens_did_to_an_rmsnorm_model(name: str, private_cache: Path) -> None:
    """Both embedded models use RMSNorm: TransformerLens folds the norms and centres the unembedding only."""
    for model in (load_model(name), load_model(name)):  # processed, then restored from the cache
        record = model.soi_source
        assert model.cfg.normalization_type == "RMS"
        assert (record.compatibility_mode, record.fold_ln, record.center_unembed) == (True, True, True)
        assert record.center_writing_weights is False
        assert model.W_out.mean(-1).abs().max() > 1e-4  # oracle: the writing weights are indeed not centred
        assert (record.dtype, record.device) == ("float32", "cpu")


def test_damaged_processed_weights_are_rebuilt(private_cache: Path) -> None:
    reference = load_model("smollm2-135m")
    weights = processed_dir(private_cache, str(reference.soi_source.sha256), torch.float32) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.warns(UserWarning, match="rebuilding the damaged cached copy"):
        rebuilt = load_model("smollm2-135m")
    assert weights.stat().st_size > 1000
    tokens = load_corpus("python-docs", reference, n_tokens=64, seq_len=32, seed=0)
    with torch.inference_mode():
        assert torch.equal(reference(tokens), rebuilt(tokens))


def test_a_second_experiment_resumes_when_the_model_now_loads_from_its_processed_copy(
    private_cache: Path, tmp_path: Path
) -> None:
    """The first load reads the GGUF's converted copy, the next the processed copy: one run."""
    config = ExperimentConfig(model="smollm2-135m", tokens=64, seq_len=32, out=str(tmp_path / "results"))
    run_experiments([NORMS], config)
    assert processed_dir(private_cache, str(load_model("smollm2-135m").soi_source.sha256), torch.float32).is_dir()
    run_experiments(
        [NORMS], config
    )  # raised ResultsError ("holds results of a different run") when location was identity
    assert (tmp_path / "results" / "smollm2-135m" / "norms.parquet").is_file()
