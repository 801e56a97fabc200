"""One colour per model, shared by every figure, so a model looks the same across a report.

Plotly's default colourway hands out colours per trace, so a figure that draws a band
before each line, or two lines per model, gives the same model different colours in
different figures. Figures that overlay models take their colours from here instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from plotly.colors import qualitative

PALETTE = qualitative.Plotly
"""Colours in the order models first appear."""


def model_colours(names: Iterable[object]) -> dict[str, str]:
    """A colour for each distinct name, in order of first appearance (the palette repeats).

    Example:
        >>> model_colours(["gemma-3-270m", "smollm2-135m", "gemma-3-270m"])
        {'gemma-3-270m': '#636EFA', 'smollm2-135m': '#EF553B'}
    """
    distinct = list(dict.fromkeys(str(name) for name in names))
    return {name: PALETTE[index % len(PALETTE)] for index, name in enumerate(distinct)}
