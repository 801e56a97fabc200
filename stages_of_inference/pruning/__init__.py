"""Layer pruning: plan which layers to delete by measuring joint deletions, compare with published rankings, export.

* :mod:`~stages_of_inference.pruning.plan`: :func:`prune_plan` (greedy or beam search
  over sets of deleted layers, each set measured jointly) and its :class:`PrunePlan`;
* :mod:`~stages_of_inference.pruning.baselines`: ShortGPT's Block Influence and Gromov
  et al.'s angular distance, and the layers each would delete;
* :mod:`~stages_of_inference.pruning.export`: a pruned Hugging Face folder, a mergekit
  passthrough config and ``plan.json``.

Layers are 0-based in the original model's numbering throughout (docs/pruning.md).
"""

from stages_of_inference.pruning.baselines import (
    angular_distance_plan,
    block_influence_plan,
    residual_similarity,
)
from stages_of_inference.pruning.export import (
    export_hf,
    export_plan,
    mergekit_yaml,
    plan_record,
    pruned_hf_model,
)
from stages_of_inference.pruning.plan import PrunePlan, prune_plan, split_held_out

__all__ = [
    "PrunePlan",
    "angular_distance_plan",
    "block_influence_plan",
    "export_hf",
    "export_plan",
    "mergekit_yaml",
    "plan_record",
    "prune_plan",
    "pruned_hf_model",
    "residual_similarity",
    "split_held_out",
]
