"""Throughput and exactness of the neuron vocabulary moments (``neuron_vocab_moments``).

Per model, on every layer: the moments as shipped (the cosines ``W_out · W_U`` computed
by tiles of ``neuron_chunk`` neurons x 1,024 tokens, each tile's power sums reduced while
it is in the cache) against the previous implementation, kept here as the reference
(:func:`previous_vocab_moments`: the whole ``[neuron_chunk, d_vocab]`` product, then
standardised in several full-size passes). Printed:

* the **useful FLOP rate**: the analytic FLOPs of the cosines, ``layers x d_mlp x
  d_model x d_vocab x 2``, over the wall time, against the sustained fp32 matmul rate
  measured just before and just after (``sweep_throughput.matmul_rate``, the mean of
  the two); target useful/matmul >= 0.7;
* the previous implementation's wall time and rate, for the speed-up;
* **agreement**: max |delta| of every moment column between the two, and the neurons
  whose kind (prediction, suppression, other at kurtosis 10) differs (target 0);
* **exactness** on ``--float64-layers`` (the first and the last by default): max
  |delta| of every column of both implementations against a float64 computation from
  the same float32 weights, and the largest ratio of the shipped error to the bound
  written in ``analyses/neurons.py`` (:data:`MOMENT_RTOL`, :data:`MOMENT_ATOL`; target <= 1).

Usage::

    python -m benchmarks.neuron_throughput                     # both models
    python -m benchmarks.neuron_throughput --model smollm2-135m --threads 1
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from benchmarks._common import Result, at_least, at_most, info, on_each_model, print_table, stopwatch
from benchmarks.sweep_throughput import MATMUL_DRIFT, matmul_rate
from stages_of_inference.analyses.neurons import (
    MOMENT_ATOL,
    MOMENT_COLUMNS,
    MOMENT_RTOL,
    classify_neurons,
    neuron_vocab_moments,
    output_directions,
    unit_unembed,
)
from stages_of_inference.layers import n_layers_of, relative_depth
from stages_of_inference.models import load_model

DEFAULT_MODELS = ("smollm2-135m", "gemma-3-270m")
USEFUL_OVER_MATMUL_TARGET = 0.7
PREVIOUS_CHUNK = 256
"""The previous implementation's default ``neuron_chunk``."""


def standardized_moments(values: torch.Tensor) -> torch.Tensor:
    """Population mean, variance, skew ``E[z^3]`` and raw kurtosis ``E[z^4]`` of each row, in ``values``' dtype.

    The previous implementation's definition, verbatim: ``z`` is the row standardised
    by its own mean and population standard deviation.
    """
    mean = values.mean(dim=1, keepdim=True)
    centred = values - mean
    variance = centred.square().mean(dim=1, keepdim=True)
    z = centred / variance.sqrt()
    z_squared = z * z
    skew = (z_squared * z).mean(dim=1, keepdim=True)
    kurtosis = z_squared.square().mean(dim=1, keepdim=True)
    return torch.cat([mean, variance, skew, kurtosis], dim=1)


def _moments_by_full_rows(model, layers: Sequence[int], unit_W_U: torch.Tensor, dtype: torch.dtype) -> pd.DataFrame:
    """Moments of ``[PREVIOUS_CHUNK, d_vocab]`` cosine blocks computed whole, in ``dtype``."""
    n_layers = n_layers_of(model)
    frames = []
    for layer in layers:
        directions = output_directions(model, layer).to(dtype)
        unit_rows = directions / directions.norm(dim=1, keepdim=True).clamp_min(torch.finfo(dtype).tiny)
        moments = torch.cat(
            [
                standardized_moments(unit_rows[start : start + PREVIOUS_CHUNK] @ unit_W_U)
                for start in range(0, unit_rows.shape[0], PREVIOUS_CHUNK)
            ]
        )
        frame = pd.DataFrame(moments.double().numpy(), columns=list(MOMENT_COLUMNS))
        frame.insert(0, "relative_depth", relative_depth(layer, n_layers))
        frame.insert(0, "neuron", range(len(frame)))
        frame.insert(0, "layer", layer)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def previous_vocab_moments(model, layers: Sequence[int]) -> pd.DataFrame:
    """The implementation before the tiles: float32 ``[256, d_vocab]`` products, standardised whole."""
    with torch.inference_mode():
        return _moments_by_full_rows(model, layers, unit_unembed(model.W_U), torch.float32)


