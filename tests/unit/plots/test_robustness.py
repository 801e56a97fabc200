"""Unit tests of stages_of_inference.plots.robustness: panels, CI bands, one line per model, any kind."""

from __future__ import annotations

import pandas as pd
import pytest

from stages_of_inference.errors import ConfigError
from stages_of_inference.plots.robustness import PANELS, plot_robustness
from stages_of_inference.plots.style import DEPTH_AXIS_TITLE


def _sweep(with_ci: bool) -> pd.DataFrame:
    table = pd.DataFrame(
        {"intervention": ["delete", "delete", "swap"], "layer": [0, 1, 0], "relative_depth": [0.0, 1.0, 0.0]}
    )
    for metric in PANELS:
        table[metric] = [0.5, 0.7, 0.6]
        if with_ci:
            table[f"{metric}_ci_low"], table[f"{metric}_ci_high"] = table[metric] - 0.1, table[metric] + 0.1
    return table


def test_one_band_and_line_per_panel_and_model() -> None:
    table = pd.concat([_sweep(True).assign(model="a"), _sweep(True).assign(model="b")], ignore_index=True)
    figure = plot_robustness(table)
    lines = [trace for trace in figure.data if trace.fill is None]
    bands = [trace for trace in figure.data if trace.fill == "toself"]
    assert len(lines) == len(bands) == len(PANELS) * 2 * 2  # metrics x interventions x models
    assert sum(trace.showlegend is not False for trace in lines) == 2  # one legend entry per model
    assert figure.layout.xaxis7.title.text == DEPTH_AXIS_TITLE  # bottom-left panel


def test_without_ci_columns_there_is_no_band() -> None:
    figure = plot_robustness(_sweep(False), ["kl"])
    assert [trace.name for trace in figure.data] == ["model", "model"]  # delete, swap
    assert all(trace.fill is None for trace in figure.data)


def test_a_table_of_other_kinds_gets_a_column_each_and_markers_where_layers_repeat() -> None:
    table = pd.DataFrame(
        {
            "intervention": ["repeat", "repeat", "repeat", "order"],
            "layer": [0, 1, 0, 2],
            "relative_depth": [0.0, 0.5, 0.0, 1.0],
            "kl": [0.1, 0.2, 0.3, 0.4],
        }
    )
    figure = plot_robustness(table, ["kl"])
    assert [a.text for a in figure.layout.annotations] == ["repeat a range of layers", "run an explicit order"]
    assert [trace.mode for trace in figure.data] == ["markers", "lines+markers"]  # layer 0 repeated at widths 1, 2


def test_an_empty_table_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="empty"):
        plot_robustness(_sweep(False).iloc[:0], ["kl"])
