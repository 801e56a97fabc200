"""The robustness sweep on the real SmolLM2 at a small budget (4 windows x 32 tokens).

Kept small: the 59 unembeddings over a 49,152-token vocabulary dominate the run time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from stages_of_inference.corpus import load_corpus
from stages_of_inference.interventions import Intervention
from stages_of_inference.scoring.metrics import token_metrics
from stages_of_inference.sweep import robustness_sweep
from tests.unit.test_sweep import METRIC_COLUMNS

pytestmark = pytest.mark.integration

N_WINDOWS, SEQ_LEN = 4, 32


@pytest.fixture(scope="module")
def tokens(smollm2) -> torch.Tensor:
    return load_corpus("python-docs", smollm2, n_tokens=N_WINDOWS * SEQ_LEN, seq_len=SEQ_LEN)


@pytest.fixture(scope="module")
def table(smollm2, tokens) -> pd.DataFrame:
    return robustness_sweep(smollm2, tokens, batch_size=N_WINDOWS, n_bootstrap=200, progress=False)


def test_table_shape_and_columns(table: pd.DataFrame) -> None:
    assert len(table) == 2 * 30 - 1 == 59
    for column in ["intervention", "layer", "relative_depth", "n_tokens", *METRIC_COLUMNS]:
        assert column in table.columns, column
    for column in METRIC_COLUMNS:
        assert f"{column}_ci_low" in table.columns and f"{column}_ci_high" in table.columns
    assert table.intervention.tolist() == ["delete"] * 30 + ["swap"] * 29
    assert table.layer.tolist() == [*range(30), *range(29)]
    assert (table.n_tokens == N_WINDOWS * (SEQ_LEN - 2)).all()
    assert table[METRIC_COLUMNS].notna().all().all()


def test_internal_consistency(table: pd.DataFrame) -> None:
    for column in ("baseline_accuracy", "baseline_loss", "baseline_entropy_bits"):
        assert table[column].nunique() == 1, column
    assert 0.1 < table.baseline_accuracy.iloc[0] < 0.9  # a real model on real text
    assert (table.kl >= 0).all()
    assert table.top1_agreement.between(0, 1).all() and table.accuracy.between(0, 1).all()
    np.testing.assert_allclose(table.relative_accuracy, table.accuracy / table.baseline_accuracy, rtol=1e-12)
    for column in METRIC_COLUMNS:
        assert (table[f"{column}_ci_low"] <= table[column] + 1e-12).all(), column
        assert (table[column] <= table[f"{column}_ci_high"] + 1e-12).all(), column


def test_early_layer_is_more_fragile_than_the_middle(table: pd.DataFrame) -> None:
    deletions = table[table.intervention == "delete"].set_index("layer")
    assert deletions.kl[0] > deletions.kl[15]
    assert deletions.top1_agreement[0] < deletions.top1_agreement[15]


def test_single_intervention_sweep_equals_its_row(smollm2, tokens, table: pd.DataFrame) -> None:
    alone = robustness_sweep(
        smollm2, tokens, [Intervention("delete", 15)], batch_size=N_WINDOWS, n_bootstrap=200, progress=False
    )
    row = table[(table.intervention == "delete") & (table.layer == 15)].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, row)


def test_no_op_comparison_and_baseline_accuracy(smollm2, tokens, table: pd.DataFrame) -> None:
    with torch.inference_mode():
        base = smollm2(tokens)
    same = token_metrics(base, base, tokens)
    assert float(same["kl"].abs().max()) == 0.0
    assert float(same["agreement"].min()) == 1.0
    assert torch.equal(same["loss"], same["baseline_loss"])
    # the sweep's baseline (final residual + unembed) scores like the model's own forward
    n_tokens = same["correct"].numel()
    assert abs(float(same["correct"].mean()) - table.baseline_accuracy.iloc[0]) <= 1 / n_tokens
    # the sweep scores the baseline from vocabulary tiles in float64 sums, token_metrics from
    # full float32 rows: each token's loss differs by the float32 log-softmax error, at most
    # (log2(V) + 2) * eps32 * max|logit| (a sum of V exponentials, then a log and a difference)
    eps32 = float(torch.finfo(torch.float32).eps)
    bound = (np.log2(base.shape[-1]) + 2) * eps32 * float(base.abs().max())
    assert abs(float(same["loss"].double().mean()) - table.baseline_loss.iloc[0]) <= bound
