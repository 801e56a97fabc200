"""Fixtures of the distributed tests: a tiny model loaded by name, and a local Ray instance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from stages_of_inference.corpus import load_corpus
from stages_of_inference.models import load_model
from stages_of_inference.models.bridge import LoadedModel

RAY_CPUS = 2


@pytest.fixture(scope="module")
def folder_model(tiny_folder: Path) -> LoadedModel:
    """The tiny Llama loaded by its folder name (raw weights), so Ray workers can load it again."""
    return load_model(tiny_folder, compatibility_mode=False)


@pytest.fixture(scope="module")
def folder_tokens(folder_model: LoadedModel) -> torch.Tensor:
    """16 windows of 32 tokens of the embedded corpus: enough batches (of one window) to kill something mid-run."""
    return load_corpus("embedded", folder_model, n_tokens=16 * 32, seq_len=32, seed=0)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """A local Ray instance with two CPUs, started by this process and shut down after the session."""
    ray = pytest.importorskip("ray", reason="the Ray tests need the ray extra: pip install -e '.[ray]'")
    context = ray.init(num_cpus=RAY_CPUS, include_dashboard=False)
    yield context
    ray.shutdown()
