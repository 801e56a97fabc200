"""Figure of the norms each block writes to the residual stream, across depth."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from stages_of_inference.analyses.norms import COMPONENTS


def plot_component_norms(table: pd.DataFrame) -> go.Figure:
    """Each component's mean norm against relative depth, log y axis.

    One line per component, and per ``model`` if the table has that column.

    Example:
        >>> table = pd.DataFrame({"layer": [0, 1], "relative_depth": [0.0, 1.0],
        ...     "attn_out_norm": [1.0, 2.0], "mlp_out_norm": [1.0, 9.0],
        ...     "resid_post_norm": [3.0, 20.0]})
        >>> figure = plot_component_norms(table)
        >>> len(figure.data), figure.layout.yaxis.type
        (3, 'log')
    """
    groups = table.groupby("model", sort=False) if "model" in table.columns else [(None, table)]
    figure = go.Figure()
    for name, group in groups:
        for column in COMPONENTS:
            label = column.removesuffix("_norm") + ("" if name is None else f" ({name})")
            figure.add_trace(
                go.Scatter(x=group.relative_depth, y=group[column], mode="lines+markers", name=label)
            )
    figure.update_layout(
        title="Mean L2 norm of each block's outputs",
        xaxis_title="relative depth (layer / (L - 1))",
        yaxis_title="mean L2 norm (non-BOS tokens)",
        yaxis_type="log",
    )
    return figure
