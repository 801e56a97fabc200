"""Figure of layer-to-layer CKA: a layer x layer heatmap."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go


def plot_cka(matrix: pd.DataFrame, *, title: str = "Linear CKA between layers") -> go.Figure:
    """Heatmap of a layer x layer CKA matrix (layer 0 at the top left).

    Example:
        >>> import pandas as pd
        >>> figure = plot_cka(pd.DataFrame([[1.0, 0.5], [0.5, 1.0]], index=[0, 1], columns=[0, 1]))
        >>> figure.data[0].type
        'heatmap'
    """
    figure = go.Figure(
        go.Heatmap(
            z=matrix.to_numpy(),
            x=list(matrix.columns),
            y=list(matrix.index),
            colorscale="Viridis",
            zmin=0.0,
            zmax=1.0,
            colorbar={"title": "CKA"},
        )
    )
    figure.update_layout(title=title, xaxis_title="layer", yaxis_title="layer")
    figure.update_yaxes(autorange="reversed")
    return figure
