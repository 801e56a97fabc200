"""Prediction and suppression neurons per layer, and neurons of one token class (paper section 5).

Writes into ``OUT/<model>/``: ``neurons.parquet`` (one row per MLP neuron: vocabulary
moments and kind), ``neuron_counts.parquet`` (per layer), ``neuron_class.parquet`` (the
neurons that most promote or suppress tokens ending in ``--class-suffix``),
``neurons.json`` (a summary, with the weight processing used) and ``neurons.html``.

Example:
    python -m experiments.neurons --model smollm2-135m --out results/
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from experiments.common import (
    ExperimentConfig,
    option,
    parse_config,
    prepare,
    run_main,
    save_figure,
    save_summary,
    save_table,
)
from stages_of_inference.analyses.neurons import (
    DEFAULT_KURTOSIS_THRESHOLD,
    class_neurons,
    classify_neurons,
    neuron_counts,
    neuron_vocab_moments,
)
from stages_of_inference.plots.neurons import plot_neuron_counts

NAME = "neurons"
DEFAULT_CLASS_SUFFIX = "ing"
DEFAULT_TOP_K = 20


@dataclass
class NeuronsConfig(ExperimentConfig):
    """The experiment settings plus the classification threshold and the token class."""

    kurtosis_threshold: float = option(DEFAULT_KURTOSIS_THRESHOLD, "raw kurtosis above which a neuron is prediction/suppression")
    class_suffix: str = option(DEFAULT_CLASS_SUFFIX, "token class for the case study: tokens ending in this text")
    top_k: int = option(DEFAULT_TOP_K, "class neurons to keep")


def run(
    config: ExperimentConfig,
    *,
    kurtosis_threshold: float = DEFAULT_KURTOSIS_THRESHOLD,
    class_suffix: str = DEFAULT_CLASS_SUFFIX,
    top_k: int = DEFAULT_TOP_K,
) -> pd.DataFrame:
    """Classify every MLP neuron of one model; write tables, summary and figure."""
    started = time.perf_counter()
    model, _, folder = prepare(config)
    classified = classify_neurons(neuron_vocab_moments(model), kurtosis_threshold=kurtosis_threshold)
    counts = neuron_counts(classified)
    in_class = class_neurons(model, lambda text: text.endswith(class_suffix), top_k=top_k)
    save_table(classified, folder, NAME)
    save_table(counts, folder, "neuron_counts")
    save_table(in_class, folder, "neuron_class")
    save_summary(_summary(config, model, counts, kurtosis_threshold, class_suffix, time.perf_counter() - started), folder, NAME)
    figure = plot_neuron_counts(counts.assign(model=config.model))
    figure.update_layout(title=f"{config.model}: prediction and suppression neurons (kurtosis > {kurtosis_threshold:g})")
    save_figure(figure, folder, NAME)
    print(f"{config.model}: neuron tables, summary and figure in {folder}")
    return classified


def _summary(config, model, counts: pd.DataFrame, threshold: float, suffix: str, seconds: float) -> dict[str, object]:  # noqa: ANN001
    def peak(kind: str) -> float | None:
        return None if counts[kind].max() == 0 else float(counts.loc[counts[kind].idxmax(), "relative_depth"])

    return {
        "model": config.model,
        "kurtosis_threshold": threshold,
        "class_suffix": suffix,
        "weight_processing": model.soi_source.to_dict(),
        "center_unembed_in_moments": True,
        "prediction_total": int(counts["prediction"].sum()),
        "suppression_total": int(counts["suppression"].sum()),
        "prediction_peak_relative_depth": peak("prediction"),
        "suppression_peak_relative_depth": peak("suppression"),
        "wall_seconds": round(seconds, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""

    def body(args: Sequence[str] | None) -> None:
        config = parse_config(args, __doc__.splitlines()[0], NeuronsConfig)
        run(config, kurtosis_threshold=config.kurtosis_threshold, class_suffix=config.class_suffix, top_k=config.top_k)

    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
