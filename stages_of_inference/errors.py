"""Exception types for expected failures: bad input, unloadable models, bad numbers.

Every error a user can cause by what they pass in derives from :class:`StagesError`,
so the command line prints its message as one line instead of a traceback. Each
message names the problem and says what to do about it.
"""

from __future__ import annotations


class StagesError(Exception):
    """Base class of every expected, user-facing error of the toolkit."""


class ConfigError(StagesError, ValueError):
    """An argument is malformed or out of range (layer spec, budget, seq_len, ...)."""


class ModelLoadError(StagesError):
    """A model cannot be found, read or booted (unknown name, corrupt file, offline hub id)."""


class CorpusError(StagesError, ValueError):
    """A corpus cannot be read or holds too little usable text."""


class NumericalError(StagesError, FloatingPointError):
    """A logit or metric left its valid range (NaN, infinity, KL < 0, entropy > log2 vocab)."""


class ResultsError(StagesError):
    """A results folder cannot be written, or belongs to a different run."""


class DistributedError(StagesError):
    """A Ray worker failed beyond its retries, or the Ray cluster cannot run the workers asked for."""
