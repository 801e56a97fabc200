"""The robustness sweep: delete or swap every layer and measure what survives.

For each batch of windows the original model runs once, keeping the residual stream
entering every block. Each intervention then runs only the blocks whose input it
changes: its layer order is compared with the original one, and the forward pass
starts at the first slot where they differ, from the cached residual (deleting layer
``i`` runs layers ``i+1 ..``; swapping ``i, i+1`` runs ``i+1, i, i+2 ..``). The
final residuals of all interventions are kept (``d_model`` wide, small), and the
unembedding and metrics are streamed over chunks of tokens, so no tensor ever spans
the whole vocabulary for more than ``position_chunk`` tokens.

Finished batches can be checkpointed (one parquet file of per-sequence sums per
batch, written atomically); a rerun with the same checkpoint folder skips them and
ends with exactly the table an uninterrupted run gives.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm
from transformer_lens.model_bridge import TransformerBridge

from stages_of_inference.activations import DEFAULT_BATCH_SIZE, iter_batches
from stages_of_inference.errors import ConfigError
from stages_of_inference.interventions import (
    Intervention,
    default_interventions,
    layer_order,
)
from stages_of_inference.layers import (
    check_order,
    n_layers_of,
    relative_depth,
)
from stages_of_inference.models.attention_guards import unguarded_attention
from stages_of_inference.runs.atomic import write_parquet
from stages_of_inference.scoring.chunks import chunk_reference
from stages_of_inference.scoring.metrics import TOKEN_METRICS
from stages_of_inference.scoring.summary import summarize
from stages_of_inference.scoring.workspace import Workspace, chunk_rows
from stages_of_inference.tokens import (
    check_windows,
    n_scored,
    prediction_targets,
    scored_positions,
)


def robustness_sweep(
    model: TransformerBridge,
    tokens: Int[Tensor, "batch pos"],
    interventions: Sequence[Intervention] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    position_chunk: int | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Delete or swap layers one at a time and measure what survives.

    Args:
        model: The bridge (restored after every intervention).
        tokens: Windows from :func:`~stages_of_inference.corpus.load_corpus`, BOS first.
        interventions: Defaults to every deletion and every adjacent swap.
        batch_size: Windows per forward pass.
        position_chunk: Tokens unembedded at once (bounds memory); by default
            :func:`~stages_of_inference.scoring.workspace.chunk_rows` of the vocabulary size.
        n_bootstrap: Sequence resamples for the 95 % confidence intervals.
        seed: Seed of the bootstrap.
        checkpoint_dir: When given, each finished batch is saved there and a rerun
            skips it (the caller makes sure the folder belongs to the same run).
        progress: Show a progress bar.

    Returns:
        One row per intervention: ``intervention``, ``layer``, ``relative_depth``,
        ``n_tokens``, ``n_sequences``, ``kl``, ``top1_agreement``, ``accuracy``,
        ``baseline_accuracy``, ``relative_accuracy``, ``loss``, ``baseline_loss``,
        ``entropy_bits``, ``baseline_entropy_bits``, and ``<metric>_ci_low`` /
        ``<metric>_ci_high`` for each.

    Example:
        >>> table = robustness_sweep(model, tokens)  # doctest: +SKIP
        >>> table.groupby("intervention").top1_agreement.mean()  # doctest: +SKIP
    """
    n_layers = n_layers_of(model)
    if interventions is not None and len(interventions) == 0:
        raise ConfigError("the list of interventions is empty; pass None for every deletion and adjacent swap")
    chosen = [i.check(n_layers) for i in (default_interventions(n_layers) if interventions is None else interventions)]
    check_windows(tokens, what="the robustness sweep")
    if position_chunk is not None and position_chunk < 1:
        raise ConfigError(f"position_chunk must be at least 1, got {position_chunk}")
    batches = list(iter_batches(tokens, batch_size))
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    shards: list[pd.DataFrame] = []
    bar = tqdm(total=len(batches) * (len(chosen) + 1), disable=not progress, desc="robustness sweep")
    with torch.inference_mode():
        for index, batch in enumerate(batches):
            shard_path = folder / f"batch-{index:05d}.parquet" if folder else None
            if shard_path is not None and shard_path.exists():
                shards.append(pd.read_parquet(shard_path))
                bar.update(len(chosen) + 1)
                continue
            shard = _sweep_batch(model, batch, chosen, position_chunk, bar.update)
            shard.insert(0, "batch", index)
            if shard_path is not None:
                write_parquet(shard, shard_path)
            shards.append(shard)
    bar.close()
    return summarize_shards(pd.concat(shards, ignore_index=True), chosen, n_layers, n_bootstrap=n_bootstrap, seed=seed)


