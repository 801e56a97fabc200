"""Command-line plumbing shared by ``stages-of-inference`` and ``python -m experiments.*``.

A parser is generated from a config dataclass (one ``--flag`` per field, its help
from the field's metadata), usage errors are one line, and :func:`run_main` turns
the toolkit's expected errors into one ``error:`` line and exit code 2, and Ctrl-C
into exit code 130 with a note on how to resume.

Example:
    >>> parser = build_parser(ExperimentConfig, "one experiment", prog="demo", exclude={"out"})
    >>> parser.parse_args(["--tokens", "512", "--raw-weights"]).tokens
    512
    >>> run_main(lambda: None)
    0
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Collection, Sequence
from typing import NoReturn, TypeVar

from stages_of_inference.errors import StagesError
from stages_of_inference.experiments.config import ExperimentConfig

ConfigT = TypeVar("ConfigT", bound=ExperimentConfig)

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
INTERRUPTED_MESSAGE = (
    "interrupted: finished work is saved in the results folder; run the same command again to resume where it stopped"
)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"error: {message}; add --help to see the flags\n")


def build_parser(
    config_type: type[ExperimentConfig],
    description: str,
    *,
    prog: str | None = None,
    exclude: Collection[str] = (),
) -> OneLineParser:
    """An argument parser with one ``--flag`` per field of ``config_type`` but ``exclude`` (defaults shown)."""
    parser = OneLineParser(prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for spec in dataclasses.fields(config_type):
        if spec.name in exclude:
            continue
        flag = "--" + spec.name.replace("_", "-")
        help_text = spec.metadata.get("help", "")
        default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()  # type: ignore[operator]
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=help_text)
        elif isinstance(default, list):
            parser.add_argument(flag, nargs="+", default=default, help=help_text)
        else:
            parser.add_argument(flag, type=type(default), default=default, help=help_text)
    return parser


def parse_config(
    config_type: type[ConfigT],
    argv: Sequence[str] | None,
    description: str,
    *,
    prog: str | None = None,
    exclude: Collection[str] = (),
) -> ConfigT:
    r"""Parse the command line into a ``config_type`` (``exclude``\ d fields keep their defaults)."""
    namespace = build_parser(config_type, description, prog=prog, exclude=exclude).parse_args(argv)
    return config_type(**vars(namespace))


def run_main(body: Callable[[], object]) -> int:
    """Run a command's body and return its exit code: 0, or 2 (one ``error:`` line), or 130 (Ctrl-C)."""
    try:
        body()
    except SystemExit as stop:  # argparse's --help (0) and usage errors (2, one line printed)
        return stop.code if isinstance(stop.code, int) else EXIT_ERROR
    except KeyboardInterrupt:
        print(INTERRUPTED_MESSAGE, file=sys.stderr)
        return EXIT_INTERRUPTED
    except StagesError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    return 0
