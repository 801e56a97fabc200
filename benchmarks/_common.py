"""Shared helpers of the benchmarks: result rows, the summary table, timing."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # embedded models only: never wait on the hub


def spread_interventions(n_layers: int, k: int | None):
    """``k`` of the default interventions, evenly spread over the list (all when ``k`` is None).

    The default list is every deletion, then every adjacent swap, so a spread subset
    has early and late deletions and swaps: the cheapest and the costliest blocks runs.
    """
    from stages_of_inference.interventions import default_interventions

    chosen = default_interventions(n_layers)
    if k is None or k >= len(chosen):
        return chosen
    if k < 1:
        raise ValueError(f"--interventions must be at least 1, not {k}")
    step = (len(chosen) - 1) / max(1, k - 1)
    return [chosen[round(i * step)] for i in range(k)]


@dataclass(frozen=True)
class Result:
    """One figure of a benchmark, with its target."""

    figure: str
    measured: float
    unit: str = ""
    target: str = "(info)"
    """Human-readable target, e.g. ">= 1.4"; "(info)" when the figure has none."""
    met: bool | None = None
    """None when the figure has no target."""

    def measured_text(self) -> str:
        if isinstance(self.measured, float) and math.isnan(self.measured):
            return "n/a"
        value = self.measured
        if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e5):
            text = f"{value:.3g}"
        else:
            text = f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:.1f}"
        return f"{text} {self.unit}".strip()

    def met_text(self) -> str:
        return "-" if self.met is None else ("yes" if self.met else "NO")


def at_least(figure: str, measured: float, target: float, unit: str = "") -> Result:
    met = None if math.isnan(measured) else measured >= target
    return Result(figure, measured, unit, f">= {target:g}", met)


def at_most(figure: str, measured: float, target: float, unit: str = "") -> Result:
    met = None if math.isnan(measured) else measured <= target
    return Result(figure, measured, unit, f"<= {target:g} {unit}".strip(), met)


def info(figure: str, measured: float, unit: str = "") -> Result:
    return Result(figure, measured, unit)


def print_table(results: Sequence[Result], title: str = "results") -> None:
    """Print ``figure | measured | target | met`` as an aligned text table."""
    header = ("figure", "measured", "target", "met")
    rows = [(r.figure, r.measured_text(), r.target, r.met_text()) for r in results]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    line = "  ".join("-" * w for w in widths)
    print(f"\n== {title} ==")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for row in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)))


def on_each_model(
    run_model: Callable[[str], list[Result]], models: Sequence[str], threads: int | None = None
) -> list[Result]:
    """``run_model`` on each model in turn with ``threads`` torch threads (None: torch's own), restored after.

    Restoring them lets the next benchmark of ``python -m benchmarks`` run as it would alone.
    """
    import torch

    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    print(environment())
    results: list[Result] = []
    try:
        for name in models:
            results += run_model(name)
    finally:
        torch.set_num_threads(previous)
    return results


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as t: ...`` then ``t[0]`` is the elapsed wall time in seconds."""
    elapsed = [math.nan]
    start = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed[0] = time.perf_counter() - start


def environment() -> str:
    """Threads and load of the machine, printed with every measurement (timings are noisy)."""
    import torch

    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    return (
        f"torch {torch.__version__}, {torch.get_num_threads()} threads "
        f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}), "
        f"{os.cpu_count()} CPUs, load average {load}"
    )
