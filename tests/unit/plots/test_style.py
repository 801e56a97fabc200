"""Unit tests of stages_of_inference.plots.style: a model has one colour in every figure.

Also runs every plots module's doctest example.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pandas as pd
import plotly.graph_objects as go
import pytest

from stages_of_inference import plots
from stages_of_inference.plots import style
from stages_of_inference.plots.attention import plot_previous_token_attention
from stages_of_inference.plots.logit_lens import plot_logit_lens
from stages_of_inference.plots.neurons import plot_neuron_counts
from stages_of_inference.plots.norms import plot_component_norms
from stages_of_inference.plots.robustness import plot_robustness

MODELS = ("gemma-3-270m", "smollm2-135m")
MODULES = sorted(module.name for module in pkgutil.iter_modules(plots.__path__))


@pytest.mark.parametrize("name", ["__init__", *MODULES])
def test_doctests_pass(name: str) -> None:
    module = plots if name == "__init__" else importlib.import_module(f"stages_of_inference.plots.{name}")
    assert doctest.testmod(module).failed == 0


def test_every_plot_function_is_exposed_under_soi_plots() -> None:
    import stages_of_inference as soi

    for name in MODULES:
        module = importlib.import_module(f"stages_of_inference.plots.{name}")
        for function in (attribute for attribute in vars(module) if attribute.startswith("plot_")):
            assert getattr(soi.plots, function) is getattr(module, function)
            assert not hasattr(soi, function), f"soi.{function}: figures live under soi.plots"


def _two_models(rows: dict) -> pd.DataFrame:
    return pd.concat([pd.DataFrame(rows).assign(model=name) for name in MODELS], ignore_index=True)


def _line_colours(figure) -> dict[str, set[str]]:
    """Colours of the named traces, by the model their name starts or ends with."""
    colours: dict[str, set[str]] = {name: set() for name in MODELS}
    for trace in figure.data:
        for name in MODELS:
            if trace.name and (trace.name.startswith(name) or trace.name.endswith(f"({name})")):
                colours[name].add(trace.line.color)
    return colours


def test_each_model_has_the_same_single_colour_in_every_figure() -> None:
    depth = {"layer": [0, 1], "relative_depth": [0.0, 1.0]}
    figures = [
        plot_robustness(
            _two_models(
                {
                    **depth,
                    "intervention": ["delete", "swap"],
                    "kl": [1.0, 2.0],
                    "kl_ci_low": [0.5, 1.5],
                    "kl_ci_high": [1.5, 2.5],
                }
            ),
            ["kl"],
        ),
        plot_logit_lens(
            _two_models(
                {
                    **depth,
                    "entropy_bits": [9.0, 3.0],
                    "kl_to_final": [5.0, 0.0],
                    "loss": [9.0, 3.0],
                    "accuracy": [0.0, 0.4],
                    "agreement_with_final": [0.0, 1.0],
                    "true_token_rank": [900.0, 20.0],
                }
            )
        ),
        plot_previous_token_attention(
            _two_models({**depth, "mean": [0.1, 0.05], "sem": [0.01, 0.01], "n_documents": [2, 2]})
        ),
        plot_neuron_counts(_two_models({**depth, "prediction": [0, 5], "suppression": [1, 9]})),
        plot_component_norms(
            _two_models(
                {**depth, "attn_out_norm": [1.0, 2.0], "mlp_out_norm": [1.0, 9.0], "resid_post_norm": [3.0, 20.0]}
            )
        ),
    ]
    expected = style.model_colours(MODELS)
    assert expected[MODELS[0]] != expected[MODELS[1]]
    for figure in figures:
        assert _line_colours(figure) == {name: {expected[name]} for name in MODELS}, figure.layout.title.text


def test_by_model_keeps_the_order_of_first_appearance_and_every_row() -> None:
    table = pd.DataFrame({"model": ["b", "a", "b", "a"], "value": [1, 2, 3, 4]})
    groups = style.by_model(table)
    assert [(name, rows.value.tolist()) for name, rows in groups] == [("b", [1, 3]), ("a", [2, 4])]
    unnamed = style.by_model(table.drop(columns="model"))
    assert len(unnamed) == 1 and unnamed[0][0] == "" and unnamed[0][1].value.tolist() == [1, 2, 3, 4]


def test_band_outlines_high_then_low_in_one_closed_polygon() -> None:
    figure = go.Figure()
    style.add_band(figure, pd.Series([0.0, 0.5, 1.0]), [1.0, 2.0, 3.0], [4.0, 5.0, 6.0], "#000000", legendgroup="m")
    band = figure.data[0]
    assert band.x == (0.0, 0.5, 1.0, 1.0, 0.5, 0.0)
    assert band.y == (4.0, 5.0, 6.0, 3.0, 2.0, 1.0)
    assert band.fill == "toself" and band.opacity == style.BAND_OPACITY
    assert band.showlegend is False and band.legendgroup == "m" and band.fillcolor == "#000000"


def test_combine_tables_names_each_model() -> None:
    combined = style.combine_tables({"a": pd.DataFrame({"kl": [1.0, 2.0]}), "b": pd.DataFrame({"kl": [3.0]})})
    assert combined.model.tolist() == ["a", "a", "b"] and combined.kl.tolist() == [1.0, 2.0, 3.0]
    assert combined.index.tolist() == [0, 1, 2]
