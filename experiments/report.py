"""Gather every model's results into one self-contained HTML report (``results/report.html``).

The report itself is :mod:`stages_of_inference.report`; this is its command line.

Example:
    python -m experiments.report --results results/
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from stages_of_inference.experiments.command import OneLineParser, run_main
from stages_of_inference.report import build_report


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""

    def body() -> None:
        parser = OneLineParser(prog="python -m experiments.report", description=__doc__.splitlines()[0])
        parser.add_argument("--results", type=Path, default=Path("results"), help="folder of model result folders")
        parser.add_argument("--out", type=Path, default=None, help="report file (default RESULTS/report.html)")
        namespace = parser.parse_args(argv)
        print(f"report: {build_report(namespace.results, namespace.out)}")

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
