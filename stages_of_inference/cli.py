"""The ``stages-of-inference`` command: list models, run the reproduction, rebuild the report.

Subcommands:

* ``models``: what can be loaded here without a network (embedded models and the
  local Hugging Face cache), as a table of name, status and how to get it;
* ``run``: the full reproduction; takes exactly the flags of
  ``python -m experiments.reproduce`` and hands them over unchanged;
* ``report``: rebuild the HTML report from an existing results folder; takes the
  flags of ``python -m experiments.report``.

Expected failures (bad flags, unloadable models, unusable corpora, unwritable
folders) print one line starting with ``error:`` and exit with code 2; an
interruption (Ctrl-C) exits with code 130 and says how to resume.

Example:
    stages-of-inference models
    stages-of-inference run --models smollm2-135m --tokens 4096 --out results/
    stages-of-inference report --help
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

from stages_of_inference.errors import StagesError

PROG = "stages-of-inference"
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
REPORT_MODULE = "experiments.report"

INTERRUPTED_MESSAGE = (
    "interrupted: finished work is saved in the results folder; "
    "run the same command again to resume where it stopped"
)

_SUBCOMMANDS = {
    "models": "list the models that can be loaded here without a network",
    "run": "run the full reproduction (the flags of `python -m experiments.reproduce`)",
    "report": "rebuild the report from existing results (the flags of `python -m experiments.report`)",
}


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"error: {message}; add --help to see the flags\n")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser (``run`` and ``report`` parse their own flags)."""
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
    for name in ("run", "report"):
        commands.add_parser(name, help=_SUBCOMMANDS[name], add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        print(INTERRUPTED_MESSAGE, file=sys.stderr)
        return EXIT_INTERRUPTED
    except StagesError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR


def _dispatch(args: list[str]) -> int:
    if args and args[0] == "run":
        return _delegate("experiments.reproduce", "run", args[1:])
    if args and args[0] == "report":
        return _delegate(REPORT_MODULE, "report", args[1:])
    try:
        namespace = build_parser().parse_args(args)
    except SystemExit as stop:  # --help (code 0) or a usage error (code 2, one line printed)
        return int(stop.code or 0)
    if namespace.command == "models":
        return _models(names_only=namespace.names_only)
    raise AssertionError(f"unhandled command {namespace.command!r}")  # pragma: no cover


def _models(*, names_only: bool) -> int:
    from stages_of_inference.models import available_models

    rows = available_models()
    if names_only:
        for row in rows:
            print(row["name"])
        return 0
    columns = ("name", "status", "how")
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(row[c].ljust(widths[c]) for c in columns).rstrip())
    return 0


def _delegate(module_name: str, command: str, args: list[str]) -> int:
    """Hand ``args`` to ``module_name.main``, with usage lines naming the subcommand."""
    entry = _entry_point(module_name, command)
    with _program_name(f"{PROG} {command}"):
        try:
            code = entry(args)
        except SystemExit as stop:  # argparse's --help and usage errors
            code = stop.code
    if code is None:
        return 0
    return code if isinstance(code, int) else EXIT_ERROR


def _entry_point(module_name: str, command: str) -> Callable[[list[str]], int | None]:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name not in {module_name, module_name.rpartition(".")[0]}:
            raise  # the module exists but one of its own imports is missing: a real bug
        raise StagesError(
            f"`{PROG} {command}` is not available: module {module_name} is not installed "
            "in this checkout yet; update the toolkit (`make install`) and retry"
        ) from None
    entry = getattr(module, "main", None)
    if entry is None:
        raise StagesError(
            f"`{PROG} {command}` is not available: {module_name} has no main() entry point"
        )
    return entry


@contextmanager
def _program_name(name: str) -> Iterator[None]:
    """Make argparse parsers created inside show ``name`` in their usage lines."""
    saved = sys.argv[0] if sys.argv else None
    if sys.argv:
        sys.argv[0] = name
    else:
        sys.argv.append(name)
    try:
        yield
    finally:
        if saved is None:
            sys.argv.pop(0)
        else:
            sys.argv[0] = saved


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
