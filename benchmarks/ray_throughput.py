"""Throughput of the robustness sweep on Ray (1 and 2 workers) against the local sweep, side by side.

On identical tokens (``load_corpus("embedded", model, tokens, seq_len=256, seed=0)``)
and the same interventions (``--interventions K`` spread over the default list), one
process times, one after the other:

* **local** -- ``robustness_sweep(model, tokens, interventions)``;
* **ray 1** -- the same with ``backend="ray", workers=1`` (the worker gets every CPU
  of the Ray instance, and as many torch threads as the local run has);
* **ray 2** -- ``workers=2`` (half the CPUs each).

The Ray instance is started once, before the timings (``ray.init(num_cpus=N)``, N the
CPUs torch uses here); each Ray time includes starting its workers, each of which
loads the model. That fixed cost is timed on its own too (a Ray sweep of one window
and one intervention), so the steady-state overhead is the Ray time minus it. Every
table is checked to equal the local one exactly.

Targets: ray 1 / local wall time <= 1.10 once the workers' start is subtracted.

Usage::

    python -m benchmarks.ray_throughput                            # SmolLM2, 4096 tokens, 12 interventions
    python -m benchmarks.ray_throughput --tokens 8192 --interventions all
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import pandas as pd
import torch

from benchmarks._common import Result, at_most, environment, info, print_table, spread_interventions, stopwatch
from stages_of_inference.corpus import load_corpus
from stages_of_inference.layers import n_layers_of
from stages_of_inference.models import load_model
from stages_of_inference.sweep import robustness_sweep

OVERHEAD_TARGET = 1.10


def main(argv: Sequence[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ray_throughput", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--interventions", default="12", metavar="K", help="K spread interventions, or 'all'")
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args(argv)
    import ray

    print(f"\n== Ray throughput: {args.model} ==")
    print(environment())
    model = load_model(args.model)
    tokens = load_corpus("embedded", model, args.tokens, seq_len=256, seed=0)
    k = None if args.interventions == "all" else int(args.interventions)
    interventions = spread_interventions(n_layers_of(model), k)
    cpus = torch.get_num_threads()
    print(f"{tokens.shape[0]} windows x 256 tokens, {len(interventions)} interventions, batch {args.batch_size}")
    with torch.inference_mode():
        model(tokens[:1])  # warm-up: lazy initialisation is not part of the local time
    ray.init(num_cpus=cpus, include_dashboard=False)
    try:
        sweep = lambda t, chosen, **backend: robustness_sweep(
            model, t, chosen, batch_size=args.batch_size, progress=False, **backend
        )
        with stopwatch() as start_up:
            sweep(tokens[:1], interventions[:1], backend="ray", workers=1)
        with stopwatch() as local:
            table = sweep(tokens, interventions)
        times = {"local": local[0]}
        for workers in (1, 2):
            with stopwatch() as elapsed:
                other = sweep(tokens, interventions, backend="ray", workers=workers)
            pd.testing.assert_frame_equal(other, table, check_exact=True)
            times[f"ray {workers}"] = elapsed[0]
    finally:
        ray.shutdown()
    n_tokens = tokens.numel()
    for name, seconds in times.items():
        print(f"{name:8s} {seconds:8.1f} s  {n_tokens / seconds:8.0f} tokens/s (tables identical)")
    print(f"Ray worker start (one window, one intervention): {start_up[0]:.1f} s")
    steady = (times["ray 1"] - start_up[0]) / times["local"]
    return [
        info(f"{args.model}: local tokens/s", n_tokens / times["local"], "tok/s"),
        info(f"{args.model}: ray 1 worker / local wall time", times["ray 1"] / times["local"]),
        at_most(f"{args.model}: ray 1 worker / local, worker start subtracted", steady, OVERHEAD_TARGET),
        info(f"{args.model}: local / ray 2 workers wall time (speed-up)", times["local"] / times["ray 2"]),
        info(f"{args.model}: Ray worker start", start_up[0], "s"),
    ]


if __name__ == "__main__":
    print_table(main(), "Ray throughput")
