"""The ``stages-of-inference`` command: list models, run the reproduction, rebuild the report.

Subcommands:

* ``models``: what can be loaded here without a network (embedded models and the
  local Hugging Face cache), as a table of name, status and how to get it;
* ``run``: the full reproduction (:mod:`stages_of_inference.experiments.reproduce`):
  the run settings, ``--models``, ``--experiments`` and every experiment's own
  options (``--k``, ``--prompt``, ``--hook``, ...), generated from its config;
* ``report``: rebuild the HTML report from an existing results folder;
* ``prune``: the pruning planner (:mod:`stages_of_inference.experiments.prune`) on one
  model, then its export into ``OUT/<model>/``: the pruned Hugging Face folder
  ``pruned_model/``, ``mergekit.yaml`` and ``plan.json`` (docs/pruning.md).

Expected failures (bad flags, unloadable models, unusable corpora, unwritable
folders) print one line starting with ``error:`` and exit with code 2; an
interruption (Ctrl-C) exits with code 130 and says how to resume.

Example:
    stages-of-inference models
    stages-of-inference run --models smollm2-135m --tokens 4096 --k 3 --out results/
    stages-of-inference report --results results/
    stages-of-inference prune --model smollm2-135m --layers 4 --tokens 2048 --out pruned/
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from stages_of_inference.experiments import prune, reproduce
from stages_of_inference.experiments.command import (
    EXIT_INTERRUPTED,
    OneLineParser,
    parse_config,
    run_main,
)
from stages_of_inference.experiments.config import output_folder
from stages_of_inference.experiments.runner import run_experiments
from stages_of_inference.models import available_models
from stages_of_inference.pruning.export import HF_FOLDER, MERGEKIT_FILE, PLAN_FILE, export_plan
from stages_of_inference.report import build_report

PROG = "stages-of-inference"

__all__ = ["EXIT_INTERRUPTED", "PROG", "build_parser", "main"]

_SUBCOMMANDS = {
    "models": "list the models that can be loaded here without a network",
    "run": "run the full reproduction (`run --help` lists the run settings and every experiment's options)",
    "report": "rebuild the report from existing results",
    "prune": "plan which layers to delete on one model and export the pruned model (`prune --help` lists the flags)",
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser (``run`` parses its own flags, generated from its config)."""
    parser = OneLineParser(
        prog=PROG,
        description=__doc__.splitlines()[0],
        epilog="Run `%(prog)s <command> --help` for a command's flags.",
    )
    commands = parser.add_subparsers(dest="command", metavar="<command>", parser_class=OneLineParser)
    commands.required = True
    models = commands.add_parser(
        "models", help=_SUBCOMMANDS["models"], description=_SUBCOMMANDS["models"].capitalize() + "."
    )
    models.add_argument("--names-only", action="store_true", help="print only the names, one a line")
    commands.add_parser("run", help=_SUBCOMMANDS["run"], add_help=False)
    commands.add_parser("prune", help=_SUBCOMMANDS["prune"], add_help=False)
    report = commands.add_parser(
        "report", help=_SUBCOMMANDS["report"], description=_SUBCOMMANDS["report"].capitalize() + "."
    )
    report.add_argument("--results", type=Path, default=Path("results"), help="folder of model result folders")
    report.add_argument("--out", type=Path, default=None, help="report file (default RESULTS/report.html)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "run":
        return reproduce.main(args[1:], prog=f"{PROG} run")
    if args and args[0] == "prune":
        return run_main(
            lambda: prune_and_export(parse_config(prune.PruneConfig, args[1:], _PRUNE_HELP, prog=f"{PROG} prune"))
        )
    return run_main(lambda: _dispatch(build_parser().parse_args(args)))


_PRUNE_HELP = (
    "Plan which layers to delete (every budget 1..LAYERS), compare with Block Influence and angular distance "
    "on held-out windows, and export the largest budget's pruned model, mergekit.yaml and plan.json into OUT/<model>/."
)


def prune_and_export(config: prune.PruneConfig) -> Path:
    """Run the prune experiment on ``config.model`` (resuming a finished run), then export its plan; the folder."""
    run_experiments([prune.EXPERIMENT], config)
    folder = output_folder(config)
    export_plan(prune.read_plan(folder), folder)
    print(f"prune: pruned model in {folder / HF_FOLDER}, {MERGEKIT_FILE} and {PLAN_FILE} beside it")
    return folder


def _dispatch(namespace: argparse.Namespace) -> None:
    if namespace.command == "models":
        _models(names_only=namespace.names_only)
    elif namespace.command == "report":
        print(f"report: {build_report(namespace.results, namespace.out)}")


def _models(*, names_only: bool) -> None:
    rows = available_models()
    if names_only:
        for row in rows:
            print(row["name"])
        return
    columns = ("name", "status", "how")
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(row[c].ljust(widths[c]) for c in columns).rstrip())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
