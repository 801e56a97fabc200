"""The robustness sweep in bfloat16 against float32: how far each metric moves, and the wall-time ratio.

``python -m benchmarks.precision --models smollm2-135m gemma-3-270m --tokens 1024``
loads each model twice (float32, then bfloat16: processed in float32, then cast), runs
the full default sweep (every deletion and adjacent swap) on the same windows in each,
one after the other in one process, and prints per summary column the max and mean
over interventions of ``|bfloat16 - float32|``, next to the mean ``|float32|`` for
scale. ``docs/precision.md`` quotes its output.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from benchmarks._common import environment

COLUMNS = (
    "kl",
    "top1_agreement",
    "accuracy",
    "relative_accuracy",
    "loss",
    "entropy_bits",
    "baseline_accuracy",
    "baseline_loss",
    "baseline_entropy_bits",
)
"""The sweep's summary columns compared (their confidence bounds move with them)."""


def compare(model_name: str, tokens: int, seq_len: int) -> tuple[pd.DataFrame, dict[str, float]]:
    """The per-column differences of one model's sweep, and the wall seconds of each dtype."""
    from stages_of_inference import load_corpus, load_model, robustness_sweep

    tables, seconds = {}, {}
    windows = None
    for dtype in ("float32", "bfloat16"):
        model = load_model(model_name, dtype=dtype)
        if windows is None:
            windows = load_corpus("embedded", model, n_tokens=tokens, seq_len=seq_len, seed=0)
        began = time.perf_counter()
        tables[dtype] = robustness_sweep(model, windows, progress=False, n_bootstrap=0)
        seconds[dtype] = time.perf_counter() - began
        del model
    reference, reduced = (tables[d].set_index("label") for d in ("float32", "bfloat16"))
    difference = (reduced[list(COLUMNS)] - reference[list(COLUMNS)]).abs()
    rows = pd.DataFrame(
        {
            "model": model_name,
            "column": COLUMNS,
            "max_abs_diff": [difference[c].max() for c in COLUMNS],
            "mean_abs_diff": [difference[c].mean() for c in COLUMNS],
            "mean_abs_float32": [reference[c].abs().mean() for c in COLUMNS],
        }
    )
    return rows, seconds


def _markdown(rows: pd.DataFrame) -> str:
    """The rows as a Markdown table, numbers to 3 significant digits."""
    cells = [[f"{v:.3g}" if isinstance(v, float) else str(v) for v in row] for row in rows.itertuples(index=False)]
    lines = ["| " + " | ".join(rows.columns) + " |", "|" + "---|" * len(rows.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.precision", description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma-3-270m"])
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--seq-len", type=int, default=256)
    args = parser.parse_args(argv)
    print(environment())
    for name in args.models:
        rows, seconds = compare(name, args.tokens, args.seq_len)
        print(_markdown(rows))
        ratio = seconds["bfloat16"] / seconds["float32"]
        print(
            f"{name}: sweep wall time float32 {seconds['float32']:.1f} s, bfloat16 {seconds['bfloat16']:.1f} s "
            f"(ratio {ratio:.2f})",
            flush=True,
        )


if __name__ == "__main__":
    main()
