"""Every experiment of the reproduction, in the order it runs them.

Example:
    >>> [experiment.name for experiment in EXPERIMENTS]
    ['robustness', 'logit_lens', 'attention', 'norms', 'neurons', 'cka', 'subjoiner']
    >>> [experiment.name for experiment in EXTRA_EXPERIMENTS]
    ['commit_depth', 'self_repair', 'prune']
    >>> BY_NAME["attention"].description
    'Mean attention to the previous k tokens, per layer and per head (paper section 4).'
"""

from __future__ import annotations

from typing import Any

from stages_of_inference.experiments import (
    attention,
    cka,
    commit_depth,
    logit_lens,
    neurons,
    norms,
    prune,
    robustness,
    self_repair,
    subjoiner,
)
from stages_of_inference.experiments.protocol import Experiment

EXPERIMENTS: tuple[Experiment[Any], ...] = (
    robustness.EXPERIMENT,
    logit_lens.EXPERIMENT,
    attention.EXPERIMENT,
    norms.EXPERIMENT,
    neurons.EXPERIMENT,
    cka.EXPERIMENT,
    subjoiner.EXPERIMENT,
)
"""The paper's experiments, run for every model by default, in this order (the cheap robustness tables first)."""

EXTRA_EXPERIMENTS: tuple[Experiment[Any], ...] = (commit_depth.EXPERIMENT, self_repair.EXPERIMENT, prune.EXPERIMENT)
"""Experiments beyond the paper's, run only when named (``--experiments commit_depth``, ``make beyond``,
``python -m experiments.prune``): they would more than double the reproduction's time (docs/design.md)."""

BY_NAME: dict[str, Experiment[Any]] = {experiment.name: experiment for experiment in (*EXPERIMENTS, *EXTRA_EXPERIMENTS)}
"""Each experiment by its name."""
