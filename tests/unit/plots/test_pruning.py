"""Unit tests of stages_of_inference.plots.pruning: one line and band per model and method, styles by method."""

from __future__ import annotations

import pandas as pd

from stages_of_inference.plots.pruning import DELETED_AXIS_TITLE, METHOD_STYLES, PANELS, plot_pruning
from stages_of_inference.plots.style import model_colours


def _comparison(with_ci: bool) -> pd.DataFrame:
    rows = []
    for method in METHOD_STYLES:
        for n_deleted in (1, 2, 3):
            row = {"method": method, "n_deleted": n_deleted, "deleted_layers": str(list(range(n_deleted)))}
            for metric in PANELS:
                row[metric] = 0.1 * n_deleted
                if with_ci:
                    row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = row[metric] - 0.05, row[metric] + 0.05
            rows.append(row)
    return pd.DataFrame(rows)


def test_one_line_and_band_per_model_method_and_panel() -> None:
    table = pd.concat([_comparison(True).assign(model="a"), _comparison(True).assign(model="b")], ignore_index=True)
    figure = plot_pruning(table)
    lines = [trace for trace in figure.data if trace.fill is None]
    bands = [trace for trace in figure.data if trace.fill == "toself"]
    assert len(lines) == len(bands) == len(PANELS) * 2 * len(METHOD_STYLES)
    assert sum(trace.showlegend is not False for trace in lines) == 2 * len(METHOD_STYLES)  # legend: first panel only
    colours = model_colours(["a", "b"])
    for trace in lines:
        model, label = trace.name.split(": ", 1)
        assert trace.line.color == colours[model]
        assert trace.line.dash == {name: dash for name, dash in METHOD_STYLES.values()}[label]
    assert figure.layout.xaxis.title.text == DELETED_AXIS_TITLE
    assert list(lines[0].x) == [1, 2, 3]


def test_a_table_without_intervals_draws_no_bands() -> None:
    figure = plot_pruning(_comparison(False), ["kl"])
    assert all(trace.fill is None for trace in figure.data)
    assert [trace.name for trace in figure.data] == [label for label, _ in METHOD_STYLES.values()]
