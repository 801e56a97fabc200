"""The settings of an experiment run: one dataclass that drives both Python and the command line.

Each field of :class:`ExperimentConfig` (and of an experiment's subclass adding its own
options) becomes a ``--flag`` whose help is the field's ``help`` metadata
(:func:`stages_of_inference.experiments.command.build_parser`).

Example:
    >>> config = ExperimentConfig(model="smollm2-135m", tokens=1024, seq_len=64)
    >>> output_folder(config)
    PosixPath('results/smollm2-135m')
    >>> check_budgets(ExperimentConfig(tokens=32, seq_len=64))
    Traceback (most recent call last):
    ...
    stages_of_inference.errors.ConfigError: tokens=32 (--tokens) is below seq_len=64 (--seq-len), so no window fits; raise --tokens or lower --seq-len
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stages_of_inference.corpora import DEFAULT_CORPUS
from stages_of_inference.errors import ConfigError
from stages_of_inference.models import DEFAULT_MODEL


def option(default: Any, help: str, *, variant: bool = False) -> Any:
    """A config field whose ``help`` text documents it in Python and on the command line.

    ``variant=True`` marks an option that selects a variant of its experiment (the
    robustness experiment's ``--interventions``): the variant's name, not the option,
    records it (:meth:`stages_of_inference.experiments.protocol.Experiment.run_name`).
    """
    metadata = {"help": help, "variant": variant}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class ExperimentConfig:
    """Inputs of one experiment on one model; each field is also a command-line flag."""

    model: str = option(DEFAULT_MODEL, "embedded model name, .gguf file, HF folder or hub id")
    corpus: str = option(
        DEFAULT_CORPUS,
        "embedded corpus (prose, python-docs, sotu, wikipedia, bbc-news; 'embedded' means prose), "
        "a text/jsonl/parquet file or folder, or an HF dataset name",
    )
    tokens: int = option(4096, "token budget: the corpus gives tokens // seq_len windows")
    seq_len: int = option(256, "tokens per window, BOS included")
    seed: int = option(0, "seed of the document order (same seed, same tokens)")
    batch_size: int = option(4, "windows per forward pass")
    out: Path | str = option(Path("results"), "results folder; each model writes into OUT/<model>/")
    raw_weights: bool = option(
        False, "raw HF weights instead of compatibility mode (folded norms, centred unembedding)"
    )
    trust_remote_code: bool = option(False, "allow a hub model to run its own code")
    device: str = option("cpu", "where the model runs: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    dtype: str = option(
        "float32", "weight dtype: float32, bfloat16 or float16 (metrics in float32, token sums in float64)"
    )
    overwrite: bool = option(False, "clear a results folder that holds a different run")
    backend: str = option("local", "where the robustness sweep runs: 'local', or 'ray' (the ray extra)")
    workers: int = option(1, "Ray workers of the robustness sweep (--backend ray)")
    address: str = option("", "Ray cluster to join (--backend ray); empty: start a local Ray instance")
    shared_gb: float = option(
        4.0,
        "memory for the activations the lens, attention, norms and CKA share (one forward per batch feeds "
        "them all); 0: each runs its own forwards",
    )


def check_budgets(config: ExperimentConfig) -> None:
    """Refuse impossible budgets before a model is loaded or a results folder is claimed.

    Raises:
        ConfigError: ``tokens``, ``seq_len`` or ``batch_size`` is out of range.
    """
    if config.tokens < 1:
        raise ConfigError(f"tokens={config.tokens} (--tokens) must be positive; pass --tokens >= --seq-len")
    if config.seq_len < 3:
        raise ConfigError(
            f"seq_len={config.seq_len} (--seq-len) leaves no room for BOS plus two text tokens; pass --seq-len >= 3"
        )
    if config.tokens < config.seq_len:
        raise ConfigError(
            f"tokens={config.tokens} (--tokens) is below seq_len={config.seq_len} (--seq-len), so no window fits; "
            "raise --tokens or lower --seq-len"
        )
    if config.batch_size < 1:
        raise ConfigError(f"batch_size={config.batch_size} (--batch-size) must be at least 1; pass --batch-size >= 1")
    if not config.shared_gb >= 0:
        raise ConfigError(f"shared_gb={config.shared_gb} (--shared-gb) must be at least 0; pass 0 to share nothing")
    if config.backend not in ("local", "ray"):
        raise ConfigError(f"backend={config.backend!r} (--backend) is not a backend; pass --backend local or ray")
    if config.workers < 1 or (config.backend == "local" and config.workers != 1):
        raise ConfigError(
            f"workers={config.workers} (--workers) needs --backend ray and at least 1 worker; "
            "pass --backend ray --workers N, or leave --workers at 1"
        )


def model_folder_name(model: str) -> str:
    """A folder name for a model: its name, with path separators made safe.

    Example:
        >>> model_folder_name("HuggingFaceTB/SmolLM2-135M"), model_folder_name("/models/tiny.gguf")
        ('HuggingFaceTB__SmolLM2-135M', 'tiny')
    """
    return Path(model).name.replace(".gguf", "") if Path(model).suffix == ".gguf" else model.replace("/", "__")


def output_folder(config: ExperimentConfig) -> Path:
    """``out/<model>/``, where one model's results go."""
    return Path(config.out) / model_folder_name(config.model)
