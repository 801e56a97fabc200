"""What sharing one forward per batch between the lens, attention, norms and CKA saves.

On identical tokens (``load_corpus("prose", model, tokens, seq_len=256, seed=0)``, the
reproduction's windows) this runs the four experiments that read activations, their
``compute`` exactly as the reproduction calls it (the lens with its final-scale shortcut
on the first 1,024 tokens, attention by layer and by head, norms, CKA), twice side by side:

* **alone** -- each analysis runs its own forwards (``--shared-gb 0``): six passes over
  the windows (the shortcut's over its first 1,024 tokens);
* **shared** -- inside ``activations.shared_forwards`` with the union of the hooks they
  declare, as the runner opens it: one forward per batch for all of them;

in the order alone, shared, shared, alone, and averages each way's two times.

It prints both wall times, the time saved, the forwards each ran (both count the lens's
prompt heatmap, one forward of a prompt that is not the windows), the memory the shared
activations held, and the max |delta| over every table (0: sharing changes no number).
The time of one forward pass over the windows with the union of the hooks is printed too:
the saving is at most the other passes' forward time, so on Gemma 3, whose lens is
decoding-bound, it is a small share of the four experiments, and on Qwen2.5-Coder, whose
blocks outweigh its unembedding, a large one.

Usage::

    python -m benchmarks.shared_forwards                        # every installed model, 1,024 tokens
    python -m benchmarks.shared_forwards --model qwen2.5-coder-0.5b --tokens 4096
"""

from __future__ import annotations

import argparse
import gc
import sys
from typing import Any

import pandas as pd
import torch

from benchmarks._common import Result, at_most, info, on_each_model, print_table, stopwatch
from benchmarks.sweep_throughput import DEFAULT_MODELS
from stages_of_inference.activations import cached_activations, shared_forwards
from stages_of_inference.corpus import load_corpus
from stages_of_inference.experiments.attention import EXPERIMENT as ATTENTION
from stages_of_inference.experiments.cka import EXPERIMENT as CKA
from stages_of_inference.experiments.logit_lens import EXPERIMENT as LOGIT_LENS
from stages_of_inference.experiments.norms import EXPERIMENT as NORMS
from stages_of_inference.experiments.protocol import Experiment
from stages_of_inference.experiments.reproduce import ReproduceConfig
from stages_of_inference.models import load_model

EXPERIMENTS: tuple[Experiment[Any], ...] = (LOGIT_LENS, ATTENTION, NORMS, CKA)
ORDER = (False, True, True, False)
"""Alone, shared, shared, alone: each way runs first once, so drift and warm-up weigh on both alike."""
SEQ_LEN = 256


def run_all(model, tokens, config: ReproduceConfig) -> dict[str, pd.DataFrame]:
    """Every table of the four experiments, computed as the runner computes them."""
    tables: dict[str, pd.DataFrame] = {}
    for experiment in EXPERIMENTS:
        tables |= experiment.compute(model, tokens, experiment.config_for(config, model=config.model)).tables
    return tables


def max_table_difference(first: dict[str, pd.DataFrame], second: dict[str, pd.DataFrame]) -> float:
    """Max |delta| over every numeric cell of every table (inf if a table or its shape differs)."""
    worst = 0.0
    for name, table in first.items():
        other = second.get(name)
        if other is None or other.shape != table.shape:
            return float("inf")
        numeric = table.select_dtypes("number").columns
        delta = abs(table[numeric].to_numpy(dtype=float) - other[numeric].to_numpy(dtype=float))
        worst = max(worst, float(delta.max()) if delta.size else 0.0)
        labels = [column for column in table.columns if column not in numeric]
        if not table[labels].equals(other[labels]):
            return float("inf")
    return worst


def run_model(name: str, args: argparse.Namespace) -> list[Result]:
    print(f"\n== shared forwards: {name} ==")
    model = load_model(name)
    tokens = load_corpus("prose", model, args.tokens, seq_len=SEQ_LEN, seed=0)
    config = ReproduceConfig(model=name, tokens=args.tokens, seq_len=SEQ_LEN)
    union = sorted(
        {
            hook
            for experiment in EXPERIMENTS
            if experiment.activations is not None
            for hook in experiment.activations(model, experiment.config_for(config, model=name))
        }
    )
    calls: list[str] = []
    spy = [("hook_embed", lambda tensor, hook: calls.append(hook.name))]
    with torch.inference_mode():
        model(tokens[:1])  # warm-up
    budget = int(args.shared_gb * 2**30)
    times: dict[bool, list[float]] = {False: [], True: []}
    forwards: dict[bool, int] = {}
    tables: dict[bool, dict[str, pd.DataFrame]] = {}
    with model.hooks(fwd_hooks=spy):
        with stopwatch() as one_pass:
            for _ in cached_activations(model, tokens, union, config.batch_size):
                pass
        for sharing in ORDER:
            calls.clear()
            gc.collect()
            with stopwatch() as elapsed:
                if sharing:
                    with shared_forwards(
                        model, tokens, union, batch_size=config.batch_size, budget_bytes=budget
                    ) as shared:
                        tables[sharing] = run_all(model, tokens, config)
                else:
                    tables[sharing] = run_all(model, tokens, config)
            times[sharing].append(elapsed[0])
            forwards[sharing] = len(calls)
    alone_time, shared_time = (sum(times[sharing]) / len(times[sharing]) for sharing in (False, True))
    saved = alone_time - shared_time
    print(
        f"{tokens.shape[0]} windows: alone {times[False]} s ({forwards[False]} forwards), shared "
        f"{times[True]} s ({forwards[True]} forwards), one pass with every hook {one_pass[0]:.1f} s"
    )
    results = [
        info(f"{name}: four experiments, each its own forwards", alone_time, "s"),
        info(f"{name}: four experiments, shared forwards", shared_time, "s"),
        info(f"{name}: time saved", saved, "s"),
        info(f"{name}: time saved / alone", saved / alone_time),
        info(f"{name}: one forward pass with every hook", one_pass[0], "s"),
        info(
            f"{name}: forwards saved x one pass (the most sharing can save)",
            (forwards[False] - forwards[True]) * one_pass[0],
            "s",
        ),
        info(f"{name}: forwards alone / shared", forwards[False] / max(forwards[True], 1), "x"),
        info(f"{name}: shared activations kept at most", shared.peak_bytes / 2**30, "GiB"),
        at_most(
            f"{name}: max |d| over every table, shared vs alone", max_table_difference(tables[False], tables[True]), 0.0
        ),
    ]
    del model
    gc.collect()
    return results


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shared_forwards", description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", help="embedded model (repeatable; default: every installed one)")
    parser.add_argument("--tokens", type=int, default=1024, help="token budget (windows of 256)")
    parser.add_argument("--shared-gb", type=float, default=4.0, help="memory budget of the shared activations")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    args = parser.parse_args(argv)
    return on_each_model(lambda name: run_model(name, args), args.model or DEFAULT_MODELS, args.threads)


if __name__ == "__main__":
    print_table(main(sys.argv[1:]), "shared forwards")
