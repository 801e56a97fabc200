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

Backends: ``backend="local"`` computes the batches in this process, one after the
other; ``backend="ray"`` hands them to ``workers`` Ray actors, each holding its own
copy of the model (:mod:`~stages_of_inference.distributed.ray_backend`). Both call
:func:`sweep_batch` on whole batches, so each keeps the prefix reuse, and the driver
writes every shard, so the table does not depend on the backend or on the order in
which batches finish. Ray is imported only by the Ray backend.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
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
    start_slot,
)
from stages_of_inference.layers import n_layers_of
from stages_of_inference.models.bridge import LoadedModel
from stages_of_inference.runs.shards import ShardFolder, run_provenance
from stages_of_inference.scoring.per_sequence import score_batch, summarize_shards
from stages_of_inference.tokens import check_windows

BACKENDS = ("local", "ray")
"""Where the batches of a sweep are computed: in this process, or on Ray actors."""


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
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    load_options: dict[str, Any] | None = None,
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
        progress: Show a progress bar (tokens per second and the time left).
        backend: ``"local"`` (this process) or ``"ray"`` (``workers`` Ray actors, each
            loading the model again by its name; needs ``pip install
            'stages-of-inference[ray]'``). Both give exactly the same table.
        workers: Ray actors (``backend="ray"`` only).
        address: Ray cluster to join (``backend="ray"`` only); by default the Ray
            instance this process already joined, or a new local one (shut down at the end).
        load_options: Extra keyword arguments of :func:`~stages_of_inference.models.load_model`
            for the Ray workers (e.g. ``{"trust_remote_code": True}``); the name and
            weight processing are the model's own.

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
        ConfigError: Bad interventions, tokens or options (before any work), or the
            Ray backend asked for without Ray installed or for a model it cannot reload.
        ResultsError: A checkpoint in ``checkpoint_dir`` belongs to other work.

    Example:
        >>> table = robustness_sweep(model, tokens)  # doctest: +SKIP
        >>> table.groupby("intervention").top1_agreement.mean()  # doctest: +SKIP
        >>> same = robustness_sweep(model, tokens, backend="ray", workers=2)  # doctest: +SKIP
    """
    n_layers = n_layers_of(model)
    if interventions is not None and len(interventions) == 0:
        raise ConfigError("the list of interventions is empty; pass None for every deletion and adjacent swap")
    chosen = check_interventions(default_interventions(n_layers) if interventions is None else interventions, n_layers)
    check_windows(tokens, what="the robustness sweep")
    if position_chunk is not None and position_chunk < 1:
        raise ConfigError(f"position_chunk must be at least 1, got {position_chunk}")
    _check_backend(backend, workers, address, load_options)
    batches = list(iter_batches(tokens, batch_size))
    shards = ShardFolder(checkpoint_dir, run_provenance(model, chosen)) if checkpoint_dir is not None else None
    tables: dict[int, pd.DataFrame] = {}
    if shards is not None:
        for index, batch in enumerate(batches):
            saved = shards.read(index, batch)
            if saved is not None:
                tables[index] = saved
    pending = [(index, batch) for index, batch in enumerate(batches) if index not in tables]
    done = sum(batches[index].numel() for index in tables)
    bar = tqdm(
        total=tokens.numel(),
        initial=done,
        disable=not progress,
        desc=f"robustness sweep ({backend})",
        unit="tok",
        unit_scale=True,
    )
    if backend == "local":
        finished = _local_batches(model, pending, chosen, position_chunk, bar.update)
    else:
        from stages_of_inference.distributed.ray_backend import ray_batches

        finished = ray_batches(
            model,
            pending,
            chosen,
            position_chunk,
            workers=workers,
            address=address,
            load_options=load_options or {},
            advance=bar.update,
        )
    for index, table in finished:
        if shards is not None:
            shards.write(index, batches[index], table)
        tables[index] = table
    bar.close()
    per_sequence = pd.concat([tables[index] for index in range(len(batches))], ignore_index=True)
    return summarize_shards(per_sequence, chosen, n_layers, n_bootstrap=n_bootstrap, seed=seed)


def sweep_batch(
    model: LoadedModel,
    index: int,
    batch: Int[Tensor, "batch pos"],
    interventions: Sequence[Intervention],
    position_chunk: int | None = None,
    advance: Callable[[float], Any] | None = None,
) -> pd.DataFrame:
    """Per-sequence sums of every intervention on batch ``index``, each run from its first changed slot.

    The unit of work of every backend: the original model runs once, keeping the
    residual entering every block, then each intervention runs from there.

    Args:
        model: The bridge.
        index: The batch's position in the sweep (its ``batch`` column).
        batch: The batch's windows.
        interventions: Checked interventions (:func:`~stages_of_inference.interventions.check_interventions`).
        position_chunk: Tokens unembedded at once (see :func:`robustness_sweep`).
        advance: Called as the work advances, with the batch's tokens times the share of
            the batch's work just done (:class:`BatchWork`): after each forward (the
            original model's and each intervention's) and after each chunk decoded.

    Returns:
        The shard: ``batch`` then the columns of :func:`~stages_of_inference.scoring.per_sequence.score_batch`.
    """
    work = BatchWork.of(model, interventions)
    tokens_per_unit = batch.numel() / work.total
    report = (lambda units: advance(units * tokens_per_unit)) if advance is not None else (lambda units: None)
    with torch.inference_mode():
        baseline, resid_pres = final_residual(model, batch, cache_resid_pre=True)
        report(work.forwards[0])
        finals = []
        for intervention, blocks in zip(interventions, work.forwards[1:], strict=True):
            finals.append(intervened_residual(model, batch, intervention, resid_pres))
            report(blocks)
        decoded = lambda share: report(share * work.decode)
        table = score_batch(model, batch, baseline, finals, interventions, position_chunk, decoded)
    table.insert(0, "batch", index)
    return table


@dataclass(frozen=True)
class BatchWork:
    """The matrix-product work of one batch of a sweep, per token, in units of one block's.

    For the progress bar only (its rate and time left): a block costs about its
    parameter count in multiply-adds per token, an unembedding ``d_model x d_vocab``.
    On Gemma 3 one unembedding is worth about 30 blocks, so most of a batch's time is
    its scoring; on Qwen2.5-Coder 1.5B about 5, so most of it is its forwards.

    Example:
        >>> work = BatchWork(forwards=(18.0, 17.0, 1.0), decode=30.0)
        >>> work.total  # the forwards, then three decodings: the original and two interventions
        126.0
    """

    forwards: tuple[float, ...]
    """Blocks run by the original model, then by each intervention."""
    decode: float
    """One unembedding of every scored token, in blocks."""

    @classmethod
    def of(cls, model: LoadedModel, interventions: Sequence[Intervention]) -> BatchWork:
        n_layers = n_layers_of(model)
        blocks = [float(len(i.order(n_layers)) - start_slot(i, n_layers)) for i in interventions]
        block_size = sum(parameter.numel() for parameter in model.blocks[0].parameters())
        decode = model.cfg.d_model * model.cfg.d_vocab / max(block_size, 1)
        return cls(forwards=(float(n_layers), *blocks), decode=decode)

    @property
    def total(self) -> float:
        return sum(self.forwards) + self.decode * len(self.forwards)


def _local_batches(
    model: LoadedModel,
    pending: Sequence[tuple[int, Int[Tensor, "_ pos"]]],
    interventions: Sequence[Intervention],
    position_chunk: int | None,
    advance: Callable[[float], Any],
) -> Iterator[tuple[int, pd.DataFrame]]:
    """The local backend: each pending batch in turn, in this process."""
    for index, batch in pending:
        yield index, sweep_batch(model, index, batch, interventions, position_chunk, advance)


def _check_backend(backend: str, workers: int, address: str | None, load_options: dict[str, Any] | None) -> None:
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    if backend == "local" and (workers != 1 or address is not None or load_options):
        raise ConfigError("workers, address and load_options are options of the Ray backend; pass backend='ray'")
