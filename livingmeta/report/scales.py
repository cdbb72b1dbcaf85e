"""How an effect measure is shown to people: its name, its null value and its display scale.

The statistics engine works on the analysis scale (log for ratios, transformed proportions); people read
odds ratios and proportions. The transforms here are exact and monotone, so a confidence interval maps to a
confidence interval. The Freeman-Tukey double arcsine has no inverse without n: the engine back-transforms
each study with its own n (``yi_bt``, ``ci_lower_bt``, ``ci_upper_bt`` in its studies rows) and the pooled
value with the harmonic mean of n (Miller 1978). Results stored before the engine gave per-study values
(engine < 1.1.0) keep PFT forest plots on the analysis scale, and say so.
"""

from __future__ import annotations

import math
from collections.abc import Callable

RATIO_MEASURES = frozenset({"OR", "RR", "PETO", "ROM", "HR", "IRR"})

MEASURE_NAMES = {
    "OR": "Odds ratio",
    "RR": "Risk ratio",
    "RD": "Risk difference",
    "PETO": "Peto odds ratio",
    "PR": "Proportion",
    "PLO": "Proportion (logit)",
    "PAS": "Proportion (arcsine)",
    "PFT": "Proportion (Freeman-Tukey)",
    "MD": "Mean difference",
    "SMD": "Standardised mean difference",
    "ROM": "Ratio of means",
    "GEN": "Effect (generic inverse variance)",
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


PROPORTION_MEASURES = frozenset({"PR", "PLO", "PAS", "PFT"})
TRANSFORM_NAMES = {"PLO": "logit", "PAS": "arcsine", "PFT": "Freeman-Tukey double arcsine"}


def study_display(study: dict, measure: str, ratio: bool) -> tuple[float | None, float | None, float | None] | None:
    """A study's (effect, CI lower, CI upper) on the display scale, or None when it cannot be shown there.

    Uses the engine's own back-transform of the study (``yi_bt`` etc.) when present, else the exact map of
    `study_transform`; None for a study without an effect (yi None) and for measures with no back-transform
    (their values are shown on the analysis scale by the caller).
    """

    def num(key):
        v = study.get(key)
        try:
            v = float(v)
        except (TypeError, ValueError):
            return None
        return v if math.isfinite(v) else None

    if num("yi") is None:
        return None
    if num("yi_bt") is not None:
        return num("yi_bt"), num("ci_lower_bt"), num("ci_upper_bt")
    t = study_transform(measure, ratio)
    if t is None:
        return None
    return tuple(None if num(k) is None else t(num(k)) for k in ("yi", "ci_lower", "ci_upper"))


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
