"""Gather every model's results into one self-contained HTML report (``results/report.html``).

The report itself is :mod:`stages_of_inference.report`; this is its command line.

Example:
    python -m experiments.report --results results/
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from experiments.common import run_main
from stages_of_inference.report import build_report

__all__ = ["build_report", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""

    def body(args: Sequence[str] | None) -> None:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--results", type=Path, default=Path("results"), help="folder of model result folders")
        parser.add_argument("--out", type=Path, default=None, help="report file (default RESULTS/report.html)")
        namespace = parser.parse_args(args)
        print(f"report: {build_report(namespace.results, namespace.out)}")

    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
