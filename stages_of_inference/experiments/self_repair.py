"""Self-repair: how later layers undo the damage of deleting one layer, read through the logit lens (issue 19.5).

Tables ``self_repair`` (one row per deleted layer and lens point: both models' lens
metrics and norms, the excess KL, the damage and each later layer's repair) and
``self_repair_by_layer`` (each layer's mean repair over the deletions before it);
summary ``self_repair.json`` (the layers that repair most); figures
``self_repair_curve`` (the deletion of the middle layer beside the original),
``self_repair_heatmap`` (deleted layer x later layer, excess KL) and
``self_repair_by_layer``. Every single deletion costs about ``L / 2`` logit-lens
passes, so it runs on the first ``--repair-tokens`` of the corpus (``docs/settling.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

from jaxtyping import Int
from torch import Tensor

from stages_of_inference.analyses.self_repair import repair_by_layer, self_repair
from stages_of_inference.errors import ConfigError
from stages_of_inference.experiments.config import ExperimentConfig, option
from stages_of_inference.experiments.protocol import Experiment, Results
from stages_of_inference.interventions.spec import Intervention
from stages_of_inference.layers import n_layers_of
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.plots.self_repair import plot_repair_by_layer, plot_repair_curve, plot_repair_heatmap

NAME = "self_repair"
DEFAULT_REPAIR_TOKENS = 256
TOP_LAYERS = 3


@dataclass
class SelfRepairConfig(ExperimentConfig):
    """The experiment settings plus the self-repair budget and the layers deleted."""

    repair_tokens: int = option(
        DEFAULT_REPAIR_TOKENS, "tokens of the corpus used by self_repair (its first windows; 0: all of --tokens)"
    )
    repair_layers: list[int] = option([], "layers whose deletion self_repair measures (default: every layer)")


def repair_windows(tokens: Int[Tensor, "batch pos"], repair_tokens: int) -> Int[Tensor, "sub_batch pos"]:
    """The first ``repair_tokens // seq_len`` windows (at least one), or all of them for 0.

    Raises:
        ConfigError: ``repair_tokens`` is negative.

    Example:
        >>> import torch
        >>> repair_windows(torch.zeros(8, 256, dtype=torch.long), 600).shape
        torch.Size([2, 256])
    """
    if repair_tokens < 0:
        raise ConfigError(f"repair_tokens={repair_tokens} (--repair-tokens) must be 0 (all) or positive")
    if repair_tokens == 0:
        return tokens
    return tokens[: max(1, repair_tokens // tokens.shape[1])]


def compute(model: LoadedModel, tokens: Int[Tensor, "batch pos"], config: SelfRepairConfig) -> Results:
    """Delete each chosen layer in turn and compare the lens curves with the original's."""
    n_layers = n_layers_of(model)
    layers = config.repair_layers or list(range(n_layers))
    interventions = [Intervention("delete", layer) for layer in layers]
    table = self_repair(
        model, repair_windows(tokens, config.repair_tokens), interventions, batch_size=config.batch_size
    )
    by_layer = repair_by_layer(table)
    top = by_layer.sort_values("mean_repair", ascending=False).head(TOP_LAYERS)
    outputs = table[table.point == n_layers].set_index("intervened_layer")
    summary = {
        "model": config.model,
        "n_tokens": int(table.n_tokens.iloc[0]),
        "deleted_layers": layers,
        "damage": {int(layer): float(value) for layer, value in outputs.damage.items()},
        "excess_kl_at_output": {int(layer): float(value) for layer, value in outputs.excess_kl.items()},
        "top_repair_layers": [int(layer) for layer in top.layer],
        "top_repair_nats": [float(value) for value in top.mean_repair],
    }
    example = interventions[len(interventions) // 2].label
    return Results(
        tables={NAME: table, f"{NAME}_by_layer": by_layer},
        summary=summary,
        figures={
            f"{NAME}_curve": plot_repair_curve(table.assign(model=config.model), example),
            f"{NAME}_heatmap": plot_repair_heatmap(table, title=f"Excess KL after deleting one layer: {config.model}"),
            f"{NAME}_by_layer": plot_repair_by_layer(by_layer.assign(model=config.model)),
        },
    )


EXPERIMENT = Experiment(NAME, __doc__.splitlines()[0], SelfRepairConfig, compute)
