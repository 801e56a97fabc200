"""Unit tests of stages_of_inference.plots.cka."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stages_of_inference.plots.cka import plot_cka


def test_plot_cka_is_a_heatmap_of_the_matrix() -> None:
    matrix = pd.DataFrame([[1.0, 0.2], [0.2, 1.0]], index=[4, 7], columns=[4, 7])
    heatmap = plot_cka(matrix).data[0]
    assert list(heatmap.x) == [4, 7] and np.asarray(heatmap.z).tolist() == matrix.values.tolist()
