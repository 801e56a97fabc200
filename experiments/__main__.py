"""``python -m experiments``: list the experiments of the registry."""

import sys

from stages_of_inference.experiments.registry import EXPERIMENTS, EXTRA_EXPERIMENTS


def main() -> int:
    """Print each experiment with its one-line description."""
    print("usage: python -m experiments.<name> [--help]\n\nexperiments (in reproduction order):")
    for experiment in EXPERIMENTS:
        print(f"  {experiment.name:<14} {experiment.description}")
    print("  reproduce      all of them on several models, then the report")
    print("  report         rebuild the report from a results folder")
    print("\nbeyond the paper (run when named):")
    for experiment in EXTRA_EXPERIMENTS:
        print(f"  {experiment.name:<14} {experiment.description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
