"""``python -m experiments.cka``: the cka experiment (:mod:`stages_of_inference.experiments.cka`) alone."""

import sys
from collections.abc import Sequence

from stages_of_inference.experiments import runner
from stages_of_inference.experiments.cka import EXPERIMENT


def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiment on one model; ``--help`` lists its flags."""
    return runner.main(EXPERIMENT, argv, prog="python -m experiments.cka")


if __name__ == "__main__":
    sys.exit(main())
