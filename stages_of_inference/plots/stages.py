"""Stage bands: shade each estimated stage behind a figure whose x axis is relative depth."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from stages_of_inference.layers import relative_depth
from stages_of_inference.stages import COMBINED_MIDDLE

STAGE_COLOURS = {
    "detokenization": "rgba(31, 119, 180, 0.12)",
    "feature engineering": "rgba(44, 160, 44, 0.12)",
    COMBINED_MIDDLE: "rgba(127, 127, 127, 0.10)",
    "prediction ensembling": "rgba(255, 127, 14, 0.12)",
    "residual sharpening": "rgba(214, 39, 40, 0.12)",
}
"""The fill of each stage's band (a stage not listed gets a faint grey)."""


def add_stage_bands(
    figure: go.Figure,
    stages: pd.DataFrame,
    *,
    model: str | None = None,
    opacity_scale: float = 1.0,
    lens_points: bool = False,
) -> go.Figure:
    """Shade each found stage as a vertical band on every relative-depth x axis of a figure.

    A band spans its stage's first to last layer, widened by half a layer on each side
    so adjacent stages meet. Works on single plots and subplot grids.

    Args:
        figure: A plotly figure whose x axes are relative depth.
        stages: A :func:`detect_stages` table (optionally several models', with a
            ``model`` column).
        model: When ``stages`` holds several models (a ``model`` column), the one to shade.
        opacity_scale: Multiply the band opacity (e.g. 0.5 when several models are shaded).
        lens_points: The x axis is the logit lens's ``point / L`` (point ``i + 1`` is the
            output of layer ``i``) instead of ``layer / (L - 1)``.

    Returns:
        The same figure, for chaining.

    Example:
        >>> import pandas as pd
        >>> from stages_of_inference.stages import detect_stages
        >>> sweep = pd.DataFrame({"intervention": "delete", "layer": range(10),
        ...                       "kl": [3, 2, .1, .1, .1, .1, .1, .1, .1, 4]})
        >>> figure = add_stage_bands(go.Figure(go.Scatter(x=[0, 1], y=[0, 1])), detect_stages(sweep).table)
        >>> len(figure.layout.shapes)
        3
    """
    rows = stages if model is None or "model" not in stages.columns else stages[stages.model == model]
    axes = sorted({key for key in figure.layout.to_plotly_json() if key.startswith("xaxis")}) or ["xaxis"]
    for row in rows[rows.status == "found"].itertuples():
        x0, x1 = _band(row, lens_points)
        for axis in axes:
            suffix = axis.removeprefix("xaxis")
            figure.add_shape(
                type="rect",
                x0=x0,
                x1=x1,
                y0=0,
                y1=1,
                xref=f"x{suffix}",
                yref=f"y{suffix} domain",
                fillcolor=STAGE_COLOURS.get(row.stage, "rgba(0,0,0,0.08)"),
                opacity=opacity_scale,
                line_width=0,
                layer="below",
                label={
                    "text": row.stage if axis == axes[0] else "",
                    "textposition": "top center",
                    "font": {"size": 10},
                },
            )
    return figure


def _band(row: object, lens_points: bool) -> tuple[float, float]:
    """The x extent of a stage's band: its layers widened by half a layer on each side."""
    n_layers = int(row.n_layers)  # type: ignore[attr-defined]
    first, last = int(row.first_layer), int(row.last_layer)  # type: ignore[attr-defined]
    if lens_points:
        return (first + 0.5) / n_layers, (last + 1.5) / n_layers
    return relative_depth(first - 0.5, n_layers), relative_depth(last + 0.5, n_layers)
