"""Peak memory of the robustness sweep: does it stay flat as the token budget grows?

For each budget, a fresh Python subprocess loads the model, tokenizes the ``python-docs``
corpus (``seq_len=256, seed=0``) and runs ``robustness_sweep(model, tokens,
progress=False)``; it reports its peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``), once after loading the model and once
at the end. The sweep streams the unembedding over chunks of tokens and keeps only
per-sequence sums, so its peak should not grow with the budget.

The sweep works batch by batch (4 windows), so its peak is reached within one batch
and is the same for every budget; the number of interventions only adds their final
residuals of one batch (``batch x seq_len x d_model`` floats each: 2.6 MB on Gemma 3).
By default the sweep therefore runs 4 interventions spread over the default list
(deletions of early and middle layers, two swaps), which keeps the 16,384-token run to
minutes instead of the 1.5 hours of all 35; ``--interventions all`` runs every one.

Targets (Gemma 3 270M, 4,096 and 16,384 tokens): the two peaks within 10 % of each
other, and each <= 6 GB.

Usage::

    python -m benchmarks.memory                                    # Gemma 3, 4096 and 16384 tokens
    python -m benchmarks.memory --interventions all                # every deletion and swap (slow)
    python -m benchmarks.memory --model smollm2-135m --tokens 512 1024   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks._common import Result, at_most, environment, info, print_table

DEFAULT_MODEL = "gemma-3-270m"
DEFAULT_TOKENS = (4096, 16384)
DEFAULT_INTERVENTIONS = 4
PEAK_TARGET_GB = 6.0
RATIO_TOLERANCE = 0.10
GB = 1e9

_CHILD = """
import json, os, resource, sys, time
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from stages_of_inference.corpus import load_corpus
from stages_of_inference.models import load_model
from stages_of_inference.layers import n_layers_of
from stages_of_inference.sweep import robustness_sweep
from benchmarks._common import spread_interventions

def peak_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux

model = load_model(sys.argv[1])
after_load = peak_bytes()
tokens = load_corpus("python-docs", model, int(sys.argv[2]), seq_len=256, seed=0)
start = time.perf_counter()
k = None if sys.argv[3] == "all" else int(sys.argv[3])
table = robustness_sweep(model, tokens, spread_interventions(n_layers_of(model), k), progress=False)
seconds = time.perf_counter() - start
print("BENCHMARK-RESULT " + json.dumps(
    {"peak": peak_bytes(), "after_load": after_load, "seconds": seconds, "rows": len(table)}
))
"""


def warm_cache(model: str) -> None:
    """Load the model once in a throwaway process, so every measured run loads from the same cache.

    The first compatibility-mode load processes the weights and caches them; later
    loads restore them and peak far lower (SmolLM2: 2.6 GB against 0.55 GB). Without
    this, the first budget measured would carry the processing's peak and the second not.
    """
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    code = "import sys; from stages_of_inference.models import load_model; load_model(sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, model], env=env, capture_output=True, check=True)


def sweep_peak(model: str, tokens: int, interventions: str) -> dict[str, float]:
    """Peak RSS (bytes) of a fresh process running the sweep, plus its peak after loading."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, model, str(tokens), interventions],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCHMARK-RESULT "):
            return json.loads(line.removeprefix("BENCHMARK-RESULT "))
    raise RuntimeError(
        f"the sweep of {model} at {tokens} tokens failed (exit {done.returncode}):\n{done.stderr[-3000:]}"
    )


def main(argv: Sequence[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument(
        "--tokens",
        nargs=2,
        type=int,
        default=list(DEFAULT_TOKENS),
        metavar=("SMALL", "LARGE"),
        help="the two token budgets (default 4096 16384)",
    )
    parser.add_argument(
        "--interventions",
        default=str(DEFAULT_INTERVENTIONS),
        metavar="K",
        help=f"K interventions spread over the default list, or 'all' (default {DEFAULT_INTERVENTIONS})",
    )
    args = parser.parse_args(argv)
    print(f"\n== sweep memory: {args.model} ==")
    print(environment())
    warm_cache(args.model)
    peaks = []
    results: list[Result] = []
    for tokens in args.tokens:
        run = sweep_peak(args.model, tokens, args.interventions)
        peaks.append(run["peak"])
        print(
            f"{tokens:6d} tokens: peak RSS {run['peak'] / GB:.2f} GB (after loading the model "
            f"{run['after_load'] / GB:.2f} GB; sweep of {run['rows']} interventions {run['seconds']:.1f} s)"
        )
        results.append(at_most(f"{args.model}: peak RSS at {tokens} tokens", run["peak"] / GB, PEAK_TARGET_GB, "GB"))
        results.append(
            info(
                f"{args.model}: sweep growth over load at {tokens} tokens", (run["peak"] - run["after_load"]) / GB, "GB"
            )
        )
    ratio = peaks[1] / peaks[0]
    met = abs(ratio - 1) <= RATIO_TOLERANCE
    print(
        f"ratio {args.tokens[1]} / {args.tokens[0]} tokens: {ratio:.3f} "
        f"(target within {RATIO_TOLERANCE:.0%}: {1 - RATIO_TOLERANCE:.2f}..{1 + RATIO_TOLERANCE:.2f}); "
        f"each peak <= {PEAK_TARGET_GB:g} GB"
    )
    results.append(
        Result(
            f"{args.model}: peak ratio {args.tokens[1]}/{args.tokens[0]}",
            ratio,
            "",
            f"{1 - RATIO_TOLERANCE:.2f}..{1 + RATIO_TOLERANCE:.2f}",
            met,
        )
    )
    print_table(results, "sweep memory")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
