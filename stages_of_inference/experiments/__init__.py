"""The experiments of the paper: one protocol, one registry, one runner.

Each experiment (:mod:`.robustness`, :mod:`.logit_lens`, :mod:`.attention`,
:mod:`.norms`, :mod:`.neurons`, :mod:`.cka`, :mod:`.subjoiner`, and beyond the paper
:mod:`.commit_depth`, :mod:`.self_repair` and :mod:`.prune`) declares only its config and
``compute(model, tokens, config) -> Results`` (:mod:`.protocol`); :mod:`.registry` lists
the paper's in reproduction order and the others as extras; :mod:`.runner` loads each model
once and does the timing, saving, resuming, manifests and printing for all of them;
:mod:`.reproduce` runs the whole registry and builds the report. :mod:`.config` is
the dataclass config that drives Python and the command line (:mod:`.command`).

Example:
    >>> from stages_of_inference.experiments import EXPERIMENTS
    >>> len(EXPERIMENTS)
    7
"""

from stages_of_inference.experiments.config import ExperimentConfig
from stages_of_inference.experiments.protocol import Experiment, Results
from stages_of_inference.experiments.registry import BY_NAME, EXPERIMENTS
from stages_of_inference.experiments.runner import run_experiments

__all__ = ["BY_NAME", "EXPERIMENTS", "Experiment", "ExperimentConfig", "Results", "run_experiments"]
