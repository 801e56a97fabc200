"""What every figure shares: one colour per model, grouping by model, CI bands, depth axes.

Plotly's default colourway hands out colours per trace, so a figure that draws a band
before each line, or two lines per model, would give the same model different colours
in different figures. Figures that overlay models take their colours from
:func:`model_colours` and their groups from :func:`by_model` instead, so a model looks
the same across a report.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

PALETTE = qualitative.Plotly
"""Colours in the order models first appear."""

BAND_OPACITY = 0.2
"""Opacity of the filled uncertainty band behind a line (a CI or +-sem)."""

DEPTH_AXIS_TITLE = "relative depth (layer / (L − 1))"
"""The x axis of per-layer tables: layer ``i`` of ``L`` at ``i / (L - 1)``."""

LENS_DEPTH_AXIS_TITLE = "relative depth (point / L)"
"""The x axis of logit-lens tables: point ``0`` is the embedding, point ``i + 1`` layer ``i``'s output."""


def model_colours(names: Iterable[object]) -> dict[str, str]:
    """A colour for each distinct name, in order of first appearance (the palette repeats).

    Example:
        >>> model_colours(["gemma-3-270m", "smollm2-135m", "gemma-3-270m"])
        {'gemma-3-270m': '#636EFA', 'smollm2-135m': '#EF553B'}
    """
    distinct = list(dict.fromkeys(str(name) for name in names))
    return {name: PALETTE[index % len(PALETTE)] for index, name in enumerate(distinct)}


def by_model(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The rows of each model, in order of first appearance, named by the ``model`` column.

    A table without a ``model`` column is one unnamed model: ``[("", table)]``.

    Example:
        >>> table = pd.DataFrame({"model": ["b", "a", "b"], "kl": [1.0, 2.0, 3.0]})
        >>> [(name, rows.kl.tolist()) for name, rows in by_model(table)]
        [('b', [1.0, 3.0]), ('a', [2.0])]
        >>> [name for name, _ in by_model(table.drop(columns="model"))]
        ['']
    """
    if "model" not in table.columns:
        return [("", table)]
    return [(str(name), rows) for name, rows in table.groupby("model", sort=False)]


def combine_tables(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One table with a ``model`` column from per-model tables (for overlays).

    Example:
        >>> combine_tables({"a": pd.DataFrame({"kl": [1.0]}), "b": pd.DataFrame({"kl": [2.0]})}).model.tolist()
        ['a', 'b']
    """
    return pd.concat([table.assign(model=name) for name, table in tables.items()], ignore_index=True)


def add_band(
    figure: go.Figure,
    x: Sequence[float] | pd.Series,
    low: Sequence[float] | pd.Series,
    high: Sequence[float] | pd.Series,
    colour: str,
    *,
    legendgroup: str | None = None,
    row: int | None = None,
    col: int | None = None,
) -> None:
    """Shade the area between ``low`` and ``high`` along ``x`` (an uncertainty band, no legend entry).

    Draw it before its line so the line sits on top. ``legendgroup`` ties it to the line,
    so hiding the line in the legend hides its band; ``row``/``col`` place it in a subplot.

    Example:
        >>> figure = go.Figure()
        >>> add_band(figure, [0.0, 1.0], [1.0, 2.0], [3.0, 4.0], "#636EFA")
        >>> figure.data[0].x, figure.data[0].y
        ((0.0, 1.0, 1.0, 0.0), (3.0, 4.0, 2.0, 1.0))
    """
    x, low, high = list(x), list(low), list(high)
    figure.add_trace(
        go.Scatter(
            x=[*x, *x[::-1]],
            y=[*high, *low[::-1]],
            fill="toself",
            fillcolor=colour,
            opacity=BAND_OPACITY,
            line={"width": 0},
            hoverinfo="skip",
            showlegend=False,
            legendgroup=legendgroup,
        ),
        row=row,
        col=col,
    )
