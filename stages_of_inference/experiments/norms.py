"""Mean L2 norms of each block's attention output, MLP output and residual stream (paper section 7).

Table ``norms`` (one row per layer), summary ``norms.json``, figure ``norms.html`` (log y axis).
"""

from __future__ import annotations

from jaxtyping import Int
from torch import Tensor

from stages_of_inference.analyses.norms import COMPONENTS, component_hook_names, component_norms
from stages_of_inference.experiments.config import ExperimentConfig
from stages_of_inference.experiments.protocol import Experiment, Results
from stages_of_inference.layers import n_layers_of
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.plots.norms import plot_component_norms

NAME = "norms"


def compute(model: LoadedModel, tokens: Int[Tensor, "batch pos"], config: ExperimentConfig) -> Results:
    """Measure the component norms of every block."""
    table = component_norms(model, tokens, batch_size=config.batch_size)
    summary = {
        "model": config.model,
        "n_tokens": int(table.n_tokens.iloc[0]),
        **{
            column: {
                "first": float(table[column].iloc[0]),
                "last": float(table[column].iloc[-1]),
                "max": float(table[column].max()),
            }
            for column in COMPONENTS
        },
    }
    return Results(
        tables={NAME: table}, summary=summary, figures={NAME: plot_component_norms(table.assign(model=config.model))}
    )


EXPERIMENT = Experiment(
    NAME,
    __doc__.splitlines()[0],
    ExperimentConfig,
    compute,
    activations=lambda model, config: list(component_hook_names(n_layers_of(model)).values()),
)
