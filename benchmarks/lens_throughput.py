"""Throughput and exactness of the logit lens against the machine's matmul rate and two references.

On identical tokens (``load_corpus("python-docs", model, tokens, seq_len=256, seed=0)``) this times:

* **lens** -- ``logit_lens(model, tokens, progress=False)`` as shipped: each point's
  residual scored from vocabulary tiles (``scoring.chunks``), never writing the
  ``[rows, d_vocab]`` logits out whole;
* **full** -- the previous implementation, kept here only as the reference: each
  point's full float32 logits (the bridge's norm, then the tiled unembedding copied
  into a logits buffer), scored by ``compare_predictions`` and ``true_token_rank``
  against the forward pass's own logits;

and, with ``--float64``, computes the same table in float64 from the same float32
normed residuals (the lens's own norm): logits, softmax, KL, entropy, loss and rank
all in double precision. It prints the max |delta| of every table column of the lens
against full and against float64.

The lens's **useful FLOPs** are analytic: the model's blocks plus one unembedding per
point and scored token, ``points x tokens x d_model x d_vocab x 2`` (the norm is
negligible); the last point's unembedding is the forward pass's own head, as
``sweep_throughput.useful_flops`` counts the baseline, so the forward's logits are not
counted twice (the lens decodes the last point once, as its reference).
They are divided by the lens's wall time and compared with the sustained fp32 matmul
rate measured just before and just after it (``sweep_throughput.matmul_rate``).

Target: useful/matmul >= 0.7.

Usage::

    python -m benchmarks.lens_throughput                                  # both models, 1,024 tokens
    python -m benchmarks.lens_throughput --model smollm2-135m --tokens 512 --float64
"""

from __future__ import annotations

import argparse
import gc
import sys

import pandas as pd
import torch

from benchmarks._common import Result, at_least, info, on_each_model, print_table, stopwatch
from benchmarks.sweep_throughput import matmul_rate, useful_flops
from stages_of_inference.activations import DEFAULT_BATCH_SIZE, cached_batches
from stages_of_inference.analyses.logit_lens import (
    METRICS,
    lens_input,
    lens_logits,
    lens_table,
    logit_lens,
    residual_hook_names,
)
from stages_of_inference.corpus import load_corpus
from stages_of_inference.layers import n_layers_of
from stages_of_inference.models import load_model
from stages_of_inference.scoring.metrics import LN2, Distribution, compare_predictions, true_token_rank
from stages_of_inference.scoring.workspace import Workspace, chunk_rows
from stages_of_inference.tokens import prediction_targets, scored_positions

DEFAULT_MODELS = ("smollm2-135m", "gemma-3-270m")
SEQ_LEN = 256


def reference_lens(model, tokens: torch.Tensor, batch_size: int, *, float64: bool) -> pd.DataFrame:
    """The lens table by full logits: the previous float32 implementation, or float64 throughout."""
    names = residual_hook_names(n_layers_of(model))
    sums = torch.zeros(len(names), len(METRICS), dtype=torch.float64)
    workspace = Workspace()
    n_tokens = 0
    for batch, logits, cache in cached_batches(model, tokens, names, batch_size):
        positions = scored_positions(batch.shape[1])
        targets = prediction_targets(batch).flatten()
        with torch.inference_mode():
            residuals = [cache[name][:, positions].flatten(0, 1) for name in names]
            final_logits = logits[:, positions].flatten(0, 1)
            for start in range(0, targets.shape[0], chunk_rows(int(model.cfg.d_vocab))):
                rows = slice(start, start + chunk_rows(int(model.cfg.d_vocab)))
                if float64:
                    final = _float64_logits(model, residuals[-1][rows])
                else:
                    final_distribution = Distribution.from_logits(final_logits[rows])
                for point, resid in enumerate(residuals):
                    if float64:
                        values = _float64_metrics(final, _float64_logits(model, resid[rows]), targets[rows])
                    else:
                        values = _float32_metrics(model, final_distribution, resid[rows], targets[rows], workspace)
                    sums[point] += values.sum(0)
        n_tokens += targets.numel()
    return lens_table(sums / n_tokens, n_tokens)


def _float32_metrics(model, final: Distribution, resid, targets, workspace: Workspace) -> torch.Tensor:
    logits = lens_logits(model, resid, workspace=workspace)
    compared = compare_predictions(final, logits, targets, workspace=workspace)
    rank = true_token_rank(logits, targets, out=workspace.like("above_target", logits, torch.bool))
    columns = [compared[n] for n in ("entropy_bits", "kl", "loss", "correct")]
    return torch.stack([*columns, rank.float(), compared["agreement"]], dim=-1).double()


