"""Each model's stage estimate for the report, or the user-facing reason it has none."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from stages_of_inference.errors import StagesError
from stages_of_inference.report.results import ModelResults, neuron_counts_of
from stages_of_inference.stages import detect_stages


@dataclass(frozen=True)
class ModelStages:
    """One model's stage table (with a ``model`` column) and findings, or why there are none."""

    model: str
    table: pd.DataFrame | None = None
    findings: tuple[str, ...] = ()
    missing: str | None = None
    """Why there is no estimate (a :class:`StagesError`'s message), when ``table`` is None."""


def stage_estimates(models: list[ModelResults]) -> list[ModelStages]:
    """Each model's stage estimate from the evidence tables in its folder.

    Evidence the toolkit rejects (no evidence table, too few layers, missing columns:
    a :class:`StagesError`) gives a :class:`ModelStages` saying so; any other
    exception propagates.
    """
    estimates = []
    for model in models:
        try:
            estimate = detect_stages(
                model.get("robustness"), model.get("attention"), model.get("logit_lens"), neuron_counts_of(model)
            )
        except StagesError as error:
            estimates.append(ModelStages(model.name, missing=f"no stage estimate: {error}"))
            continue
        estimates.append(ModelStages(model.name, estimate.table.assign(model=model.name), tuple(estimate.findings)))
    return estimates
