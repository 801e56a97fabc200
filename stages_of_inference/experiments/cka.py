"""Linear CKA between the representations of every pair of layers (paper section 7).

Table ``cka`` (long form: ``layer_a``, ``layer_b``, ``cka``), summary ``cka.json``,
figure ``cka.html`` (the heatmap). Minibatch CKA with the unbiased HSIC; one minibatch
per batch of windows, BOS excluded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from jaxtyping import Int
from torch import Tensor

from stages_of_inference.analyses.cka import cka_hook_names, cka_matrix
from stages_of_inference.experiments.config import ExperimentConfig, option
from stages_of_inference.experiments.protocol import Experiment, Results
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.plots.cka import plot_cka

NAME = "cka"
DEFAULT_HOOK = "resid_post"


@dataclass
class CKAConfig(ExperimentConfig):
    """The experiment settings plus the hook compared across layers."""

    hook: str = option(DEFAULT_HOOK, "resid_post, resid_pre, resid_mid, attn_out, mlp_out, or a template with {layer}")


def long_form(matrix: pd.DataFrame) -> pd.DataFrame:
    """The square matrix as rows ``layer_a``, ``layer_b``, ``cka``.

    Example:
        >>> long_form(pd.DataFrame([[1.0, 0.5], [0.5, 1.0]])).cka.tolist()
        [1.0, 0.5, 0.5, 1.0]
    """
    stacked = matrix.rename_axis(index="layer_a", columns="layer_b").stack()
    return stacked.rename("cka").reset_index()


def compute(model: LoadedModel, tokens: Int[Tensor, "batch pos"], config: CKAConfig) -> Results:
    """Compute the layer x layer CKA matrix at ``config.hook``."""
    matrix = cka_matrix(model, tokens, hook=config.hook, batch_size=config.batch_size)
    values = matrix.to_numpy()
    off_diagonal = values[~np.eye(len(values), dtype=bool)]
    summary = {
        "model": config.model,
        "hook": config.hook,
        "estimator": "minibatch linear CKA, unbiased HSIC (Song et al. 2012; Nguyen et al. 2021)",
        "n_windows": int(tokens.shape[0]),
        "tokens_per_minibatch": int(min(config.batch_size, tokens.shape[0]) * (tokens.shape[1] - 1)),
        "adjacent_mean": float(np.mean(np.diag(values, k=1))) if len(values) > 1 else None,
        "off_diagonal_min": float(off_diagonal.min()) if off_diagonal.size else None,
    }
    return Results(
        tables={NAME: long_form(matrix)},
        summary=summary,
        figures={NAME: plot_cka(matrix, title=f"{config.model}: linear CKA between layers ({config.hook})")},
    )


EXPERIMENT = Experiment(
    NAME,
    __doc__.splitlines()[0],
    CKAConfig,
    compute,
    activations=lambda model, config: cka_hook_names(model, config.hook),
)
