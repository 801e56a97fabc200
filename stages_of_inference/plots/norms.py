"""Figure of the norms each block writes to the residual stream, across depth."""

from __future__ import annotations

from itertools import cycle

import pandas as pd
import plotly.graph_objects as go

from stages_of_inference.analyses.norms import COMPONENTS
from stages_of_inference.plots.style import DEPTH_AXIS_TITLE, by_model, model_colours

COMPONENT_DASHES = dict(zip(COMPONENTS, cycle(("solid", "dash", "dot", "dashdot"))))
"""The line style of each component (the colour is the model's)."""


def plot_component_norms(table: pd.DataFrame) -> go.Figure:
    """Each component's mean norm against relative depth, log y axis.

    One line per component (its own dash style), and per ``model`` (its own colour) if
    the table has that column.

    Example:
        >>> table = pd.DataFrame({"layer": [0, 1], "relative_depth": [0.0, 1.0],
        ...     "attn_out_norm": [1.0, 2.0], "mlp_out_norm": [1.0, 9.0],
        ...     "resid_post_norm": [3.0, 20.0]})
        >>> figure = plot_component_norms(table)
        >>> len(figure.data), figure.layout.yaxis.type
        (3, 'log')
        >>> [trace.line.dash for trace in figure.data]
        ['solid', 'dash', 'dot']
    """
    figure = go.Figure()
    models = by_model(table)
    colours = model_colours(name for name, _ in models)
    for name, rows in models:
        for column, dash in COMPONENT_DASHES.items():
            label = column.removesuffix("_norm") + (f" ({name})" if name else "")
            figure.add_trace(
                go.Scatter(
                    x=rows.relative_depth,
                    y=rows[column],
                    mode="lines+markers",
                    name=label,
                    line={"dash": dash, "color": colours[name]},
                )
            )
    figure.update_layout(
        title="Mean L2 norm of each block's outputs",
        xaxis_title=DEPTH_AXIS_TITLE,
        yaxis_title="mean L2 norm (non-BOS tokens)",
        yaxis_type="log",
    )
    return figure
