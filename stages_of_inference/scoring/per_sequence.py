"""Per-sequence metric sums of a batch (the sweep's shard format), and the table built from them.

:func:`score_batch` decodes the final residuals of the original model and of every
intervention on one batch, ``position_chunk`` tokens at a time
(:func:`~stages_of_inference.scoring.chunks.chunk_reference`), and sums each token
metric over every sequence's scored tokens. :func:`summarize_shards` turns the rows
of all batches into one row per intervention with bootstrap confidence intervals.
Sums, not means, are kept, so batches of any size combine exactly. Rows are told
apart by the intervention's :attr:`~stages_of_inference.interventions.Intervention.label`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor

from stages_of_inference.devices import accumulation_dtype
from stages_of_inference.interventions.spec import Intervention
from stages_of_inference.layers import relative_depth
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.scoring.chunks import chunk_reference
from stages_of_inference.scoring.metrics import TOKEN_METRICS
from stages_of_inference.scoring.summary import summarize
from stages_of_inference.scoring.workspace import Workspace, chunk_rows
from stages_of_inference.tokens import n_scored, prediction_targets, scored_positions


def score_batch(
    model: LoadedModel,
    batch: Int[Tensor, "batch pos"],
    baseline: Float[Tensor, "batch pos d_model"],
    finals: list[Float[Tensor, "batch pos d_model"]],
    interventions: Sequence[Intervention],
    position_chunk: int | None = None,
    advance: Callable[[float], Any] | None = None,
) -> pd.DataFrame:
    """Per-sequence metric sums of every intervention on one batch, from final residuals.

    Args:
        model: The bridge whose unembedding decodes the residuals.
        batch: The batch's tokens.
        baseline: The original model's final residual (the unembedding's input).
        finals: The same for each intervention.
        interventions: One per entry of ``finals``.
        position_chunk: Tokens decoded at once (by default :func:`~stages_of_inference.scoring.workspace.chunk_rows`);
            the full-vocabulary tensors of a chunk live in one reused
            :class:`~stages_of_inference.scoring.workspace.Workspace`.
        advance: Called after each chunk of tokens is decoded (the original model's or
            an intervention's) with the share of one full decoding of the batch it was,
            for a progress bar.

    Returns:
        One row per (intervention, sequence): ``sequence``, ``intervention``, ``layer``,
        ``label``, ``n_tokens`` and the sum of each of :data:`TOKEN_METRICS` over the sequence's
        scored tokens (the shard format :func:`summarize_shards` reads).
    """
    positions = scored_positions(batch.shape[1])
    scored = n_scored(batch.shape[1])
    flatten = lambda x: x[:, positions].reshape(batch.shape[0] * scored, -1)
    if position_chunk is None:
        position_chunk = chunk_rows(model.cfg.d_vocab)
    per_token = _stream_metrics(
        model,
        flatten(baseline),
        [flatten(f) for f in finals],
        prediction_targets(batch).reshape(-1).to(baseline.device),
        interventions,
        position_chunk,
        advance or (lambda share: None),
    )
    rows = []
    for intervention, metrics in zip(interventions, per_token, strict=True):
        sums = {
            name: values.reshape(batch.shape[0], scored).to(accumulation_dtype(values.device)).sum(1).cpu().numpy()
            for name, values in metrics.items()
        }
        for sequence in range(batch.shape[0]):
            rows.append(
                {
                    "sequence": sequence,
                    "intervention": intervention.kind,
                    "layer": intervention.layer,
                    "label": intervention.label,
                    "n_tokens": scored,
                    **{name: float(sums[name][sequence]) for name in TOKEN_METRICS},
                }
            )
    return pd.DataFrame(rows)


def _stream_metrics(
    model: LoadedModel,
    baseline: Float[Tensor, "n d_model"],
    finals: list[Float[Tensor, "n d_model"]],
    targets: Int[Tensor, " n"],
    interventions: Sequence[Intervention],
    position_chunk: int,
    advance: Callable[[float], Any],
) -> list[dict[str, Tensor]]:
    """Unembed and score every intervention, ``position_chunk`` tokens at a time."""
    workspace = Workspace()
    chunks: list[list[dict[str, Tensor]]] = [[] for _ in finals]
    n_rows = baseline.shape[0]
    for start in range(0, n_rows, position_chunk):
        rows = slice(start, start + position_chunk)
        share = (min(start + position_chunk, n_rows) - start) / n_rows
        reference = chunk_reference(model, baseline[rows], targets[rows], workspace)
        advance(share)
        for index, (final, intervention) in enumerate(zip(finals, interventions, strict=True)):
            where = f"{intervention.label} (tokens {start}..{start + position_chunk} of the batch)"
            chunks[index].append(reference.compare(final[rows], where))
            advance(share)
    return [{name: torch.cat([c[name] for c in parts]) for name in TOKEN_METRICS} for parts in chunks]


def summarize_shards(
    per_sequence: pd.DataFrame,
    interventions: Sequence[Intervention],
    n_layers: int,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Turn per-sequence sums (one row per batch, sequence and intervention) into the table.

    The columns of :func:`~stages_of_inference.sweep.robustness_sweep`'s table; the
    interventions' labels must be distinct (:func:`~stages_of_inference.interventions.check_interventions`).
    """
    rows = []
    for intervention in interventions:
        part = per_sequence[per_sequence.label == intervention.label].sort_values(["batch", "sequence"])
        sums = {metric: part[metric].to_numpy(np.float64) for metric in TOKEN_METRICS}
        summary = summarize(sums, part.n_tokens.to_numpy(np.float64), n_bootstrap=n_bootstrap, seed=seed)
        rows.append(
            {
                "intervention": intervention.kind,
                "layer": intervention.layer,
                "relative_depth": relative_depth(intervention.layer, n_layers),
                **summary,
                "label": intervention.label,
                "order": json.dumps(intervention.order(n_layers)),
            }
        )
    table = pd.DataFrame(rows)
    return table.astype({"n_tokens": "int64", "n_sequences": "int64"})
