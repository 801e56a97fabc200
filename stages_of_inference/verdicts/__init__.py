"""The paper's claims as tested verdicts: holds / fails / inconclusive, with the effect and its interval.

Each claim of Lad et al. is one function of a model's saved tables
(:mod:`~stages_of_inference.verdicts.claims`; across models:
:mod:`~stages_of_inference.verdicts.cross_model`). Claims on the robustness sweep use a
paired bootstrap over sequences of the sweep's per-sequence sums; the others the
strongest test their tables allow, named in each verdict's ``test``. Each family of
claims is corrected with Bonferroni (:mod:`~stages_of_inference.verdicts.stats`).
``docs/verdicts.md`` gives each operationalisation and its reasons.

Modules: ``verdict`` (the :class:`Verdict` and the decision rules), ``stats`` (bootstrap,
correction, intervals), ``evidence`` (what is read of a model folder), ``claims``,
``cross_model``, ``collect`` (every verdict of a set of models). A results folder is read,
and ``verdicts.json`` written, by :mod:`stages_of_inference.report.verdicts`.

Example:
    >>> import stages_of_inference as soi
    >>> table = soi.verdict_table(soi.claim_verdicts("results"))  # doctest: +SKIP
    >>> table[["claim", "model", "verdict", "effect", "ci_low", "ci_high"]]  # doctest: +SKIP
"""

from stages_of_inference.verdicts.collect import all_verdicts, cross_model_verdicts, model_verdicts
from stages_of_inference.verdicts.evidence import ModelEvidence
from stages_of_inference.verdicts.verdict import Verdict, verdict_table

__all__ = [
    "ModelEvidence",
    "Verdict",
    "all_verdicts",
    "cross_model_verdicts",
    "model_verdicts",
    "verdict_table",
]
