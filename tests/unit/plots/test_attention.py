"""Unit tests of stages_of_inference.plots.attention on hand-made tables."""

from __future__ import annotations

import math

import pandas as pd

from stages_of_inference.plots.attention import plot_previous_token_attention


def test_plot_has_a_band_and_a_line_per_group() -> None:
    table = pd.DataFrame(
        {
            "layer": [0, 1] * 2,
            "relative_depth": [0.0, 1.0] * 2,
            "mean": [0.1, 0.2] * 2,
            "sem": [0.01, math.nan] * 2,
            "n_documents": 3,
            "model": ["a", "a", "b", "b"],
        }
    )
    figure = plot_previous_token_attention(table)
    assert len(figure.data) == 4
    assert figure.data[0].fill == "toself"


def test_head_tables_have_one_line_per_model_and_head() -> None:
    table = pd.DataFrame(
        {
            "layer": [0, 0, 1, 1],
            "head": [0, 1, 0, 1],
            "relative_depth": [0.0, 0.0, 1.0, 1.0],
            "mean": [0.1, 0.2, 0.3, 0.4],
            "sem": 0.01,
            "n_documents": 3,
        }
    )
    both = pd.concat([table.assign(model="a"), table.assign(model="b")], ignore_index=True)
    names = [trace.name for trace in plot_previous_token_attention(both).data if trace.fill is None]
    assert names == ["a head 0", "a head 1", "b head 0", "b head 1"]
    lone = [trace.name for trace in plot_previous_token_attention(table.drop(columns="head")).data]
    assert lone[1::2] == ["mean over heads"]
