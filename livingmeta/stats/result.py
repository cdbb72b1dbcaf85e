"""MetaResult: the numbers of one meta-analysis, ready for JSON."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

RESULT_KEYS = (
    "k",
    "measure",
    "method",
    "test",
    "estimate",
    "se",
    "statistic",
    "p_value",
    "ci_lower",
    "ci_upper",
    "tau2",
    "i2",
    "h2",
    "q",
    "q_df",
    "q_p",
    "pi_lower",
    "pi_upper",
    "estimate_bt",
    "ci_lower_bt",
    "ci_upper_bt",
    "pi_lower_bt",
    "pi_upper_bt",
    "participants",
    "tau2_ci_lower",
    "tau2_ci_upper",
    "i2_ci_lower",
    "i2_ci_upper",
    "h2_ci_lower",
    "h2_ci_upper",
    "warnings",
    "studies",
)


def clean(value: Any) -> Any:
    """Return `value` with numpy scalars made plain and NaN/inf replaced by None."""
    # plain floats and None are by far the most frequent: decide them first
    kind = type(value)
    if kind is float:
        return value if value - value == 0 else None
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


class StudyList(Sequence):
    """Per-study rows of one analysis, built on demand.

    Leave-one-out and cumulative analyses of thousands of studies would otherwise hold
    k x k dicts; each item is ``{study, yi, vi, weight, ci_lower, ci_upper, n, yi_bt, ci_lower_bt,
    ci_upper_bt, not_estimable}``: not_estimable is None, or why the study has no effect size of its own
    (an empty cell, a double-zero table dropped, a zero cell without correction); weight in percent; yi, vi and the CI on the analysis scale (None for a study that
    could not contribute); n the study's participants (None when unknown); ``*_bt`` the study's own
    values back-transformed (exp for ratios, inverse logit for PLO, sin^2 for PAS, the inverse
    Freeman-Tukey transform with the study's own n for PFT), None when the measure has no
    back-transform.
    """

    def __init__(self, names, yi, vi, member, raw_weight, crit, n=None, back=None, reasons=None):
        self._names = names
        self._reasons = reasons or {}  # study position -> why it is not estimable
        self._yi = yi
        self._vi = vi
        self._index = np.flatnonzero(member)
        self._raw = raw_weight  # callable(index array) -> raw weights for those studies
        self._crit = crit
        self._n = n  # participants per study (all studies), or None
        self._back = back  # callable(values, index array) -> back-transformed values, or None
        self._cache = None

    def _rows(self):
        if self._cache is None:
            idx = self._index
            raw = np.asarray(self._raw(idx), float)
            total = np.nansum(raw)
            with np.errstate(invalid="ignore", divide="ignore"):
                pct = 100 * raw / total if total > 0 else np.full(len(idx), np.nan)
            yi_all, vi_all = np.asarray(self._yi, float)[idx], np.asarray(self._vi, float)[idx]
            with np.errstate(invalid="ignore"):
                half_all = self._crit * np.sqrt(vi_all)
            bts = None
            if self._back is not None:
                bts = [self._back(v, idx) for v in (yi_all, yi_all - half_all, yi_all + half_all)]
                bts = None if any(b is None for b in bts) else [np.asarray(b, float) for b in bts]
            rows = []
            for j, i in enumerate(idx):
                yi, vi = self._yi[i], self._vi[i]
                ok = math.isfinite(yi) and math.isfinite(vi)
                half = self._crit * math.sqrt(vi) if ok else float("nan")
                rows.append(
                    {
                        "study": self._names[i],
                        "yi": clean(yi) if ok else None,
                        "vi": clean(vi) if ok else None,
                        "weight": clean(pct[j]) if clean(pct[j]) is not None else 0.0,
                        "ci_lower": clean(yi - half) if ok else None,
                        "ci_upper": clean(yi + half) if ok else None,
                        "n": None if self._n is None else clean(self._n[i]),
                        "yi_bt": clean(bts[0][j]) if ok and bts is not None else None,
                        "ci_lower_bt": clean(bts[1][j]) if ok and bts is not None else None,
                        "ci_upper_bt": clean(bts[2][j]) if ok and bts is not None else None,
                        "not_estimable": None if ok else self._reasons.get(int(i), "effect size not estimable"),
                    }
                )
            self._cache = rows
        return self._cache

    def __len__(self):
        return len(self._index)

    def __getitem__(self, item):
        return self._rows()[item]

    def __eq__(self, other):
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self):
        return f"StudyList({len(self)} studies)"


@dataclass(frozen=True, eq=False)
class MetaResult:
    """One pooled analysis. Fields are the keys of `to_dict()`.

    Scales: estimate, CIs, PI and study yi are on the analysis scale (log for RR/OR/PETO/ROM and
    GEN with scale="ratio", logit for PLO, arcsine for PAS, double arcsine for PFT); ``*_bt`` are the
    back-transformed values, None when the measure has no back-transform (RD, PR, MD, SMD, GEN
    differences). Heterogeneity fields (i2, h2, q, q_df, q_p) are None when k < 2; pi_*, tau2_ci_*,
    i2_ci_* and h2_ci_* are None for common-effect models (FE, MH, PETO) and k < 2. tau2 is 0 for
    common-effect models. i2_ci_*/h2_ci_* are the Q-profile bounds of tau2 mapped through
    I2 = 100 tau2 / (tau2 + vt) and H2 = 1 + tau2 / vt (metafor's confint.rma.uni; vt the "typical"
    within-study variance).
    """

    k: int
    measure: str
    method: str
    test: str
    estimate: float | None
    se: float | None
    statistic: float | None
    p_value: float | None
    ci_lower: float | None
    ci_upper: float | None
    tau2: float | None
    i2: float | None
    h2: float | None
    q: float | None
    q_df: int | None
    q_p: float | None
    pi_lower: float | None
    pi_upper: float | None
    estimate_bt: float | None
    ci_lower_bt: float | None
    ci_upper_bt: float | None
    pi_lower_bt: float | None
    pi_upper_bt: float | None
    participants: float | None
    tau2_ci_lower: float | None
    tau2_ci_upper: float | None
    i2_ci_lower: float | None
    i2_ci_upper: float | None
    h2_ci_lower: float | None
    h2_ci_upper: float | None
    warnings: tuple[str, ...]
    studies: Sequence[dict]

    def __post_init__(self):
        # attributes hold plain Python numbers or None, never numpy scalars or NaN
        state = self.__dict__
        for name in _NUMERIC_FIELDS:
            state[name] = clean(state[name])
        state["warnings"] = tuple(self.warnings)

    def to_dict(self) -> dict:
        """Return a JSON-ready dict with exactly RESULT_KEYS (NaN never appears: None instead)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "warnings":
                out[f.name] = list(value)
            elif f.name == "studies":
                out[f.name] = [dict(s) for s in value]
            else:
                out[f.name] = clean(value)
        return out

    def __eq__(self, other):
        return isinstance(other, MetaResult) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # equal by value, so not hashable


_NUMERIC_FIELDS = tuple(
    f.name for f in fields(MetaResult) if f.name not in ("warnings", "studies", "measure", "method", "test")
)
