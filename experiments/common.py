"""What every experiment shares: its configuration, command line, inputs and outputs.

An :class:`ExperimentConfig` dataclass drives both Python and the command line (each
field becomes a ``--flag`` whose help is the field's docstring line). :func:`prepare`
turns it into a model, a token tensor and an output folder; :func:`save_table` and
:func:`save_figure` write results atomically.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import torch
from transformer_lens.model_bridge import TransformerBridge

import stages_of_inference
from stages_of_inference.cli import OneLineParser
from stages_of_inference.corpus import EMBEDDED_CORPUS, load_corpus
from stages_of_inference.errors import ConfigError, StagesError
from stages_of_inference.models import DEFAULT_MODEL, load_model
from stages_of_inference.runs.atomic import write_json, write_parquet, write_text
from stages_of_inference.runs.identity import claim_folder, tokens_sha256


def option(default: object, help: str) -> object:  # noqa: A002 - argparse's word
    """A config field whose ``help`` text documents it in Python and on the command line."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class ExperimentConfig:
    """Inputs of one experiment on one model; each field is also a command-line flag."""

    model: str = option(DEFAULT_MODEL, "embedded model name, .gguf file, HF folder or hub id")
    corpus: str = option(
        EMBEDDED_CORPUS, "'embedded', a text/jsonl/parquet file or folder, or an HF dataset name"
    )
    tokens: int = option(4096, "token budget: the corpus gives tokens // seq_len windows")
    seq_len: int = option(256, "tokens per window, BOS included")
    seed: int = option(0, "seed of the document order (same seed, same tokens)")
    batch_size: int = option(4, "windows per forward pass")
    out: Path = option(Path("results"), "results folder; each model writes into OUT/<model>/")
    raw_weights: bool = option(
        False, "raw HF weights instead of compatibility mode (folded norms, centred unembedding)"
    )
    trust_remote_code: bool = option(False, "allow a hub model to run its own code")
    overwrite: bool = option(False, "clear a results folder that holds a different run")


def build_parser(
    description: str,
    config_type: type[ExperimentConfig] = ExperimentConfig,
    *,
    exclude: frozenset[str] | set[str] = frozenset(),
) -> argparse.ArgumentParser:
    """An argument parser with one ``--flag`` per config field but ``exclude`` (defaults shown)."""
    parser = OneLineParser(  # a usage error is one line on stderr, like every other error
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    for spec in dataclasses.fields(config_type):
        if spec.name in exclude:
            continue
        flag = "--" + spec.name.replace("_", "-")
        help_text = spec.metadata.get("help", "")
        default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()  # type: ignore[misc]
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=help_text)
        elif isinstance(default, list):
            parser.add_argument(flag, nargs="+", default=default, help=help_text)
        else:
            parser.add_argument(flag, type=type(default), default=default, help=help_text)
    return parser


def parse_config(
    argv: Sequence[str] | None,
    description: str,
    config_type: type[ExperimentConfig] = ExperimentConfig,
) -> ExperimentConfig:
    """Parse the command line into a config of ``config_type``."""
    namespace = build_parser(description, config_type).parse_args(argv)
    return config_type(**vars(namespace))


def model_folder_name(model: str) -> str:
    """A folder name for a model: its name, with path separators made safe."""
    return Path(model).name.replace(".gguf", "") if Path(model).suffix == ".gguf" else model.replace("/", "__")


def prepare(config: ExperimentConfig) -> tuple[TransformerBridge, torch.Tensor, Path]:
    """Load the model and corpus of a config and claim its output folder for this run.

    A folder holding the same run is reused (finished work is resumed); one holding
    a different run raises ResultsError unless ``config.overwrite``.
    """
    check_budgets(config)
    model = load_model(
        config.model,
        compatibility_mode=not config.raw_weights,
        trust_remote_code=config.trust_remote_code,
    )
    tokens = load_corpus(config.corpus, model, n_tokens=config.tokens, seq_len=config.seq_len, seed=config.seed)
    folder = output_folder(config)
    claim_folder(folder, run_identity(config, model, tokens), overwrite=config.overwrite)
    return model, tokens, folder


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


def run_identity(config: ExperimentConfig, model: TransformerBridge, tokens: torch.Tensor) -> dict[str, object]:
    """Everything that determines a run's numbers (see :mod:`stages_of_inference.runs.identity`)."""
    return {
        "toolkit_version": stages_of_inference.__version__,
        "model": model.soi_source.identity(),
        "corpus": config.corpus,
        "tokens": config.tokens,
        "seq_len": config.seq_len,
        "seed": config.seed,
        "batch_size": config.batch_size,
        "tokens_sha256": tokens_sha256(tokens),
    }


def output_folder(config: ExperimentConfig) -> Path:
    """``out/<model>/``, where one model's results go."""
    return Path(config.out) / model_folder_name(config.model)


def save_table(table: pd.DataFrame, folder: Path, name: str) -> Path:
    """Write ``name.parquet`` into ``folder``, atomically."""
    return write_parquet(table, folder / f"{name}.parquet")


def save_summary(summary: dict[str, object], folder: Path, name: str) -> Path:
    """Write ``name.json`` into ``folder``, atomically."""
    return write_json(summary, folder / f"{name}.json")


def save_figure(figure: go.Figure, folder: Path, name: str) -> Path:
    """Write a figure as a standalone HTML file (plotly.js embedded: works offline)."""
    return write_text(figure.to_html(include_plotlyjs=True, full_html=True), folder / f"{name}.html")


def run_main(body: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None = None) -> int:
    """Run an experiment's body; an expected error prints one line and returns exit code 2."""
    try:
        body(argv)
    except StagesError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
