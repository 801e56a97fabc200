"""Run every benchmark with its default arguments, then print one table of all figures.

``python -m benchmarks`` (what ``make bench`` runs): sweep throughput (both models, at
1,024 tokens = one batch of 4 windows, C on one window; Qwen2.5-Coder 0.5B too when
installed), logit-lens throughput (both models, 1,024 tokens, one thread), neuron moments
(both models, every layer, with the previous implementation and a float64 check of two
layers), shared forwards (the lens, attention, norms and CKA with and without sharing,
every installed model, 1,024 tokens), load time (both models, first and cached), sweep memory (Gemma 3 at 4,096 and
16,384 tokens, 4 interventions), one after another -- never two model processes at once.
About 2 hours on 2 cores (the shared-forwards rows about 23 minutes of it). Every
script takes larger budgets on its own (e.g. ``python -m benchmarks.sweep_throughput``
defaults to 4,096 tokens, ~3 hours for both models): the sweep works batch by batch,
so A and B scale linearly with the number of batches and their ratio does not change.

``python -m benchmarks --quick`` runs the same code at tiny budgets on SmolLM2 only, to
check that the scripts work; its figures are not comparable to the targets.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from benchmarks import lens_throughput, load_time, memory, neuron_throughput, shared_forwards, sweep_throughput
from benchmarks._common import Result, environment, print_table

STANDARD = {
    "sweep_throughput": ["--tokens", "1024", "--c-tokens", "256"],
    "lens_throughput": ["--tokens", "1024"],
    "neuron_throughput": [],
    "shared_forwards": ["--tokens", "1024"],
    "load_time": [],
    "memory": [],
}
QUICK = {
    "sweep_throughput": [
        "--model",
        "smollm2-135m",
        "--tokens",
        "512",
        "--c-tokens",
        "256",
        "--interventions",
        "2",
        "--matmul-size",
        "1024",
        "--matmul-seconds",
        "1",
    ],
    "lens_throughput": ["--model", "smollm2-135m", "--tokens", "256", "--matmul-size", "1024", "--matmul-seconds", "1"],
    "neuron_throughput": [
        "--model",
        "smollm2-135m",
        "--skip-previous",
        "--float64-layers",
        "0",
        "--matmul-size",
        "1024",
        "--matmul-seconds",
        "1",
    ],
    "shared_forwards": ["--model", "smollm2-135m", "--tokens", "512"],
    "load_time": ["--models", "smollm2-135m", "--cached-only"],
    "memory": ["--model", "smollm2-135m", "--tokens", "256", "512"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets on SmolLM2 (smoke test only)")
    args = parser.parse_args(argv)
    print(environment())
    results: list[Result] = []
    failed = []
    benchmarks = (
        ("sweep_throughput", sweep_throughput),
        ("lens_throughput", lens_throughput),
        ("neuron_throughput", neuron_throughput),
        ("shared_forwards", shared_forwards),
        ("load_time", load_time),
        ("memory", memory),
    )
    for name, module in benchmarks:
        try:
            results += module.main((QUICK if args.quick else STANDARD)[name])
        except Exception:  # one broken benchmark should not hide the others' figures
            traceback.print_exc()
            failed.append(name)
    print_table(results, "all benchmarks" + (" (QUICK: not comparable to the targets)" if args.quick else ""))
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
