"""Unit tests of stages_of_inference.figure_style: a model has one colour in every figure."""

from __future__ import annotations

import doctest

import pandas as pd

from stages_of_inference.plots import style
from stages_of_inference.plots.attention import plot_previous_token_attention
from stages_of_inference.plots.logit_lens import plot_logit_lens
from stages_of_inference.plots.neurons import plot_neuron_counts
from stages_of_inference.plots.robustness import plot_robustness

MODELS = ("gemma-3-270m", "smollm2-135m")


def test_doctests_pass() -> None:
    assert doctest.testmod(style).failed == 0


def _two_models(rows: dict) -> pd.DataFrame:
    return pd.concat([pd.DataFrame(rows).assign(model=name) for name in MODELS], ignore_index=True)


def _line_colours(figure) -> dict[str, set[str]]:
    """Colours of the named traces, by the model their name starts with."""
    colours: dict[str, set[str]] = {name: set() for name in MODELS}
    for trace in figure.data:
        for name in MODELS:
            if trace.name and trace.name.startswith(name):
                colours[name].add(trace.line.color)
    return colours


def test_each_model_has_the_same_single_colour_in_every_figure() -> None:
    depth = {"layer": [0, 1], "relative_depth": [0.0, 1.0]}
    figures = [
        plot_robustness(_two_models({**depth, "intervention": ["delete", "swap"], "kl": [1.0, 2.0],
                                     "kl_ci_low": [0.5, 1.5], "kl_ci_high": [1.5, 2.5]}), ["kl"]),
        plot_logit_lens(_two_models({**depth, "entropy_bits": [9.0, 3.0], "kl_to_final": [5.0, 0.0],
                                     "loss": [9.0, 3.0], "accuracy": [0.0, 0.4],
                                     "agreement_with_final": [0.0, 1.0], "true_token_rank": [900.0, 20.0]})),
        plot_previous_token_attention(_two_models({**depth, "mean": [0.1, 0.05], "sem": [0.01, 0.01],
                                                   "n_documents": [2, 2]})),
        plot_neuron_counts(_two_models({**depth, "prediction": [0, 5], "suppression": [1, 9]})),
    ]
    expected = style.model_colours(MODELS)
    assert expected[MODELS[0]] != expected[MODELS[1]]
    for figure in figures:
        assert _line_colours(figure) == {name: {expected[name]} for name in MODELS}, figure.layout.title.text
