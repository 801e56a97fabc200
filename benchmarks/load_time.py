"""Load time of each embedded model: first load (dequantize and cache) and cached load.

For each model, two fresh Python subprocesses share a new, empty temporary
``STAGES_OF_INFERENCE_CACHE``: the first load dequantizes the GGUF file (for Gemma 3 it
also assembles the GGUF from its package) and writes the float32 safetensors copy; the
second load reads that copy. Only the ``load_model`` call is timed inside each
subprocess (imports of torch, transformers and TransformerLens are not included).
The temporary cache is deleted afterwards; the user's own cache is never touched.

Target: cached load <= 5 s (the first load has no target; it is printed for reference).

Usage::

    python -m benchmarks.load_time
    python -m benchmarks.load_time --models smollm2-135m
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence

from benchmarks._common import Result, at_most, environment, info, print_table

DEFAULT_MODELS = ("smollm2-135m", "gemma-3-270m")
CACHED_TARGET_S = 5.0

_CHILD = """
import json, os, sys, time
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from stages_of_inference.models import load_model
start = time.perf_counter()
model = load_model(sys.argv[1])
elapsed = time.perf_counter() - start
print("BENCHMARK-RESULT " + json.dumps({"seconds": elapsed, "layers": int(model.cfg.n_layers)}))
"""


def timed_load(name: str, cache: str) -> float:
    """Seconds of one ``load_model(name)`` in a fresh subprocess using ``cache``."""
    env = {**os.environ, "STAGES_OF_INFERENCE_CACHE": cache, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", _CHILD, name], env=env, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("BENCHMARK-RESULT "):
            return float(json.loads(line.removeprefix("BENCHMARK-RESULT "))["seconds"])
    raise RuntimeError(f"loading {name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def main(argv: Sequence[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load_time", description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help="embedded model names")
    parser.add_argument(
        "--cached-only",
        action="store_true",
        help="skip the (slow) first load: time a cached load from the user's own cache",
    )
    args = parser.parse_args(argv)
    print("\n== load time ==")
    print(environment())
    results: list[Result] = []
    for name in args.models:
        if args.cached_only:
            from stages_of_inference.models import cache_dir

            cached = timed_load(name, str(cache_dir()))
            print(f"{name:14s} cached load (user cache) {cached:6.1f} s   (target <= {CACHED_TARGET_S:g} s)")
        else:
            with tempfile.TemporaryDirectory(prefix="soi-bench-cache-") as cache:
                first = timed_load(name, cache)
                cached = timed_load(name, cache)
            print(
                f"{name:14s} first load {first:6.1f} s   cached load {cached:6.1f} s   "
                f"(target cached <= {CACHED_TARGET_S:g} s)"
            )
            results.append(info(f"{name}: first load", first, "s"))
        results.append(at_most(f"{name}: cached load", cached, CACHED_TARGET_S, "s"))
    print_table(results, "load time")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
