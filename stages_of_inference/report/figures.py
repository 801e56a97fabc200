"""Which figures the report shows, each overlaid across models with the estimated stages shaded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from stages_of_inference.errors import StagesError
from stages_of_inference.plots.attention import plot_previous_token_attention
from stages_of_inference.plots.cka import plot_cka
from stages_of_inference.plots.logit_lens import plot_logit_lens
from stages_of_inference.plots.neurons import plot_neuron_counts
from stages_of_inference.plots.norms import plot_component_norms
from stages_of_inference.plots.pruning import plot_pruning
from stages_of_inference.plots.robustness import plot_robustness
from stages_of_inference.plots.stages import add_stage_bands
from stages_of_inference.plots.style import combine_tables
from stages_of_inference.report.results import ModelResults, neuron_counts_of

Figure = tuple[str, go.Figure | str]
"""A figure's title and the figure, or a note saying why it is not shown."""


@dataclass(frozen=True)
class FigureSpec:
    """How to draw one analysis across models: its table, its plot function, its x axis."""

    title: str
    table: str
    """The file stem of the table in each model folder."""
    plot: Callable[[pd.DataFrame], go.Figure]
    """Draws the models' tables concatenated with a ``model`` column."""
    lens_points: bool = False
    """The x axis is the logit lens's ``point / L`` (stage bands are placed accordingly)."""
    prepare: Callable[[ModelResults], pd.DataFrame | None] | None = None
    """Derives the plotted table from a model's folder (default: the table itself)."""

    def table_of(self, model: ModelResults) -> pd.DataFrame | None:
        """The table this figure plots for ``model``, or None when its folder lacks it."""
        return self.prepare(model) if self.prepare else model.get(self.table)


ROBUSTNESS = FigureSpec("What survives deleting or swapping one layer", "robustness", plot_robustness)
"""The paper's Figure 1, first in the report."""

DEPTH_FIGURES = (
    FigureSpec("Attention to the previous 5 tokens", "attention", plot_previous_token_attention),
    FigureSpec("Logit lens across depth", "logit_lens", plot_logit_lens, lens_points=True),
    FigureSpec("Prediction and suppression neurons", "neurons", plot_neuron_counts, prepare=neuron_counts_of),
    FigureSpec("Norms of each block's outputs", "norms", plot_component_norms),
)
"""The depth figures overlaid across models after the robustness figure."""


def depth_figures(models: list[ModelResults], stages: list[pd.DataFrame]) -> list[Figure]:
    """The robustness figure, the depth figures and each model's CKA heatmap, in report order.

    A figure whose table no model folder holds, or whose table the toolkit rejects (a
    :class:`StagesError`), is a note instead; any other exception propagates.
    """
    figures = [_overlaid(spec, models, stages) for spec in (ROBUSTNESS, *DEPTH_FIGURES)]
    return figures + cka_figures(models)


def _overlaid(spec: FigureSpec, models: list[ModelResults], stages: list[pd.DataFrame]) -> Figure:
    try:
        tables = {model.name: spec.table_of(model) for model in models}
    except StagesError as error:
        return spec.title, f"skipped: {error}"
    present = {name: table for name, table in tables.items() if table is not None}
    if not present:
        return spec.title, f"no {spec.table} table"
    figure = spec.plot(combine_tables(present))
    for table in stages:
        add_stage_bands(figure, table, opacity_scale=1 / len(stages), lens_points=spec.lens_points)
    return spec.title, figure


PRUNING = FigureSpec(
    "Layers deleted: planner vs Block Influence and angular distance", "prune_comparison", plot_pruning
)
"""The pruning planner's held-out comparison (when a model folder holds it; no stage bands: its x axis is a count)."""


def pruning_figures(models: list[ModelResults]) -> list[Figure]:
    """The pruning comparison overlaid across the models that ran the prune experiment; none if no model did."""
    tables = {model.name: table for model in models if (table := PRUNING.table_of(model)) is not None}
    return [(PRUNING.title, PRUNING.plot(combine_tables(tables)))] if tables else []


def cka_figures(models: list[ModelResults]) -> list[Figure]:
    """A layer x layer CKA heatmap for each model whose folder holds a ``cka`` table."""
    figures: list[Figure] = []
    for model in models:
        table = model.get("cka")  # long form (layer_a, layer_b, cka) or the matrix itself
        if table is None:
            continue
        matrix = table.pivot(index="layer_a", columns="layer_b", values="cka") if "cka" in table.columns else table
        figures.append(
            (f"Layer-to-layer CKA: {model.name}", plot_cka(matrix, title=f"Linear CKA between layers: {model.name}"))
        )
    return figures
