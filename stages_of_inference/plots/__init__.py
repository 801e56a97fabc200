"""Figures: plotly figures of every result table, to show, compose or export.

``style`` holds what all figures share (one colour per model, grouping a table by
model, uncertainty bands, the depth axis titles) and ``stages`` shades estimated
stages behind a figure; each other module draws one family of figures from the tables
of :mod:`stages_of_inference.analyses`, the sweep (``robustness``; ``families`` for the
intervention families beyond the paper), the stage estimate and the pruning planner.

Example:
    >>> import stages_of_inference as soi
    >>> figure = soi.plots.plot_robustness(table)  # doctest: +SKIP
"""

from stages_of_inference.plots.attention import plot_previous_token_attention
from stages_of_inference.plots.cka import plot_cka
from stages_of_inference.plots.commit_depth import plot_commit_by_class, plot_commit_distribution, plot_exit_curves
from stages_of_inference.plots.families import (
    plot_all_swaps,
    plot_block_deletions,
    plot_component_deletions,
)
from stages_of_inference.plots.logit_lens import (
    plot_logit_lens,
    plot_top_tokens_heatmap,
)
from stages_of_inference.plots.neurons import plot_neuron_counts
from stages_of_inference.plots.norms import plot_component_norms
from stages_of_inference.plots.pruning import plot_pruning
from stages_of_inference.plots.robustness import plot_robustness
from stages_of_inference.plots.self_repair import plot_repair_by_layer, plot_repair_curve, plot_repair_heatmap
from stages_of_inference.plots.stages import add_stage_bands
from stages_of_inference.plots.style import combine_tables, model_colours
from stages_of_inference.plots.subjoiner import plot_head_scores, plot_subjoiner_pattern

__all__ = [
    "add_stage_bands",
    "combine_tables",
    "model_colours",
    "plot_all_swaps",
    "plot_block_deletions",
    "plot_cka",
    "plot_commit_by_class",
    "plot_commit_distribution",
    "plot_component_deletions",
    "plot_component_norms",
    "plot_exit_curves",
    "plot_head_scores",
    "plot_logit_lens",
    "plot_neuron_counts",
    "plot_previous_token_attention",
    "plot_pruning",
    "plot_repair_by_layer",
    "plot_repair_curve",
    "plot_repair_heatmap",
    "plot_robustness",
    "plot_subjoiner_pattern",
    "plot_top_tokens_heatmap",
]
