"""How an effect measure is shown to people: its name, its null value and its display scale.

The statistics engine works on the analysis scale (log for ratios, transformed proportions); people read
odds ratios and proportions. The transforms here are exact and monotone, so a confidence interval maps to a
confidence interval. The Freeman-Tukey double arcsine has no per-study inverse without each study's n
(Miller 1978 uses the harmonic mean for the pooled value only), so PFT forest plots stay on the analysis
scale and say so.
"""

from __future__ import annotations

import math
from collections.abc import Callable

RATIO_MEASURES = frozenset({"OR", "RR", "PETO", "ROM", "HR", "IRR"})

MEASURE_NAMES = {
    "OR": "Odds ratio", "RR": "Risk ratio", "RD": "Risk difference", "PETO": "Peto odds ratio",
    "PR": "Proportion", "PLO": "Proportion (logit)", "PAS": "Proportion (arcsine)",
    "PFT": "Proportion (Freeman-Tukey)", "MD": "Mean difference", "SMD": "Standardised mean difference",
    "ROM": "Ratio of means", "GEN": "Effect (generic inverse variance)",
}


def _expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _sin2(x: float) -> float:
    return math.sin(max(0.0, min(math.pi / 2, x))) ** 2


def is_ratio(measure: str, estimate: float | None = None, estimate_bt: float | None = None) -> bool:
    """True when the measure is a ratio (analysis on the log scale, shown exponentiated).

    A generic (GEN) analysis is a ratio when the engine back-transformed it by exponentiation.
    """
    if measure in RATIO_MEASURES:
        return True
    if measure == "GEN" and estimate is not None and estimate_bt is not None:
        try:
            return math.isclose(math.exp(estimate), estimate_bt, rel_tol=1e-9, abs_tol=1e-12)
        except OverflowError:
            return False
    return False


def study_transform(measure: str, ratio: bool) -> Callable[[float], float] | None:
    """The exact map from the analysis scale to the display scale for per-study values.

    Returns None when values are shown on the analysis scale (differences, PFT, unknown measures).
    """
    if ratio:
        return math.exp
    return {"PR": (lambda x: x), "PLO": _expit, "PAS": _sin2}.get(measure)


def null_value(measure: str, ratio: bool) -> float | None:
    """The value meaning "no effect" on the display scale (None for single-arm proportions)."""
    if ratio:
        return 1.0
    if measure in {"PR", "PLO", "PAS", "PFT"}:
        return None
    return 0.0


def measure_name(measure: str) -> str:
    """A readable name for a measure code (the code itself when unknown)."""
    return MEASURE_NAMES.get(measure, measure)
