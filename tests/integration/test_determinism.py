"""Same inputs, same seed: bit-identical tokens and tables, on the real SmolLM2.

Determinism is what makes resuming safe (a resumed run's batches must equal the
ones an uninterrupted run would compute) and what lets ``run.json`` identify a run
by its inputs. Everything here runs in one process on one CPU thread setting.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from transformer_lens.model_bridge import TransformerBridge

from stages_of_inference.corpus import load_corpus
from stages_of_inference.interventions import Intervention
from stages_of_inference.runs.identity import tokens_sha256
from stages_of_inference.sweep import robustness_sweep

pytestmark = pytest.mark.integration

INTERVENTIONS = [
    Intervention("delete", 0),
    Intervention("delete", 15),
    Intervention("swap", 14),
    Intervention("swap", 28),
]


@pytest.fixture(scope="module")
def tokens(smollm2: TransformerBridge) -> torch.Tensor:
    return load_corpus("python-docs", smollm2, n_tokens=4 * 24, seq_len=24, seed=0)


def test_load_corpus_with_the_same_seed_gives_identical_tokens(
    smollm2: TransformerBridge, tokens: torch.Tensor
) -> None:
    again = load_corpus("python-docs", smollm2, n_tokens=4 * 24, seq_len=24, seed=0)
    assert torch.equal(again, tokens) and tokens_sha256(again) == tokens_sha256(tokens)
    other = load_corpus("python-docs", smollm2, n_tokens=4 * 24, seq_len=24, seed=1)
    assert not torch.equal(other, tokens)  # the seed matters, so it belongs to the run's identity


def test_two_sweeps_with_the_same_seed_are_bit_identical(smollm2: TransformerBridge, tokens: torch.Tensor) -> None:
    sweep = lambda: robustness_sweep(
        smollm2, tokens, INTERVENTIONS, batch_size=2, n_bootstrap=200, seed=0, progress=False
    )
    first, second = sweep(), sweep()
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    assert first.kl.gt(0).all()  # the interventions did change something


def test_the_bootstrap_seed_only_moves_the_intervals(smollm2: TransformerBridge, tokens: torch.Tensor) -> None:
    first = robustness_sweep(smollm2, tokens, INTERVENTIONS[:2], batch_size=2, n_bootstrap=200, seed=0, progress=False)
    other = robustness_sweep(smollm2, tokens, INTERVENTIONS[:2], batch_size=2, n_bootstrap=200, seed=1, progress=False)
    point = [c for c in first.columns if not c.endswith(("_ci_low", "_ci_high"))]
    pd.testing.assert_frame_equal(first[point], other[point], check_exact=True)
    assert not first.kl_ci_low.equals(other.kl_ci_low)
