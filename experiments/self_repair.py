"""``python -m experiments.self_repair``: the self_repair experiment (:mod:`stages_of_inference.experiments.self_repair`) alone."""

import sys
from collections.abc import Sequence

from stages_of_inference.experiments import runner
from stages_of_inference.experiments.self_repair import EXPERIMENT


def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiment on one model; ``--help`` lists its flags."""
    return runner.main(EXPERIMENT, argv, prog="python -m experiments.self_repair")


if __name__ == "__main__":
    sys.exit(main())
