"""The robustness sweep: delete or swap every layer (or run any intervention) and measure what survives.

Orchestration only: batches of windows times interventions, through scoring, with
optional checkpoints. For each batch the original model runs once, keeping the
residual stream entering every block; each intervention then runs only the blocks
whose input it changes, from the cached residual, with the hooks it needs (a
component deletion zeroes its layer's attention or MLP output)
(:mod:`~stages_of_inference.interventions.prefix`). Any
:class:`~stages_of_inference.interventions.Intervention` runs this way: block
deletions, component deletions, swaps at any distance, repeats, explicit orders
(named lists of them: :mod:`~stages_of_inference.interventions.families`). The final residuals of all
interventions are kept (``d_model`` wide, small) and scored against the original
model ``position_chunk`` tokens at a time
(:mod:`~stages_of_inference.scoring.per_sequence`), so no tensor ever spans the whole
vocabulary for more than ``position_chunk`` tokens.

Finished batches can be checkpointed (:mod:`~stages_of_inference.runs.shards`: one
parquet file of per-sequence sums per batch, written atomically with what it was
computed from); a rerun with the same checkpoint folder reuses the shards of the same
work, refuses those of other work, and ends with exactly the table an uninterrupted
run gives.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import torch
from jaxtyping import Int
from torch import Tensor
from tqdm.auto import tqdm

from stages_of_inference.activations import DEFAULT_BATCH_SIZE, iter_batches
from stages_of_inference.errors import ConfigError
from stages_of_inference.interventions import (
    Intervention,
    check_interventions,
    default_interventions,
    final_residual,
    intervened_residual,
)
from stages_of_inference.layers import n_layers_of
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.runs.shards import ShardFolder, run_provenance
from stages_of_inference.scoring.per_sequence import score_batch, summarize_shards
from stages_of_inference.tokens import check_windows


def robustness_sweep(
    model: LoadedModel,
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
        interventions: Any interventions, each listed once; defaults to every
            deletion and every adjacent swap.
        batch_size: Windows per forward pass.
        position_chunk: Tokens unembedded at once (bounds memory); by default
            :func:`~stages_of_inference.scoring.workspace.chunk_rows` of the vocabulary size.
        n_bootstrap: Sequence resamples for the 95 % confidence intervals.
        seed: Seed of the bootstrap.
        checkpoint_dir: When given, each finished batch is saved there with what it
            was computed from, and a rerun reuses it; a shard computed from other
            tokens, interventions or model is refused (``ResultsError``), never reused.
        progress: Show a progress bar.

    Returns:
        One row per intervention: ``intervention``, ``layer``, ``relative_depth``,
        ``n_tokens``, ``n_sequences``, ``kl``, ``top1_agreement``, ``accuracy``,
        ``baseline_accuracy``, ``relative_accuracy``, ``loss``, ``baseline_loss``,
        ``entropy_bits``, ``baseline_entropy_bits``, ``<metric>_ci_low`` /
        ``<metric>_ci_high`` for each, then ``label`` (:attr:`Intervention.label`) and
        ``order`` (the layers run, as JSON). ``layer`` and ``relative_depth`` place a
        multi-layer intervention at the first layer it names
        (:attr:`Intervention.layer`).

    Raises:
        ConfigError: Bad interventions, tokens or options (before any work).
        ResultsError: A checkpoint in ``checkpoint_dir`` belongs to other work.

    Example:
        >>> table = robustness_sweep(model, tokens)  # doctest: +SKIP
        >>> table.groupby("intervention").top1_agreement.mean()  # doctest: +SKIP
    """
    n_layers = n_layers_of(model)
    if interventions is not None and len(interventions) == 0:
        raise ConfigError("the list of interventions is empty; pass None for every deletion and adjacent swap")
    chosen = check_interventions(default_interventions(n_layers) if interventions is None else interventions, n_layers)
    check_windows(tokens, what="the robustness sweep")
    if position_chunk is not None and position_chunk < 1:
        raise ConfigError(f"position_chunk must be at least 1, got {position_chunk}")
    batches = list(iter_batches(tokens, batch_size))
    shards = ShardFolder(checkpoint_dir, run_provenance(model, chosen)) if checkpoint_dir is not None else None
    tables: list[pd.DataFrame] = []
    bar = tqdm(total=len(batches) * (len(chosen) + 1), disable=not progress, desc="robustness sweep")
    with torch.inference_mode():
        for index, batch in enumerate(batches):
            table = shards.read(index, batch) if shards is not None else None
            if table is not None:
                bar.update(len(chosen) + 1)
            else:
                table = _sweep_batch(model, batch, chosen, position_chunk, bar.update)
                table.insert(0, "batch", index)
                if shards is not None:
                    shards.write(index, batch, table)
            tables.append(table)
    bar.close()
    return summarize_shards(pd.concat(tables, ignore_index=True), chosen, n_layers, n_bootstrap=n_bootstrap, seed=seed)


def _sweep_batch(
    model: LoadedModel,
    batch: Int[Tensor, "batch pos"],
    interventions: Sequence[Intervention],
    position_chunk: int | None,
    advance: Callable[[int], Any],
) -> pd.DataFrame:
    """Per-sequence sums of every intervention on one batch, each run from its first changed slot."""
    baseline, resid_pres = final_residual(model, batch, cache_resid_pre=True)
    advance(1)
    finals = []
    for intervention in interventions:
        finals.append(intervened_residual(model, batch, intervention, resid_pres))
        advance(1)
    return score_batch(model, batch, baseline, finals, interventions, position_chunk)
