"""Figure of prediction and suppression neuron counts across depth."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from stages_of_inference.plots.style import DEPTH_AXIS_TITLE, by_model, model_colours

KIND_DASHES = {"prediction": "solid", "suppression": "dash"}
"""The line style of each neuron kind (the colour is the model's)."""


def plot_neuron_counts(counts: pd.DataFrame) -> go.Figure:
    """Prediction and suppression neuron counts against relative depth, one line each.

    Models are overlaid (one pair of lines per model) when ``counts`` has a ``model`` column.

    Example:
        >>> import pandas as pd
        >>> counts = pd.DataFrame({"layer": [0, 1], "relative_depth": [0.0, 1.0],
        ...                        "prediction": [0, 5], "suppression": [1, 9]})
        >>> [trace.name for trace in plot_neuron_counts(counts).data]
        ['prediction', 'suppression']
    """
    figure = go.Figure()
    models = by_model(counts)
    colours = model_colours(name for name, _ in models)
    for name, rows in models:
        ordered = rows.sort_values("relative_depth")
        for kind, dash in KIND_DASHES.items():
            figure.add_trace(
                go.Scatter(
                    x=ordered["relative_depth"],
                    y=ordered[kind],
                    mode="lines+markers",
                    name=f"{name} {kind}" if name else kind,
                    line={"dash": dash, "color": colours[name]},
                )
            )
    figure.update_layout(
        title="Prediction and suppression neurons across depth",
        xaxis_title=DEPTH_AXIS_TITLE,
        yaxis_title="neurons",
    )
    return figure