def _float64_logits(model, resid: torch.Tensor) -> torch.Tensor:
    linear = model.unembed.original_component
    normed = lens_input(model, resid).double()
    logits = normed @ linear.weight.double().t()
    if linear.bias is not None:
        logits += linear.bias.double()
    return model.adapter.apply_output_logits_transform(logits)


def _float64_metrics(final: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    log_p, log_q = final.log_softmax(-1), logits.log_softmax(-1)
    entropy = -(log_q.exp() * log_q).sum(-1) / LN2
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)
    loss = -log_q.gather(-1, targets.unsqueeze(-1))[:, 0]
    top1 = logits.argmax(-1)
    rank = true_token_rank(logits, targets).double()
    return torch.stack(
        [entropy, kl, loss, (top1 == targets).double(), rank, (top1 == final.argmax(-1)).double()], dim=-1
    )


def column_differences(first: pd.DataFrame, second: pd.DataFrame) -> dict[str, float]:
    """Max |delta| over the points of every :data:`METRICS` column."""
    return {column: float((first[column] - second[column]).abs().max()) for column in METRICS}


def run_model(name: str, args: argparse.Namespace) -> list[Result]:
    print(f"\n== logit lens throughput: {name} ==")
    model = load_model(name)
    tokens = load_corpus("python-docs", model, args.tokens, seq_len=SEQ_LEN, seed=0)
    n_windows, n_points = tokens.shape[0], n_layers_of(model) + 1
    scored = n_windows * (SEQ_LEN - 2)
    d_model, d_vocab = int(model.cfg.d_model), int(model.cfg.d_vocab)
    flops = useful_flops(model, n_windows, SEQ_LEN, []) + (n_points - 1) * scored * d_model * d_vocab * 2
    print(f"{n_windows} windows x {SEQ_LEN} tokens, {n_points} points, {flops / 1e12:.2f} TFLOP useful")
    with torch.inference_mode():
        model(tokens[:1])  # warm-up
    rate_before = matmul_rate(args.matmul_size, args.matmul_seconds)
    gc.collect()
    with stopwatch() as lens_time:
        table = logit_lens(model, tokens, batch_size=args.batch_size, progress=False)
    rate_after = matmul_rate(args.matmul_size, args.matmul_seconds)
    with stopwatch() as full_time:
        full = reference_lens(model, tokens, args.batch_size, float64=False)
    sustained = (rate_before.sustained + rate_after.sustained) / 2
    drift = abs(rate_before.sustained - rate_after.sustained) / sustained
    useful_rate = flops / lens_time[0]
    print(f"lens {lens_time[0]:.1f} s, full logits {full_time[0]:.1f} s")
    print(
        f"matmul {rate_before.sustained / 1e9:.1f} / {rate_after.sustained / 1e9:.1f} GFLOP/s (drift {drift:.0%}),"
        f" lens {useful_rate / 1e9:.1f} GFLOP/s useful"
    )
    results = [
        info(f"{name}: lens wall time", lens_time[0], "s"),
        info(f"{name}: full-logits lens / lens", full_time[0] / lens_time[0], "x"),
        at_least(
            f"{name}: lens useful/matmul" + (" (drift > 20 %)" if drift > 0.2 else ""), useful_rate / sustained, 0.7
        ),
    ]
    for column, delta in column_differences(table, full).items():
        results.append(info(f"{name}: lens vs full logits, max |d| {column}", delta))
    if args.float64:
        exact = reference_lens(model, tokens, args.batch_size, float64=True)
        for label, other in (("lens", table), ("full logits", full)):
            for column, delta in column_differences(other, exact).items():
                results.append(info(f"{name}: {label} vs float64, max |d| {column}", delta))
    del model
    gc.collect()
    return results


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lens_throughput", description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", help="embedded model (repeatable; default: both)")
    parser.add_argument("--tokens", type=int, default=1024, help="token budget (windows of 256)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--float64", action="store_true", help="also compare with a float64 lens (slow)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: one core of a shared machine)")
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--matmul-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    return on_each_model(lambda name: run_model(name, args), args.model or DEFAULT_MODELS, args.threads)


if __name__ == "__main__":
    print_table(main(sys.argv[1:]), "logit lens throughput")
