"""``python -m experiments.prune``: the pruning planner (:mod:`stages_of_inference.experiments.prune`) alone."""

import sys
from collections.abc import Sequence

from stages_of_inference.experiments import runner
from stages_of_inference.experiments.prune import EXPERIMENT


def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiment on one model; ``--help`` lists its flags."""
    return runner.main(EXPERIMENT, argv, prog="python -m experiments.prune")


if __name__ == "__main__":
    sys.exit(main())
