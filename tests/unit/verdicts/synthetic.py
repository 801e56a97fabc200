"""Synthetic evidence where the right verdict is known: sweep shards, lens, neuron and attention tables."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from stages_of_inference.verdicts import ModelEvidence

TOKENS = 100
"""Scored tokens of every synthetic sequence."""


def shard_rows(
    delete_kl: Sequence[float],
    swap_kl: Sequence[float],
    *,
    retained: float = 0.85,
    n_sequences: int = 40,
    noise: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    """Per-sequence sums of a sweep: each intervention's mean KL per token as given, plus per-sequence noise.

    Every sequence has :data:`TOKENS` tokens, 40 of them correct originally and
    ``40 * retained`` (± noise) under each intervention.
    """
    rng = np.random.default_rng(seed)
    rows = []
    kinds = [("delete", layer, kl) for layer, kl in enumerate(delete_kl)]
    kinds += [("swap", layer, kl) for layer, kl in enumerate(swap_kl)]
    for kind, layer, kl in kinds:
        for sequence in range(n_sequences):
            per_token = max(kl + noise * rng.standard_normal(), 0.0)
            correct = np.clip(40 * (retained + noise * rng.standard_normal()), 0, 40)
            rows.append(
                {
                    "batch": sequence // 4,
                    "sequence": sequence % 4,
                    "intervention": kind,
                    "layer": layer,
                    "n_tokens": TOKENS,
                    "kl": per_token * TOKENS,
                    "correct": float(correct),
                    "baseline_correct": 40.0,
                }
            )
    return pd.DataFrame(rows)


def robustness_evidence(rows: pd.DataFrame, model: str = "tiny") -> ModelEvidence:
    """Evidence holding only the sweep's per-sequence rows."""
    return ModelEvidence(model, {}, rows)


def lens_evidence(kl: Sequence[float], entropy: Sequence[float] | None = None) -> ModelEvidence:
    """A logit-lens table (embedding row at layer -1, then layers 0..L-1)."""
    n = len(kl)
    entropy = list(entropy) if entropy is not None else [5.0] * n
    table = pd.DataFrame({"layer": range(-1, n), "kl_to_final": [50.0, *kl], "entropy_bits": [0.1, *entropy]})
    return ModelEvidence("tiny", {"logit_lens": table})


def neuron_evidence(prediction: Sequence[int], suppression: Sequence[int], d_mlp: int = 200) -> ModelEvidence:
    """Per-layer counts and a per-neuron table of ``d_mlp`` neurons a layer."""
    counts = pd.DataFrame({"layer": range(len(prediction)), "prediction": prediction, "suppression": suppression})
    neurons = pd.DataFrame({"layer": np.repeat(np.arange(len(prediction)), d_mlp), "neuron": 0})
    return ModelEvidence("tiny", {"neuron_counts": counts, "neurons": neurons})


def attention_evidence(means: Sequence[float], sem: float = 0.005, n_documents: int = 20) -> ModelEvidence:
    """A previous-token attention table with one sem for every layer."""
    table = pd.DataFrame({"layer": range(len(means)), "mean": means, "sem": sem, "n_documents": n_documents})
    return ModelEvidence("tiny", {"attention": table})
