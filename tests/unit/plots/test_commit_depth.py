"""Unit tests of stages_of_inference.plots.commit_depth: one colour per model, CI bands, classes in order."""

from __future__ import annotations

import pandas as pd

from stages_of_inference.plots.commit_depth import (
    EXIT_PANELS,
    plot_commit_by_class,
    plot_commit_distribution,
    plot_exit_curves,
)
from stages_of_inference.plots.style import model_colours


def exit_table(with_ci: bool) -> pd.DataFrame:
    table = pd.DataFrame({"relative_depth": [0.0, 0.5, 1.0], **{column: [0.1, 0.5, 0.9] for column in EXIT_PANELS}})
    if with_ci:
        for column in EXIT_PANELS:
            table[f"{column}_ci_low"], table[f"{column}_ci_high"] = table[column] - 0.05, table[column] + 0.05
    return table


def test_exit_curves_draw_a_band_per_panel_and_model_when_intervals_exist() -> None:
    table = pd.concat([exit_table(True).assign(model="a"), exit_table(True).assign(model="b")])
    figure = plot_exit_curves(table)
    bands = [trace for trace in figure.data if trace.fill == "toself"]
    lines = [trace for trace in figure.data if trace.fill != "toself"]
    assert len(bands) == len(lines) == 2 * len(EXIT_PANELS)
    colours = model_colours(["a", "b"])
    assert [line.line.color for line in lines[:2]] == [colours["a"], colours["b"]]
    assert sum(line.showlegend for line in lines) == 2  # one legend entry per model


def test_exit_curves_without_intervals_draw_no_band() -> None:
    figure = plot_exit_curves(exit_table(False).assign(model="a", accuracy_ci_low=float("nan")))
    assert not [trace for trace in figure.data if trace.fill == "toself"]


def test_distribution_has_one_bar_trace_per_model() -> None:
    table = pd.DataFrame({"relative_depth": [0.0, 1.0], "fraction": [0.4, 0.6]})
    figure = plot_commit_distribution(pd.concat([table.assign(model="a"), table.assign(model="b")]))
    assert [trace.name for trace in figure.data] == ["a", "b"]
    assert list(figure.data[1].y) == [0.4, 0.6]


def test_classes_are_ordered_as_the_analysis_lists_them() -> None:
    per_token = pd.DataFrame(
        {"token_class": ["punctuation", "word_initial", "digits"], "relative_commit_depth": [0.2, 0.9, 0.5]}
    )
    figure = plot_commit_by_class(per_token)
    assert list(figure.layout.xaxis.categoryarray) == ["word_initial", "digits", "punctuation"]
