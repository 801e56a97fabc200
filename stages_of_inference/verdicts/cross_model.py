"""The cross-model claims: models with more layers are more robust, overall and within Qwen 2.5.

Robustness is the accuracy retained of
:func:`~stages_of_inference.verdicts.claims.retention_bootstrap` (mean over every
deletion and swap), bootstrapped over each model's own sequences; the bootstraps of
different models are independent (unpaired), since the models do not share a
resample. A claim is inconclusive when the models it compares are absent.
"""

from __future__ import annotations

import re

from stages_of_inference.verdicts.claims import retention_bootstrap
from stages_of_inference.verdicts.evidence import ModelEvidence, interventions_of, sequence_tokens
from stages_of_inference.verdicts.stats import MIN_SEQUENCES, Bootstrap, mean_difference
from stages_of_inference.verdicts.verdict import Verdict, above, untested

ALL_MODELS = "all models"
"""The ``model`` of a cross-model verdict."""
QWEN_PAIR = (re.compile(r"qwen.*0\.5b", re.IGNORECASE), re.compile(r"qwen.*1\.5b", re.IGNORECASE))
"""Folder names of the smaller and the larger Qwen model compared."""
TEST = (
    "mean accuracy retained (over every deletion and swap) of the model with more layers - the one with "
    "fewer, averaged over such pairs; independent bootstraps over each model's sequences; holds if the CI is above 0"
)


def _robustness(models: list[ModelEvidence]) -> dict[str, tuple[int, Bootstrap]]:
    """Each model with enough per-sequence sums: its layer count and its retention bootstrap."""
    found = {}
    for seed, model in enumerate(models):
        rows = model.per_sequence
        if rows is None or len(sequence_tokens(rows)) < MIN_SEQUENCES:
            continue
        found[model.model] = (len(interventions_of(rows, "delete")), retention_bootstrap(rows, seed=seed))
    return found


def _compare(claim: str, pairs: list[tuple[Bootstrap, Bootstrap]], n: int, alpha: float) -> Verdict:
    effect, low, high = mean_difference(pairs, alpha)
    return Verdict(claim, ALL_MODELS, above(low, high), effect, low, high, TEST, alpha, n, "robustness")


def deeper_models_more_robust(models: list[ModelEvidence], alpha: float) -> Verdict:
    """Across all models, those with more layers keep more accuracy."""
    claim = "models with more layers are more robust"
    robust = _robustness(models)
    pairs = [
        (deep, shallow)
        for name, (layers, deep) in robust.items()
        for other, (fewer, shallow) in robust.items()
        if layers > fewer and name != other
    ]
    if not pairs:
        why = f"needs two models of different depth with at least {MIN_SEQUENCES} sequences each"
        return untested(claim, ALL_MODELS, TEST, alpha, "robustness", why)
    return _compare(claim, pairs, len(robust), alpha)


def larger_qwen_more_robust(models: list[ModelEvidence], alpha: float) -> Verdict:
    """Within the Qwen 2.5 family, 1.5B (28 layers) keeps more accuracy than 0.5B (24 layers)."""
    claim = "Qwen 2.5 1.5B is more robust than 0.5B"
    robust = _robustness(models)
    small = [result for name, (_, result) in robust.items() if QWEN_PAIR[0].search(name)]
    large = [result for name, (_, result) in robust.items() if QWEN_PAIR[1].search(name)]
    if len(small) != 1 or len(large) != 1:
        why = f"needs one Qwen 0.5B and one Qwen 1.5B folder with at least {MIN_SEQUENCES} sequences each"
        return untested(claim, ALL_MODELS, TEST, alpha, "robustness", why)
    return _compare(claim, [(large[0], small[0])], 2, alpha)


CROSS_MODEL_CLAIMS = (deeper_models_more_robust, larger_qwen_more_robust)
"""The claims across models (one family for the correction)."""
