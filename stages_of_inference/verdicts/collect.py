"""Every verdict of a set of models, each family of claims corrected for its number of claims.

Two families, each held at the family-wise level ``alpha`` by Bonferroni's correction:
the claims of one model (:data:`~stages_of_inference.verdicts.claims.MODEL_CLAIMS`, each
at ``alpha / 9``) and the cross-model claims
(:data:`~stages_of_inference.verdicts.cross_model.CROSS_MODEL_CLAIMS`, each at ``alpha / 2``).
"""

from __future__ import annotations

from stages_of_inference.verdicts.claims import MODEL_CLAIMS
from stages_of_inference.verdicts.cross_model import CROSS_MODEL_CLAIMS
from stages_of_inference.verdicts.evidence import ModelEvidence
from stages_of_inference.verdicts.stats import ALPHA, bonferroni
from stages_of_inference.verdicts.verdict import Verdict


def model_verdicts(evidence: ModelEvidence, alpha: float = ALPHA) -> list[Verdict]:
    """The verdict of each claim on one model, each claim at ``alpha / len(MODEL_CLAIMS)``."""
    level = bonferroni(alpha, len(MODEL_CLAIMS))
    return [claim(evidence, level) for claim in MODEL_CLAIMS]


def cross_model_verdicts(models: list[ModelEvidence], alpha: float = ALPHA) -> list[Verdict]:
    """The verdict of each cross-model claim, each at ``alpha / len(CROSS_MODEL_CLAIMS)``."""
    level = bonferroni(alpha, len(CROSS_MODEL_CLAIMS))
    return [claim(models, level) for claim in CROSS_MODEL_CLAIMS]


def all_verdicts(models: list[ModelEvidence], alpha: float = ALPHA) -> list[Verdict]:
    """Each model's verdicts, in the order given, then the cross-model verdicts."""
    return [verdict for model in models for verdict in model_verdicts(model, alpha)] + cross_model_verdicts(
        models, alpha
    )
