"""Unit tests of stages_of_inference.plots.stages: stage bands on relative-depth axes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots

from stages_of_inference.plots.stages import add_stage_bands
from stages_of_inference.stages import STAGES

N = 20
"""Layers of the model: detokenization 0-2, features 3-9, ensembling 10-17, sharpening 18-19."""


def stage_table(status: str = "found") -> pd.DataFrame:
    """A stage table as :func:`~stages_of_inference.stages.detect_stages` gives it (the band columns)."""
    spans = [(0, 2), (3, 9), (10, 17), (18, 19)]
    return pd.DataFrame(
        {
            "stage": STAGES,
            "status": ["found", status, "found", "found"],
            "n_layers": N,
            "first_layer": [first for first, _ in spans],
            "last_layer": [last for _, last in spans],
        }
    )


def test_bands_cover_every_subplot_and_meet_between_stages() -> None:
    figure = make_subplots(rows=2, cols=2)
    for row in (1, 2):
        for col in (1, 2):
            figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1]), row=row, col=col)
    add_stage_bands(figure, stage_table())
    shapes = figure.layout.shapes
    assert len(shapes) == 4 * 4
    first = [s for s in shapes if s.xref == "x"]
    assert [s.yref for s in first] == ["y domain"] * 4
    assert np.isclose(first[0].x1, first[1].x0) and np.isclose(first[0].x0, -0.5 / 19)


def test_bands_on_logit_lens_points() -> None:
    figure = add_stage_bands(go.Figure(go.Scatter(x=[0, 1], y=[0, 1])), stage_table(), lens_points=True)
    last = figure.layout.shapes[-1]
    assert (last.x0, last.x1) == pytest.approx((18.5 / N, 20.5 / N))


def test_only_found_stages_are_shaded() -> None:
    figure = add_stage_bands(go.Figure(go.Scatter(x=[0, 1], y=[0, 1])), stage_table(status="disputed"))
    assert [shape.label.text for shape in figure.layout.shapes] == [STAGES[0], STAGES[2], STAGES[3]]
