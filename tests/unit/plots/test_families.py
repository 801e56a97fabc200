"""Unit tests of stages_of_inference.plots.families on synthetic sweep tables.

Heatmaps: one cell per intervention at its start x width (blocks) or i x j (swaps),
NaN where none ran, axis titles; component curves: one line (and band) per kind.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stages_of_inference.errors import ConfigError
from stages_of_inference.interventions import intervention_family
from stages_of_inference.plots.families import (
    block_grid,
    plot_all_swaps,
    plot_block_deletions,
    plot_component_deletions,
    swap_grid,
)
from stages_of_inference.plots.style import DEPTH_AXIS_TITLE
from stages_of_inference.stages import detect_stages

N_LAYERS = 6


def family_table(family: str, n_layers: int = N_LAYERS, **options: object) -> pd.DataFrame:
    """A sweep table of a family, each metric a distinct function of the intervention's layers."""
    rows = []
    for intervention in intervention_family(family, n_layers, **options):
        other = intervention.other if intervention.other is not None else intervention.layer
        value = 10.0 * intervention.layer + other
        rows.append(
            {
                "intervention": intervention.kind,
                "layer": intervention.layer,
                "relative_depth": intervention.layer / (n_layers - 1),
                "label": intervention.label,
                "kl": value,
                "kl_ci_low": value - 1,
                "kl_ci_high": value + 1,
                "relative_accuracy": 1 / (1 + value),
                "relative_accuracy_ci_low": 0.0,
                "relative_accuracy_ci_high": 1.0,
            }
        )
    return pd.DataFrame(rows)


def test_the_block_grid_puts_each_block_at_its_width_and_start() -> None:
    grid = block_grid(family_table("blocks", max_width=3), "kl")
    assert grid.index.tolist() == [2, 3] and grid.columns.tolist() == list(range(N_LAYERS - 1))
    assert grid.loc[2, 4] == 10 * 4 + 5  # layers 4-5
    assert grid.loc[3, 1] == 10 * 1 + 3  # layers 1-3
    assert math.isnan(grid.loc[3, 4])  # a block of 3 cannot start at layer 4 of 6


def test_the_block_heatmaps_show_kl_and_relative_accuracy_side_by_side() -> None:
    table = family_table("blocks", max_width=3)
    figure = plot_block_deletions(table)
    assert [trace.type for trace in figure.data] == ["heatmap", "heatmap"]
    assert [trace.z.shape for trace in figure.data] == [(2, 5), (2, 5)]
    np.testing.assert_array_equal(figure.data[1].z, block_grid(table, "relative_accuracy").to_numpy())
    assert np.isnan(figure.data[0].z).sum() == 1
    assert figure.layout.xaxis.title.text == "first deleted layer"
    assert figure.layout.yaxis2.title.text == "layers deleted (width)"


def test_the_swap_heatmap_fills_the_upper_triangle_only() -> None:
    table = family_table("swaps-all")
    figure = plot_all_swaps(table, "relative_accuracy")
    z = figure.data[0].z
    assert z.shape == (N_LAYERS - 1, N_LAYERS - 1)  # i = 0..4, j = 1..5
    filled = ~np.isnan(z)
    assert filled.sum() == N_LAYERS * (N_LAYERS - 1) // 2
    assert (filled == np.triu(np.ones_like(filled))).all()
    assert z[1, 3] == pytest.approx(1 / (1 + 10 * 1 + 4))  # swap layers 1-4
    assert (figure.layout.xaxis.title.text, figure.layout.yaxis.title.text) == ("upper layer j", "lower layer i")


def test_a_swap_not_run_is_nan_and_adjacent_swaps_alone_fill_the_diagonal() -> None:
    grid = swap_grid(family_table("default"), "kl")
    assert not np.isnan(np.diag(grid.to_numpy())).any()
    assert np.isnan(grid.to_numpy()[np.triu_indices(N_LAYERS - 1, k=1)]).all()


def test_component_curves_one_line_and_band_per_kind_per_panel() -> None:
    table = family_table("components")
    figure = plot_component_deletions(table)
    lines = [trace for trace in figure.data if trace.fill is None]
    bands = [trace for trace in figure.data if trace.fill == "toself"]
    assert [trace.name for trace in lines] == ["attention only", "MLP only", "whole layer"] * 2
    assert len(bands) == len(lines)
    assert [len(trace.x) for trace in lines] == [N_LAYERS] * 6
    assert figure.layout.xaxis.title.text == figure.layout.xaxis2.title.text == DEPTH_AXIS_TITLE


def test_component_curves_shade_the_stages_and_tell_models_apart() -> None:
    sweep = pd.DataFrame(
        {"intervention": "delete", "layer": range(10), "kl": [3, 2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 4]}
    )
    stages = detect_stages(sweep).table
    table = pd.concat([family_table("components").assign(model=name) for name in ("a", "b")], ignore_index=True)
    figure = plot_component_deletions(table, stages, metrics=["kl"])
    found = int((stages.status == "found").sum())
    assert len(figure.layout.shapes) == found > 0
    lines = [trace for trace in figure.data if trace.fill is None]
    assert [trace.line.dash for trace in lines] == ["solid"] * 3 + ["dash"] * 3
    assert lines[0].name == "attention only (a)"


@pytest.mark.parametrize(
    ("plot", "family"),
    [(plot_block_deletions, "default"), (plot_all_swaps, "components"), (plot_component_deletions, "blocks")],
)
def test_a_table_without_the_family_is_a_config_error(plot: object, family: str) -> None:
    with pytest.raises(ConfigError, match="sweep"):
        plot(family_table(family))  # type: ignore[operator]


def test_a_heatmap_refuses_several_models() -> None:
    table = pd.concat([family_table("blocks").assign(model=name) for name in ("a", "b")], ignore_index=True)
    with pytest.raises(ConfigError, match="one model"):
        plot_block_deletions(table)
