"""Prediction and suppression neurons per layer, and neurons of one token class (paper section 5).

Tables ``neurons`` (one row per MLP neuron: vocabulary moments and kind),
``neuron_counts`` (per layer) and ``neuron_class`` (the neurons that most promote or
suppress tokens ending in ``--class-suffix``); summary ``neurons.json`` (with the
weight processing used); figure ``neurons.html``. Reads weights only: the tokens are unused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from jaxtyping import Int
from torch import Tensor

from stages_of_inference.analyses.neurons import (
    DEFAULT_KURTOSIS_THRESHOLD,
    class_neurons,
    classify_neurons,
    neuron_counts,
    neuron_vocab_moments,
)
from stages_of_inference.experiments.config import ExperimentConfig, option
from stages_of_inference.experiments.protocol import Experiment, Results
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.plots.neurons import plot_neuron_counts

NAME = "neurons"
DEFAULT_CLASS_SUFFIX = "ing"
DEFAULT_TOP_K = 20


@dataclass
class NeuronsConfig(ExperimentConfig):
    """The experiment settings plus the classification threshold and the token class."""

    kurtosis_threshold: float = option(
        DEFAULT_KURTOSIS_THRESHOLD, "raw kurtosis above which a neuron is prediction/suppression"
    )
    class_suffix: str = option(DEFAULT_CLASS_SUFFIX, "token class for the case study: tokens ending in this text")
    top_k: int = option(DEFAULT_TOP_K, "class neurons to keep")


def compute(model: LoadedModel, tokens: Int[Tensor, "batch pos"], config: NeuronsConfig) -> Results:
    """Classify every MLP neuron and find the neurons of the token class."""
    classified = classify_neurons(neuron_vocab_moments(model), kurtosis_threshold=config.kurtosis_threshold)
    counts = neuron_counts(classified)
    suffix = config.class_suffix
    in_class = class_neurons(model, lambda text: text.endswith(suffix), top_k=config.top_k)
    figure = plot_neuron_counts(counts.assign(model=config.model))
    figure.update_layout(
        title=f"{config.model}: prediction and suppression neurons (kurtosis > {config.kurtosis_threshold:g})"
    )
    return Results(
        tables={NAME: classified, "neuron_counts": counts, "neuron_class": in_class},
        summary=summarize_counts(counts, model, config),
        figures={NAME: figure},
    )


def summarize_counts(counts: pd.DataFrame, model: LoadedModel, config: NeuronsConfig) -> dict[str, Any]:
    """Totals and peak relative depths of each kind, with the settings and weight processing used."""

    def peak(kind: str) -> float | None:
        return None if counts[kind].max() == 0 else float(counts.loc[counts[kind].idxmax(), "relative_depth"])

    return {
        "model": config.model,
        "kurtosis_threshold": config.kurtosis_threshold,
        "class_suffix": config.class_suffix,
        "weight_processing": model.soi_source.to_dict(),
        "center_unembed_in_moments": True,
        "prediction_total": int(counts["prediction"].sum()),
        "suppression_total": int(counts["suppression"].sum()),
        "prediction_peak_relative_depth": peak("prediction"),
        "suppression_peak_relative_depth": peak("suppression"),
    }


EXPERIMENT = Experiment(NAME, __doc__.splitlines()[0], NeuronsConfig, compute)
