"""Which figures the report shows: the paper's overlaid across models with the estimated stages shaded, then the
intervention families beyond the paper, one figure per model and family."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from stages_of_inference.errors import StagesError
from stages_of_inference.plots.attention import plot_previous_token_attention
from stages_of_inference.plots.cka import plot_cka
from stages_of_inference.plots.commit_depth import plot_commit_by_class, plot_commit_distribution, plot_exit_curves
from stages_of_inference.plots.families import plot_all_swaps, plot_block_deletions, plot_component_deletions
from stages_of_inference.plots.logit_lens import plot_logit_lens
from stages_of_inference.plots.neurons import plot_neuron_counts
from stages_of_inference.plots.norms import plot_component_norms
from stages_of_inference.plots.pruning import plot_pruning
from stages_of_inference.plots.robustness import plot_robustness
from stages_of_inference.plots.self_repair import plot_repair_by_layer, plot_repair_heatmap
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
    stage_bands: bool = True
    """Shade the estimated stages (False for an x axis that is not depth)."""

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

SETTLING_FIGURES = (
    FigureSpec(
        "Where the prediction settles: tokens committing at each point",
        "commit_depth_distribution",
        plot_commit_distribution,
        lens_points=True,
    ),
    FigureSpec("Exit at point ℓ", "commit_depth_exit", plot_exit_curves, lens_points=True),
    FigureSpec(
        "Commit depth by token class",
        "commit_depth_by_class",
        plot_commit_by_class,
        prepare=lambda model: model.get("commit_depth_tokens"),
        stage_bands=False,
    ),
    FigureSpec("Which layers repair a deletion", "self_repair_by_layer", plot_repair_by_layer, lens_points=True),
)
"""Where predictions settle and how layers repair (``docs/settling.md``), after the depth figures."""


def figure_anchor(table: str) -> str:
    """The HTML id of the report figure drawn from ``table`` (the verdict table links to it).

    Example:
        >>> figure_anchor("logit_lens")
        'figure-logit_lens'
    """
    return f"figure-{table}"


ANCHORS = {spec.title: figure_anchor(spec.table) for spec in (ROBUSTNESS, *DEPTH_FIGURES)}
"""Each overlaid figure's title -> its anchor."""


def depth_figures(models: list[ModelResults], stages: list[pd.DataFrame]) -> list[Figure]:
    """The robustness figure, the depth figures and each model's CKA heatmap, in report order.

    A figure whose table no model folder holds, or whose table the toolkit rejects (a
    :class:`StagesError`), is a note instead; any other exception propagates.
    """
    figures = [_overlaid(spec, models, stages) for spec in (ROBUSTNESS, *DEPTH_FIGURES)]
    settling = [_overlaid(spec, models, stages) for spec in SETTLING_FIGURES if _any_table(spec, models)]
    return figures + cka_figures(models) + settling + self_repair_figures(models)


def _any_table(spec: FigureSpec, models: list[ModelResults]) -> bool:
    """Whether some model folder holds the figure's table (these figures are optional: no note without one)."""
    return any(model.get(spec.table) is not None for model in models)


def _overlaid(spec: FigureSpec, models: list[ModelResults], stages: list[pd.DataFrame]) -> Figure:
    try:
        tables = {model.name: spec.table_of(model) for model in models}
    except StagesError as error:
        return spec.title, f"skipped: {error}"
    present = {name: table for name, table in tables.items() if table is not None}
    if not present:
        return spec.title, f"no {spec.table} table"
    figure = spec.plot(combine_tables(present))
    for table in stages if spec.stage_bands else []:
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


FAMILY_FIGURES: tuple[tuple[str, str, Callable[[pd.DataFrame, pd.DataFrame | None], go.Figure]], ...] = (
    ("Deleting a block of layers", "robustness_blocks", lambda table, _: plot_block_deletions(table)),
    (
        "Deleting a layer's attention, its MLP, or the whole layer",
        "robustness_components",
        lambda table, stages: plot_component_deletions(table, stages),
    ),
    ("Swapping any two layers", "robustness_swaps-all", lambda table, _: plot_all_swaps(table)),
)
"""Each family figure: its title, the table it draws (``--interventions`` family results) and how
(the plot gets the model's table and its stage table, or None)."""


def family_figures(models: list[ModelResults], stages: dict[str, pd.DataFrame]) -> list[Figure]:
    """For each model, a figure of each intervention family its folder holds; none when it holds none.

    Args:
        models: The model folders.
        stages: Each model's stage table by model name (models without one left out).

    A table the toolkit rejects (a :class:`StagesError`) is a note instead; any other
    exception propagates.
    """
    figures: list[Figure] = []
    for model in models:
        for title, stem, plot in FAMILY_FIGURES:
            table = model.get(stem)
            if table is None:
                continue
            try:
                figure: go.Figure | str = plot(table, stages.get(model.name))
            except StagesError as error:
                figure = f"skipped: {error}"
            figures.append((f"{title}: {model.name}", figure))
    return figures


def self_repair_figures(models: list[ModelResults]) -> list[Figure]:
    """A deleted layer x later layer heatmap of the excess KL for each model with a ``self_repair`` table."""
    figures: list[Figure] = []
    for model in models:
        table = model.get("self_repair")
        if table is not None:
            title = f"Excess KL after deleting one layer: {model.name}"
            figures.append((f"Self-repair: {model.name}", plot_repair_heatmap(table, title=title)))
    return figures
