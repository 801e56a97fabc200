"""``python -m experiments.neurons``: the neurons experiment (:mod:`stages_of_inference.experiments.neurons`) alone."""

import sys
from collections.abc import Sequence

from stages_of_inference.experiments import runner
from stages_of_inference.experiments.neurons import EXPERIMENT


def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiment on one model; ``--help`` lists its flags."""
    return runner.main(EXPERIMENT, argv, prog="python -m experiments.neurons")


if __name__ == "__main__":
    sys.exit(main())
