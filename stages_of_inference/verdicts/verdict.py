"""A claim's verdict (holds / fails / inconclusive) and the two rules that decide it from an interval.

A claim *holds* when its whole interval (coverage ``1 - alpha``, ``alpha`` already
corrected for the number of claims) lies on the claim's side, *fails* when the whole
interval lies on the other side, and is *inconclusive* otherwise, or when the evidence
is missing or too thin to test (``note`` says why).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

HOLDS, FAILS, INCONCLUSIVE = "holds", "fails", "inconclusive"


@dataclass(frozen=True)
class Verdict:
    """The test of one claim of the paper on one model (``model`` is ``"all models"`` across models)."""

    claim: str
    model: str
    verdict: str
    """``holds``, ``fails`` or ``inconclusive``."""
    effect: float
    """The measured effect (its unit is stated in ``test``); NaN when untested."""
    ci_low: float
    ci_high: float
    test: str
    """The operationalisation and the test used."""
    alpha: float
    """The per-claim level (the family's level divided by its number of claims)."""
    n: int
    """The units the test resampled or counted (sequences, layers, neurons); 0 when untested."""
    figure: str
    """The table stem of the report figure that shows the evidence (its anchor is ``figure-<figure>``)."""
    note: str = ""
    """Why the verdict is inconclusive, when it is."""


def above(low: float, high: float, threshold: float = 0.0) -> str:
    """Decide a claim "the effect exceeds ``threshold``" from its interval ``[low, high]``.

    Example:
        >>> above(0.1, 0.5), above(-0.5, -0.1), above(-0.1, 0.1)
        ('holds', 'fails', 'inconclusive')
    """
    if low > threshold:
        return HOLDS
    if high < threshold:
        return FAILS
    return INCONCLUSIVE


def within(low: float, high: float, window: tuple[float, float]) -> str:
    """Decide a claim "the effect lies in ``window``" (closed) from its interval ``[low, high]``.

    Example:
        >>> within(0.8, 0.9, (0.72, 0.95)), within(0.2, 0.5, (0.72, 0.95)), within(0.6, 0.8, (0.72, 0.95))
        ('holds', 'fails', 'inconclusive')
    """
    if window[0] <= low and high <= window[1]:
        return HOLDS
    if high < window[0] or low > window[1]:
        return FAILS
    return INCONCLUSIVE


def untested(claim: str, model: str, test: str, alpha: float, figure: str, why: str) -> Verdict:
    """An inconclusive verdict for a claim the evidence cannot test, saying why."""
    nan = float("nan")
    return Verdict(claim, model, INCONCLUSIVE, nan, nan, nan, test, alpha, 0, figure, why)


def verdict_table(verdicts: list[Verdict]) -> pd.DataFrame:
    """One row per verdict, the fields as columns."""
    return pd.DataFrame([asdict(verdict) for verdict in verdicts], columns=list(Verdict.__dataclass_fields__))