def float64_vocab_moments(model, layers: Sequence[int]) -> pd.DataFrame:
    """The same definition computed in float64 from the float32 weights (the exactness reference)."""
    with torch.inference_mode():
        W_U = model.W_U.detach().double()
        W_U = W_U - W_U.mean(dim=1, keepdim=True)
        unit_W_U = W_U / W_U.norm(dim=0, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
        return _moments_by_full_rows(model, layers, unit_W_U, torch.float64)


def useful_flops(model) -> float:
    """FLOPs of the cosine products: ``layers x d_mlp x d_model x d_vocab x 2``."""
    cfg = model.cfg
    return 2.0 * int(cfg.n_layers) * int(cfg.d_mlp) * int(cfg.d_model) * int(cfg.d_vocab)


def column_differences(first: pd.DataFrame, second: pd.DataFrame) -> dict[str, float]:
    """Max |delta| of every moment column, rows matched by (layer, neuron)."""
    a = first.set_index(["layer", "neuron"]).sort_index()
    b = second.set_index(["layer", "neuron"]).sort_index().loc[a.index]
    return {column: float((a[column] - b[column]).abs().max()) for column in MOMENT_COLUMNS}


def bound_ratio(got: pd.DataFrame, reference: pd.DataFrame) -> float:
    """The largest ``|got - reference| / (MOMENT_ATOL + MOMENT_RTOL * |reference|)`` over every moment."""
    a = got.set_index(["layer", "neuron"]).sort_index()
    b = reference.set_index(["layer", "neuron"]).sort_index().loc[a.index]
    columns = list(MOMENT_COLUMNS)
    error = (a[columns] - b[columns]).abs().to_numpy()
    return float(np.max(error / (MOMENT_ATOL + MOMENT_RTOL * b[columns].abs().to_numpy())))


def changed_kinds(first: pd.DataFrame, second: pd.DataFrame) -> int:
    """Neurons classified differently (prediction / suppression / other) by the two tables."""
    a = classify_neurons(first).set_index(["layer", "neuron"]).sort_index()["kind"]
    b = classify_neurons(second).set_index(["layer", "neuron"]).sort_index()["kind"].loc[a.index]
    return int((a != b).sum())


def _format(differences: dict[str, float]) -> str:
    return ", ".join(f"{column} {value:.3g}" for column, value in differences.items())


def run_model(name: str, args: argparse.Namespace) -> list[Result]:
    print(f"\n== neuron moments: {name} ==")
    model = load_model(name)
    n_layers = n_layers_of(model)
    layers = list(range(n_layers))
    flops = useful_flops(model)
    print(f"{n_layers} layers x {model.cfg.d_mlp} neurons, d_model {model.cfg.d_model}, d_vocab {model.cfg.d_vocab}")
    neuron_vocab_moments(model, layers=[0])  # warm-up

    rate_before = matmul_rate(args.matmul_size, args.matmul_seconds)
    gc.collect()
    with stopwatch() as time_new:
        shipped = neuron_vocab_moments(model)
    rate_after = matmul_rate(args.matmul_size, args.matmul_seconds)
    rate_matmul = (rate_before.sustained + rate_after.sustained) / 2
    ratio = flops / time_new[0] / rate_matmul
    print(f"tiled (shipped)      {time_new[0]:8.1f} s   {flops / time_new[0] / 1e9:6.1f} GFLOP/s")
    print(
        f"fp32 matmul {args.matmul_size}^3 just before / after: sustained {rate_before.sustained / 1e9:.1f} / "
        f"{rate_after.sustained / 1e9:.1f} GFLOP/s   useful/matmul = {ratio:.2f} "
        f"(target >= {USEFUL_OVER_MATMUL_TARGET:g})"
    )
    drift = max(rate_before.sustained, rate_after.sustained) / min(rate_before.sustained, rate_after.sustained)
    if drift > MATMUL_DRIFT:
        print(f"   the matmul rate moved by {drift - 1:.0%} during the measurement: the ratio is unreliable")
    results = [
        info(f"{name}: neuron moments, useful TFLOP", flops / 1e12),
        info(f"{name}: neuron moments wall time", time_new[0], "s"),
        info(f"{name}: neuron moments fp32 matmul rate (sustained)", rate_matmul / 1e9, "GFLOP/s"),
        at_least(f"{name}: neuron moments useful/matmul", ratio, USEFUL_OVER_MATMUL_TARGET),
    ]

    if not args.skip_previous:
        gc.collect()
        with stopwatch() as time_old:
            previous = previous_vocab_moments(model, layers)
        print(
            f"previous (whole rows) {time_old[0]:7.1f} s   {flops / time_old[0] / 1e9:6.1f} GFLOP/s   "
            f"speed-up {time_old[0] / time_new[0]:.2f}"
        )
        differences = column_differences(shipped, previous)
        changed = changed_kinds(shipped, previous)
        print(f"   max |shipped - previous|: {_format(differences)}; neurons of another kind: {changed}")
        results += [
            info(f"{name}: neuron moments speed-up over the previous", time_old[0] / time_new[0]),
            *(info(f"{name}: max |shipped - previous| {column}", value) for column, value in differences.items()),
            at_most(f"{name}: neurons whose kind changed", changed, 0),
        ]

    checked = sorted({n_layers + layer if layer < 0 else layer for layer in args.float64_layers})
    if checked:
        gc.collect()
        reference = float64_vocab_moments(model, checked)
        got = shipped[shipped["layer"].isin(checked)]
        shipped_error = column_differences(got, reference)
        ratio_to_bound = bound_ratio(got, reference)
        print(f"float64 check on layers {checked}:")
        print(f"   max |shipped - float64|:  {_format(shipped_error)}; error / bound = {ratio_to_bound:.3g}")
        results += [
            *(info(f"{name}: max |shipped - float64| {column}", value) for column, value in shipped_error.items()),
            at_most(f"{name}: shipped error / stated bound", ratio_to_bound, 1.0),
        ]
        if not args.skip_previous:
            previous_error = column_differences(previous[previous["layer"].isin(checked)], reference)
            print(f"   max |previous - float64|: {_format(previous_error)}")
            results += [
                info(f"{name}: max |previous - float64| {column}", value) for column, value in previous_error.items()
            ]
    del model
    gc.collect()
    return results


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.neuron_throughput", description=__doc__.split("\n")[0])
    p.add_argument("--model", nargs="+", default=list(DEFAULT_MODELS), help="embedded model name(s)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    p.add_argument(
        "--float64-layers",
        type=int,
        nargs="*",
        default=[0, -1],
        help="layers checked against float64 (negative counts from the end; none to skip)",
    )
    p.add_argument("--skip-previous", action="store_true", help="do not run the previous implementation")
    p.add_argument("--matmul-size", type=int, default=2048)
    p.add_argument("--matmul-seconds", type=float, default=10.0)
    return p


def main(argv: Sequence[str] | None = None) -> list[Result]:
    args = parser().parse_args(argv)
    results = on_each_model(lambda name: run_model(name, args), args.model, args.threads)
    print_table(results, "neuron moments")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
