"""``python -m experiments.commit_depth``: the commit_depth experiment (:mod:`stages_of_inference.experiments.commit_depth`) alone."""

import sys
from collections.abc import Sequence

from stages_of_inference.experiments import runner
from stages_of_inference.experiments.commit_depth import EXPERIMENT


def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiment on one model; ``--help`` lists its flags."""
    return runner.main(EXPERIMENT, argv, prog="python -m experiments.commit_depth")


if __name__ == "__main__":
    sys.exit(main())
