"""Unit tests of stages_of_inference.plots.self_repair: the chosen intervention, the heatmap's axes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stages_of_inference.plots.self_repair import plot_repair_by_layer, plot_repair_curve, plot_repair_heatmap


def repair_table() -> pd.DataFrame:
    frames = [
        pd.DataFrame(
            {
                "intervention": f"delete layer {deleted}",
                "intervened_layer": deleted,
                "point": range(4),
                "layer": range(-1, 3),
                "relative_depth": np.arange(4) / 3,
                "original_kl_to_final": [3.0, 2.0, 1.0, 0.0],
                "intervened_kl_to_final": [3.0, 2.0 + deleted, 1.5, 0.2],
                "excess_kl": [0.0, float(deleted), 0.5, 0.2],
            }
        )
        for deleted in range(3)
    ]
    return pd.concat(frames, ignore_index=True)


def test_the_curve_shows_the_chosen_intervention_beside_the_original() -> None:
    figure = plot_repair_curve(repair_table().assign(model="m"), "delete layer 2")
    original, intervened = figure.data
    assert list(original.y) == [3.0, 2.0, 1.0, 0.0] and list(intervened.y) == [3.0, 4.0, 1.5, 0.2]
    assert original.line.color == intervened.line.color and intervened.line.dash == "dash"
    assert "delete layer 2" in figure.layout.title.text


def test_the_heatmap_has_a_row_per_deleted_layer_and_a_column_per_layer() -> None:
    heatmap = plot_repair_heatmap(repair_table()).data[0]
    assert list(heatmap.y) == [0, 1, 2] and list(heatmap.x) == [0, 1, 2]  # the embedding point is left out
    assert heatmap.z[2][0] == 2.0


def test_repair_by_layer_has_one_line_per_model() -> None:
    table = pd.DataFrame({"relative_depth": [0.5, 1.0], "mean_repair": [0.1, 0.3]})
    figure = plot_repair_by_layer(pd.concat([table.assign(model="a"), table.assign(model="b")]))
    assert [trace.name for trace in figure.data] == ["a", "b"]
