"""Figure of prediction and suppression neuron counts across depth."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from stages_of_inference.plots.style import model_colours


def plot_neuron_counts(counts: pd.DataFrame) -> go.Figure:
    """Prediction and suppression neuron counts against relative depth, one line each.

    Models are overlaid (one pair of lines per model) when ``counts`` has a ``model`` column.

    Example:
        >>> import pandas as pd
        >>> counts = pd.DataFrame({"layer": [0, 1], "relative_depth": [0.0, 1.0],
        ...                        "prediction": [0, 5], "suppression": [1, 9]})
        >>> len(plot_neuron_counts(counts).data)
        2
    """
    figure = go.Figure()
    groups = list(counts.groupby("model", sort=False)) if "model" in counts.columns else [(None, counts)]
    colours = model_colours(model_name for model_name, _ in groups)
    for model_name, group in groups:
        ordered = group.sort_values("relative_depth")
        for kind, dash in (("prediction", "solid"), ("suppression", "dash")):
            label = kind if model_name is None else f"{model_name} {kind}"
            figure.add_trace(
                go.Scatter(
                    x=ordered["relative_depth"], y=ordered[kind], mode="lines+markers",
                    name=label, line={"dash": dash, "color": colours[str(model_name)]},
                )
            )
    figure.update_layout(
        title="Prediction and suppression neurons across depth",
        xaxis_title="relative depth (layer / (L - 1))",
        yaxis_title="neurons",
    )
    return figure
