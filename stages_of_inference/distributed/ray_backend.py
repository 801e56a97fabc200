"""The Ray backend of the robustness sweep: batches computed by Ray actors, shards written by the driver.

The unit of work is one batch of windows with all its interventions
(:func:`~stages_of_inference.sweep.sweep_batch`), so every worker keeps the prefix
reuse. Each worker is a Ray actor that loads the model once
(:class:`~stages_of_inference.distributed.model_spec.ModelSpec`) and returns the
batch's per-sequence sums; the driver writes them as the same atomic shards a local
run writes. Every worker gets one GPU when the cluster has GPUs, otherwise an equal
share of the cluster's CPUs (and as many torch threads).

Fault tolerance: a worker whose process dies is started again (up to
:data:`MAX_RESTARTS` times each) and the batches it held are sent again (Ray's
``max_task_retries``); a batch is deterministic, so the table is the same. Batches
finished before the driver itself dies are in the checkpoint folder, and the same
command resumes from them.

Example:
    >>> from stages_of_inference.sweep import robustness_sweep
    >>> table = robustness_sweep(model, tokens, backend="ray", workers=2, checkpoint_dir="shards")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pandas as pd
import torch
from jaxtyping import Int
from torch import Tensor

from stages_of_inference.distributed.model_spec import ModelSpec
from stages_of_inference.errors import ConfigError, DistributedError
from stages_of_inference.interventions import Intervention
from stages_of_inference.models.bridge import LoadedModel

MAX_RESTARTS = 3
"""Times each worker is started again after its process died (Ray's ``max_restarts``)."""
MAX_TASK_RETRIES = 3
"""Times a batch is sent again after its worker died (Ray's ``max_task_retries``)."""
IN_FLIGHT = 2
"""Batches queued on each worker at once: the next one is ready when the current one ends."""


class SweepWorker:
    """One Ray actor's state: the model, loaded once, and the sweep's interventions."""

    def __init__(
        self, spec: ModelSpec, interventions: Sequence[Intervention], position_chunk: int | None, threads: int
    ) -> None:
        torch.set_num_threads(threads)
        self.model = spec.load()
        self.interventions = list(interventions)
        self.position_chunk = position_chunk

    def pid(self) -> int:
        """This worker's process id (to wait for it to start, and for tests that kill it)."""
        return os.getpid()

    def sweep(self, index: int, batch: Int[Tensor, "batch pos"]) -> tuple[int, pd.DataFrame]:
        """The shard of batch ``index``."""
        from stages_of_inference.sweep import sweep_batch

        return index, sweep_batch(self.model, index, batch, self.interventions, self.position_chunk)


def ray_batches(
    model: LoadedModel,
    pending: Sequence[tuple[int, Int[Tensor, "_ pos"]]],
    interventions: Sequence[Intervention],
    position_chunk: int | None,
    *,
    workers: int,
    address: str | None,
    load_options: dict[str, Any],
    advance: Callable[[float], Any],
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Compute the pending batches on ``workers`` actors; yield each ``(index, shard)`` as it finishes.

    Uses the Ray instance this process already joined, else joins ``address``, else
    starts a local one; it leaves what it joined, and ends its workers, at the end.

    Raises:
        ConfigError: Ray is not installed, the model cannot be loaded again by name,
            or the cluster has fewer CPUs than ``workers``.
        DistributedError: A worker could not start or died more often than it may.
    """
    if not pending:
        return
    spec = ModelSpec.of(model, load_options)
    ray = import_ray()
    started = join_ray(ray, address)
    actors: list[Any] = []
    try:
        options, threads = _placement(ray, workers)
        if options.get("num_gpus"):
            spec = dataclasses.replace(spec, device="cuda")
        remote = ray.remote(max_restarts=MAX_RESTARTS, max_task_retries=MAX_TASK_RETRIES)(SweepWorker)
        actors = [
            remote.options(**options).remote(spec, interventions, position_chunk, threads) for _ in range(workers)
        ]
        _wait_started(ray, actors)
        yield from _schedule(ray, actors, pending, advance)
    finally:
        for actor in actors:
            ray.kill(actor)
        if started:
            ray.shutdown()


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        ConfigError: Ray is not installed.
    """
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "backend='ray' needs Ray: pip install 'stages-of-inference[ray]', or use backend='local'"
        ) from None
    return ray


def join_ray(ray: Any, address: str | None) -> bool:
    """Join Ray unless this process already has; whether this call joined (and must leave at the end)."""
    if ray.is_initialized():
        return False
    if address is None:
        ray.init(include_dashboard=False)
    else:
        ray.init(address=address)  # a cluster's own settings (its dashboard) are not this process's to choose
    return True


def _placement(ray: Any, workers: int) -> tuple[dict[str, Any], int]:
    """Each actor's Ray resources and torch threads: one GPU each when there are GPUs, else a share of the CPUs."""
    resources = ray.cluster_resources()
    cpus, gpus = int(resources.get("CPU", 0)), int(resources.get("GPU", 0))
    if gpus:
        if workers > gpus:
            raise ConfigError(f"workers={workers} but the Ray cluster has {gpus} GPUs; pass --workers {gpus} or fewer")
        return {"num_gpus": 1, "num_cpus": 1}, 1
    if workers > cpus:
        raise ConfigError(f"workers={workers} but the Ray cluster has {cpus} CPUs; pass --workers {cpus} or fewer")
    share = cpus // workers
    return {"num_cpus": share}, share


def _wait_started(ray: Any, actors: Sequence[Any]) -> None:
    try:
        ray.get([actor.pid.remote() for actor in actors])
    except ray.exceptions.RayActorError as error:
        raise DistributedError(f"a Ray worker could not load the model: {error_cause(error)}") from None


def _schedule(
    ray: Any,
    actors: Sequence[Any],
    pending: Sequence[tuple[int, Int[Tensor, "_ pos"]]],
    advance: Callable[[float], Any],
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Keep :data:`IN_FLIGHT` batches on each actor; yield each shard as it arrives."""
    queue = deque(pending)
    tokens = {index: batch.numel() for index, batch in pending}
    running: dict[Any, Any] = {}

    def submit(actor: Any) -> None:
        index, batch = queue.popleft()
        running[actor.sweep.remote(index, batch)] = actor

    for _ in range(IN_FLIGHT):
        for actor in actors:
            if queue:
                submit(actor)
    while running:
        (ready,), _ = ray.wait(list(running), num_returns=1)
        actor = running.pop(ready)
        try:
            index, table = ray.get(ready)
        except ray.exceptions.RayActorError as error:
            raise DistributedError(
                f"a Ray worker died more than {MAX_RESTARTS} times ({error_cause(error)}); "
                "finished batches are saved when checkpoint_dir is given: run the same command again to resume"
            ) from None
        advance(tokens[index])
        yield index, table
        if queue:
            submit(actor)


def error_cause(error: BaseException) -> str:
    """The last non-empty line of a Ray error: the original exception's type and message."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