def summarize_shards(
    per_sequence: pd.DataFrame,
    interventions: Sequence[Intervention],
    n_layers: int,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Turn per-sequence sums (one row per batch, sequence and intervention) into the table."""
    rows = []
    for intervention in interventions:
        part = per_sequence[
            (per_sequence.intervention == intervention.kind) & (per_sequence.layer == intervention.layer)
        ].sort_values(["batch", "sequence"])
        sums = {metric: part[metric].to_numpy(np.float64) for metric in TOKEN_METRICS}
        summary = summarize(sums, part.n_tokens.to_numpy(np.float64), n_bootstrap=n_bootstrap, seed=seed)
        rows.append(
            {
                "intervention": intervention.kind,
                "layer": intervention.layer,
                "relative_depth": relative_depth(intervention.layer, n_layers),
                **summary,
            }
        )
    table = pd.DataFrame(rows)
    return table.astype({"n_tokens": "int64", "n_sequences": "int64"})


class _StopBeforeUnembed(Exception):
    """Raised by a hook to end a forward pass once the final residual is captured."""


def final_residual(
    model: TransformerBridge,
    batch: Int[Tensor, "batch pos"],
    *,
    order: Sequence[int] | None = None,
    start: int = 0,
    start_residual: Float[Tensor, "batch pos d_model"] | None = None,
    cache_resid_pre: bool = False,
) -> tuple[Float[Tensor, "batch pos d_model"], list[Tensor]]:
    """Run blocks ``order[start:]`` and return the input of the unembedding.

    With ``start > 0``, ``start_residual`` is the residual entering slot ``start``
    (the cached ``resid_pre`` of the original model) and earlier blocks do not run.
    The unembedding is skipped: call :func:`~stages_of_inference.scoring.decode.unembed` on the result.
    A tensor of tokens carries no padding mask, so the attention runs without its
    fully-masked-row guards (:func:`~stages_of_inference.models.attention_guards.unguarded_attention`).

    Returns:
        ``(final_residual, resid_pres)``; ``resid_pres`` holds the residual entering
        every slot when ``cache_resid_pre`` (else it is empty).
    """
    n_layers = n_layers_of(model)
    full_order = check_order(list(range(n_layers)) if order is None else order, n_layers)
    suffix = full_order[start:]
    captured: dict[str, Tensor] = {}
    resid_pres: list[Tensor] = []

    def inject(resid: Tensor, hook: Any) -> Tensor | None:
        if "injected" in captured:
            return None
        captured["injected"] = resid
        return start_residual

    def remember(resid: Tensor, hook: Any) -> None:
        resid_pres.append(resid)

    def stop(resid: Tensor, hook: Any) -> None:
        captured["final"] = resid
        raise _StopBeforeUnembed

    hooks: list[tuple[str, Callable[..., Any]]] = [("unembed.hook_in", stop)]
    if start_residual is not None:
        hooks.insert(0, (f"blocks.{suffix[0]}.hook_resid_pre", inject))
    if cache_resid_pre:
        hooks += [(f"blocks.{layer}.hook_resid_pre", remember) for layer in range(n_layers)]
    with layer_order(model, suffix), model.hooks(fwd_hooks=hooks), unguarded_attention(model):
        try:
            model(batch)
        except _StopBeforeUnembed:
            pass
    return captured["final"], resid_pres


def _first_changed_slot(order: Sequence[int]) -> int:
    """The first slot whose layer differs from the original order (the last slot at most)."""
    for slot, layer in enumerate(order):
        if layer != slot:
            return slot
    return len(order) - 1


def _sweep_batch(
    model: TransformerBridge,
    batch: Int[Tensor, "batch pos"],
    interventions: Sequence[Intervention],
    position_chunk: int | None,
    advance: Callable[[int], Any],
) -> pd.DataFrame:
    n_layers = n_layers_of(model)
    baseline, resid_pres = final_residual(model, batch, cache_resid_pre=True)
    advance(1)
    finals = []
    for intervention in interventions:
        order = intervention.order(n_layers)
        start = _first_changed_slot(order)
        final, _ = final_residual(model, batch, order=order, start=start, start_residual=resid_pres[start])
        finals.append(final)
        advance(1)
    return score_batch(model, batch, baseline, finals, interventions, position_chunk)


def score_batch(
    model: TransformerBridge,
    batch: Int[Tensor, "batch pos"],
    baseline: Float[Tensor, "batch pos d_model"],
    finals: list[Float[Tensor, "batch pos d_model"]],
    interventions: Sequence[Intervention],
    position_chunk: int | None = None,
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

    Returns:
        One row per (intervention, sequence): ``sequence``, ``intervention``, ``layer``,
        ``n_tokens`` and the sum of each of :data:`TOKEN_METRICS` over the sequence's
        scored tokens (the shard format :func:`summarize_shards` reads).
    """
    positions = scored_positions(batch.shape[1])
    scored = n_scored(batch.shape[1])
    flatten = lambda x: x[:, positions].reshape(batch.shape[0] * scored, -1)  # noqa: E731
    if position_chunk is None:
        position_chunk = chunk_rows(model.cfg.d_vocab)
    per_token = _stream_metrics(
        model, flatten(baseline), [flatten(f) for f in finals], prediction_targets(batch).reshape(-1),
        interventions, position_chunk,
    )
    rows = []
    for intervention, metrics in zip(interventions, per_token, strict=True):
        sums = {name: values.reshape(batch.shape[0], scored).double().sum(1).numpy() for name, values in metrics.items()}
        for sequence in range(batch.shape[0]):
            rows.append(
                {
                    "sequence": sequence,
                    "intervention": intervention.kind,
                    "layer": intervention.layer,
                    "n_tokens": scored,
                    **{name: float(sums[name][sequence]) for name in TOKEN_METRICS},
                }
            )
    return pd.DataFrame(rows)


def _stream_metrics(
    model: TransformerBridge,
    baseline: Float[Tensor, "n d_model"],
    finals: list[Float[Tensor, "n d_model"]],
    targets: Int[Tensor, " n"],
    interventions: Sequence[Intervention],
    position_chunk: int,
) -> list[dict[str, Tensor]]:
    """Unembed and score every intervention, ``position_chunk`` tokens at a time."""
    workspace = Workspace()
    chunks: list[list[dict[str, Tensor]]] = [[] for _ in finals]
    for start in range(0, baseline.shape[0], position_chunk):
        rows = slice(start, start + position_chunk)
        reference = chunk_reference(model, baseline[rows], targets[rows], workspace)
        for index, (final, intervention) in enumerate(zip(finals, interventions, strict=True)):
            where = f"{intervention.label} (tokens {start}..{start + position_chunk} of the batch)"
            chunks[index].append(reference.compare(final[rows], where))
    return [{name: torch.cat([c[name] for c in parts]) for name in TOKEN_METRICS} for parts in chunks]
