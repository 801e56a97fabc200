"""Models with more layers more robust: across all models and within Qwen 2.5, from independent bootstraps."""

from __future__ import annotations

import pytest

from stages_of_inference.verdicts import ModelEvidence, cross_model_verdicts
from stages_of_inference.verdicts.cross_model import deeper_models_more_robust, larger_qwen_more_robust
from stages_of_inference.verdicts.stats import bonferroni
from tests.unit.verdicts.synthetic import robustness_evidence, shard_rows

ALPHA = bonferroni(0.05, 2)


def _model(name: str, n_layers: int, retained: float, n_sequences: int = 40, seed: int = 0) -> ModelEvidence:
    rows = shard_rows([0.5] * n_layers, [0.3] * (n_layers - 1), retained=retained, n_sequences=n_sequences, seed=seed)
    return robustness_evidence(rows, name)


@pytest.mark.parametrize(
    ("deep", "shallow", "verdict"), [(0.9, 0.7, "holds"), (0.6, 0.9, "fails"), (0.8, 0.8, "inconclusive")]
)
def test_deeper_models_more_robust(deep: float, shallow: float, verdict: str) -> None:
    models = [_model("deep", 12, deep, seed=1), _model("shallow", 6, shallow, seed=2)]
    result = deeper_models_more_robust(models, ALPHA)
    assert result.verdict == verdict
    assert result.effect == pytest.approx(deep - shallow, abs=0.03)


def test_one_model_or_too_few_sequences_is_inconclusive() -> None:
    assert deeper_models_more_robust([_model("deep", 12, 0.9)], ALPHA).verdict == "inconclusive"
    models = [_model("deep", 12, 0.9, n_sequences=4), _model("shallow", 6, 0.5)]
    result = deeper_models_more_robust(models, ALPHA)
    assert result.verdict == "inconclusive" and "two models" in result.note


def test_qwen_compares_1_5b_with_0_5b_only() -> None:
    models = [
        _model("Qwen2.5-1.5B", 28, 0.9, seed=1),
        _model("qwen2.5-0.5b-instruct", 24, 0.7, seed=2),
        _model("smollm2-135m", 30, 0.1, seed=3),
    ]
    result = larger_qwen_more_robust(models, ALPHA)
    assert result.verdict == "holds" and result.effect == pytest.approx(0.2, abs=0.03)
    assert deeper_models_more_robust(models, ALPHA).verdict == "fails"  # the 30-layer model keeps least


def test_without_the_qwen_pair_the_claim_is_inconclusive() -> None:
    result = larger_qwen_more_robust([_model("Qwen2.5-1.5B", 28, 0.9)], ALPHA)
    assert result.verdict == "inconclusive" and "Qwen 0.5B" in result.note


def test_the_cross_model_claims_are_one_family() -> None:
    assert [v.alpha for v in cross_model_verdicts([], alpha=0.05)] == [pytest.approx(0.025)] * 2
