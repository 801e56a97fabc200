"""What an experiment is: a name, a one-line description, its config and one ``compute`` step.

An experiment only computes: ``compute(model, tokens, config)`` returns
:class:`Results` (named tables, a JSON-ready summary, named figures). Loading the
model, claiming the results folder, timing, saving, resuming and printing are the
runner's job (:mod:`stages_of_inference.experiments.runner`), done once for all.

Example:
    >>> import pandas as pd
    >>> def count_windows(model, tokens, config):
    ...     table = pd.DataFrame({"windows": [tokens.shape[0]]})
    ...     return Results(tables={"count": table}, summary={"windows": int(tokens.shape[0])})
    >>> demo = Experiment("count", "Count the windows.", ExperimentConfig, count_windows)
    >>> demo.config_for(ExperimentConfig(tokens=512, model="a"), model="b")
    ExperimentConfig(model='b', corpus='prose', tokens=512, seq_len=256, seed=0, batch_size=4, out=PosixPath('results'), raw_weights=False, trust_remote_code=False, device='cpu', dtype='float32', overwrite=False, backend='local', workers=1, address='', shared_gb=4.0)
    >>> demo.options(ExperimentConfig())
    {}
    >>> demo.run_name(ExperimentConfig())
    'count'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pandas as pd
import plotly.graph_objects as go
from jaxtyping import Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from stages_of_inference.experiments.config import ExperimentConfig

ConfigT = TypeVar("ConfigT", bound=ExperimentConfig)

RUN_FIELDS = frozenset(f.name for f in dataclasses.fields(ExperimentConfig))
"""The fields every experiment shares; an experiment's own options are the fields beyond these."""


@dataclass
class Results:
    """What one experiment computed on one model.

    Attributes:
        tables: file stem -> table, saved as ``<stem>.parquet``.
        summary: the experiment's JSON summary, saved as ``<experiment>.json`` (the
            runner adds ``wall_seconds``).
        figures: file stem -> figure, saved as standalone ``<stem>.html``.
    """

    tables: dict[str, pd.DataFrame]
    summary: dict[str, Any]
    figures: dict[str, go.Figure] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment(Generic[ConfigT]):
    """One experiment of the reproduction.

    Attributes:
        name: the experiment's name: its summary file, its ``python -m experiments.<name>``.
        description: one line saying what it measures (the ``--help`` description).
        config_type: its config: :class:`ExperimentConfig` or a subclass adding its options.
        compute: ``compute(model, tokens, config) -> Results``; pure computation, no files
            (but for a checkpoint folder of its own, like the robustness sweep's).
        variant: ``variant(config) -> str`` names the variant a config selects (``""``:
            none); each variant is recorded under its own :meth:`run_name`.
        activations: ``activations(model, config) -> hook names``: the hooks ``compute``
            reads from the corpus windows with
            :func:`~stages_of_inference.activations.cached_activations` and
            ``config.batch_size``. The runner lets the experiments that declare them
            share one forward per batch (:func:`~stages_of_inference.activations.shared_forwards`).
    """

    name: str
    description: str
    config_type: type[ConfigT]
    compute: Callable[[TransformerBridge, Int[Tensor, "batch pos"], ConfigT], Results]
    variant: Callable[[ConfigT], str] | None = None
    """For an experiment with variants (the robustness families): the name of the
    variant a config selects, ``""`` for the plain experiment. See :meth:`run_name`."""
    activations: Callable[[TransformerBridge, ConfigT], list[str]] | None = None
    """The hooks ``compute`` reads from the windows, for the runner's shared forwards; None: it reads none."""

    def config_for(self, config: ExperimentConfig, *, model: str) -> ConfigT:
        """This experiment's config for ``model``, taking every field from ``config``.

        Raises:
            TypeError: ``config`` lacks a field of :attr:`config_type` (a programming error).
        """
        missing = [f.name for f in dataclasses.fields(self.config_type) if not hasattr(config, f.name)]
        if missing:
            raise TypeError(f"{type(config).__name__} has no {', '.join(missing)} for experiment {self.name}")
        values = {f.name: getattr(config, f.name) for f in dataclasses.fields(self.config_type)}
        return self.config_type(**{**values, "model": model})

    def options(self, config: ExperimentConfig) -> dict[str, Any]:
        """The experiment's own options (the fields beyond :class:`ExperimentConfig`) with their values in ``config``.

        An option that selects a variant (``option(..., variant=True)``) is left out:
        :meth:`run_name` records it.
        """
        return {
            f.name: getattr(config, f.name)
            for f in dataclasses.fields(self.config_type)
            if f.name not in RUN_FIELDS and not f.metadata.get("variant", False)
        }

    def run_name(self, config: ConfigT) -> str:
        """The name this run is summarised, recorded as finished and resumed under.

        :attr:`name` itself, or ``<name>_<variant>`` for a variant, so running one
        variant never replaces the results or the finished record of another.
        """
        variant = self.variant(config) if self.variant is not None else ""
        return f"{self.name}_{variant}" if variant else self.name
