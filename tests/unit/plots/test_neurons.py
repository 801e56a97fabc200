"""Unit tests of stages_of_inference.plots.neurons on hand-made count tables."""

from __future__ import annotations

import pandas as pd

from stages_of_inference.analyses.neurons import classify_neurons, neuron_counts
from stages_of_inference.plots.neurons import plot_neuron_counts


def test_plot_keeps_models_apart() -> None:
    moments = pd.DataFrame(
        {
            "layer": [0, 0, 1],
            "relative_depth": [0.0, 0.0, 1.0],
            "skew": [3.0, -3.0, 3.0],
            "kurtosis": [10.0, 50.0, 11.0],
        }
    )
    classified = classify_neurons(moments)
    counts = neuron_counts(pd.concat([classified.assign(model="a"), classified.assign(model="b")]))
    figure = plot_neuron_counts(counts)
    assert [trace.name for trace in figure.data] == ["a prediction", "a suppression", "b prediction", "b suppression"]
    assert [trace.line.dash for trace in figure.data] == ["solid", "dash"] * 2
