"""``python -m experiments.reproduce``: every experiment on every model (:mod:`stages_of_inference.experiments.reproduce`).

Example:
    python -m experiments.reproduce --models gemma-3-270m smollm2-135m --tokens 4096 --out results/
"""

import sys

from stages_of_inference.experiments import reproduce

if __name__ == "__main__":
    sys.exit(reproduce.main(prog="python -m experiments.reproduce"))
