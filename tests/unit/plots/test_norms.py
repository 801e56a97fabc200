"""Unit tests of stages_of_inference.plots.norms: log axis, model colours, component dashes."""

from __future__ import annotations

import pandas as pd

from stages_of_inference.analyses.norms import COMPONENTS, component_norms
from stages_of_inference.plots.norms import plot_component_norms
from stages_of_inference.plots.style import model_colours


def test_plot_uses_a_log_axis_and_one_line_per_component_and_model(tiny_model, tiny_tokens) -> None:
    table = component_norms(tiny_model, tiny_tokens)
    figure = plot_component_norms(pd.concat([table.assign(model="a"), table.assign(model="b")]))
    assert figure.layout.yaxis.type == "log"
    assert len(figure.data) == 2 * len(COMPONENTS)


def test_a_model_has_one_colour_and_a_component_one_dash() -> None:
    table = pd.DataFrame(
        {"layer": [0, 1], "relative_depth": [0.0, 1.0], **{column: [1.0, 2.0] for column in COMPONENTS}}
    )
    figure = plot_component_norms(pd.concat([table.assign(model="a"), table.assign(model="b")]))
    colours = model_colours(["a", "b"])
    assert [trace.line.color for trace in figure.data] == [colours["a"]] * 3 + [colours["b"]] * 3
    dashes = [trace.line.dash for trace in figure.data]
    assert dashes[:3] == dashes[3:] and len(set(dashes)) == len(COMPONENTS)
    assert [trace.name for trace in figure.data[:3]] == [f"{column.removesuffix('_norm')} (a)" for column in COMPONENTS]
