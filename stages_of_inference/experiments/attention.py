"""Mean attention to the previous k tokens, per layer and per head (paper section 4).

Tables ``attention`` (one row per layer: mean over heads, mean and sem over windows)
and ``attention_heads`` (one row per layer and head); summary ``attention.json``;
figure ``attention.html`` (with its error band).
"""

from __future__ import annotations

from dataclasses import dataclass

from jaxtyping import Int
from torch import Tensor

from stages_of_inference.analyses.attention import DEFAULT_K, pattern_hook_names, previous_token_attention
from stages_of_inference.experiments.config import ExperimentConfig, option
from stages_of_inference.experiments.protocol import Experiment, Results
from stages_of_inference.layers import n_layers_of
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.plots.attention import plot_previous_token_attention

NAME = "attention"


@dataclass
class AttentionConfig(ExperimentConfig):
    """The experiment settings plus how many previous tokens count."""

    k: int = option(DEFAULT_K, "previous tokens attended to (sub-diagonals -1..-k)")


def compute(model: LoadedModel, tokens: Int[Tensor, "batch pos"], config: AttentionConfig) -> Results:
    """Measure attention to the previous ``config.k`` tokens, per layer and per head."""
    table = previous_token_attention(model, tokens, k=config.k, batch_size=config.batch_size)
    heads = previous_token_attention(model, tokens, k=config.k, batch_size=config.batch_size, by="head")
    peak = table.loc[table["mean"].idxmax()]
    summary = {
        "model": config.model,
        "k": config.k,
        "n_documents": int(table.n_documents.iloc[0]),
        "peak_layer": int(peak.layer),
        "peak_relative_depth": float(peak.relative_depth),
        "peak_mean": float(peak["mean"]),
    }
    return Results(
        tables={NAME: table, f"{NAME}_heads": heads},
        summary=summary,
        figures={NAME: plot_previous_token_attention(table.assign(model=config.model), k=config.k)},
    )


EXPERIMENT = Experiment(
    NAME,
    __doc__.splitlines()[0],
    AttentionConfig,
    compute,
    activations=lambda model, config: pattern_hook_names(n_layers_of(model)),
)
