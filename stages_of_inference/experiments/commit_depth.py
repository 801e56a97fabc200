"""Where the prediction settles: the logit-lens point at which each token's prediction commits (issue 19.4).

Tables ``commit_depth_tokens`` (one row per scored token: its commit point and the
class of its predicted token), ``commit_depth_exit`` (exiting at each point: accuracy,
agreement and KL with bootstrap intervals over windows), ``commit_depth_distribution``
and ``commit_depth_by_class``; summary ``commit_depth.json``; figures of the three
summaries. About the cost of one logit-lens pass (``docs/settling.md``).
"""

from __future__ import annotations

from jaxtyping import Int
from torch import Tensor

from stages_of_inference.analyses.commit_depth import commit_depth
from stages_of_inference.experiments.config import ExperimentConfig
from stages_of_inference.experiments.protocol import Experiment, Results
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.plots.commit_depth import (
    plot_commit_by_class,
    plot_commit_distribution,
    plot_exit_curves,
)

NAME = "commit_depth"


def compute(model: LoadedModel, tokens: Int[Tensor, "batch pos"], config: ExperimentConfig) -> Results:
    """Find every token's commit point, then the exit curve, the distribution and the classes."""
    result = commit_depth(model, tokens, batch_size=config.batch_size)
    per_token, exit_curve = result.per_token, result.exit_curve(seed=config.seed)
    distribution, by_class = result.distribution(), result.by_class()
    depth = per_token.relative_commit_depth
    summary = {
        "model": config.model,
        "n_tokens": len(per_token),
        "n_layers": result.n_layers,
        "median_relative_commit_depth": float(depth.median()),
        "mean_relative_commit_depth": float(depth.mean()),
        "share_committed_at_embedding": float((per_token.commit_point == 0).mean()),
        "share_committed_only_at_output": float((per_token.commit_point == result.n_layers).mean()),
        "median_relative_commit_depth_by_class": dict(
            zip(by_class.token_class, by_class.median_depth.astype(float), strict=True)
        ),
    }
    return Results(
        tables={
            f"{NAME}_tokens": per_token,
            f"{NAME}_exit": exit_curve,
            f"{NAME}_distribution": distribution,
            f"{NAME}_by_class": by_class,
        },
        summary=summary,
        figures={
            f"{NAME}_distribution": plot_commit_distribution(distribution.assign(model=config.model)),
            f"{NAME}_exit": plot_exit_curves(exit_curve.assign(model=config.model)),
            f"{NAME}_by_class": plot_commit_by_class(per_token.assign(model=config.model)),
        },
    )


EXPERIMENT = Experiment(NAME, __doc__.splitlines()[0], ExperimentConfig, compute)
