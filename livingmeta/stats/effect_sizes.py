"""Per-study effect sizes and sampling variances (yi, vi), as metafor's escalc computes them.

Symbols: ``yi`` effect size on the analysis scale, ``vi`` its sampling variance; for binary data
``ai, bi`` events/non-events in the treatment arm and ``ci, di`` in the control arm, ``n1i, n2i``
group sizes; for one arm ``xi`` events of ``ni``.

Reference: Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package.
J Stat Softw 36(3). Formulas follow escalc() in metafor 3.8-1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

from livingmeta.stats.errors import StatsInputError
from livingmeta.stats.inputs import StudyTable

MEASURES_BY_KIND = {
    "binary": ("RR", "OR", "RD", "PETO"),
    "proportion": ("PR", "PLO", "PAS", "PFT"),
    "continuous": ("MD", "SMD", "ROM"),
    "generic": ("GEN",),
}
ZERO_TO = ("only0", "all", "none", "if0all")
CI_Z = 1.959964  # the rounded 97.5% normal quantile papers use when they report 95% CIs


@dataclass(frozen=True)
class EffectSizes:
    """yi and vi per study (NaN where a study cannot contribute), and why it cannot."""

    yi: np.ndarray
    vi: np.ndarray
    ni: np.ndarray | None
    excluded: dict[int, str]


def check_measure(kind: str, measure: str) -> None:
    """Raise StatsInputError unless `measure` can be computed from `kind` data."""
    known = [m for ms in MEASURES_BY_KIND.values() for m in ms]
    if measure not in known:
        raise StatsInputError(f"unknown measure {measure!r}; use one of {', '.join(known)}")
    if measure not in MEASURES_BY_KIND[kind]:
        raise StatsInputError(
            f"measure {measure} does not fit {kind} data; for {kind} data use one of "
            f"{', '.join(MEASURES_BY_KIND[kind])}"
        )


def compute_effect_sizes(
    table: StudyTable,
    measure: str,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = False,
    scale: str = "difference",
) -> EffectSizes:
    """Compute yi and vi for every study.

    Parameters
    ----------
    table : StudyTable
        Validated rows (see livingmeta.stats.inputs.parse_table).
    measure : str
        RR, OR, RD, PETO (binary); PR, PLO, PAS, PFT (proportion); MD, SMD, ROM (continuous);
        GEN (generic inverse variance).
    add, to, drop00 : zero-cell handling as escalc: `add` is added to all cells of a 2x2 table
        (or both cells of a proportion) with a zero (to="only0"), to all tables ("all"), to all
        tables if any has a zero ("if0all") or never ("none"); drop00 removes studies with no
        events (or only events) in both arms. PAS and PFT never get a correction (escalc default).
    scale : str
        For GEN: "ratio" (estimate and CI given on the ratio scale, analysed on the log scale; se,
        when given, is the SE of the log ratio) or "difference".

    Returns
    -------
    EffectSizes with NaN yi/vi for studies that cannot contribute and the reason in `excluded`.

    References: escalc() in metafor 3.8-1; Hedges LV (1981) J Educ Stat 6:107-128 (SMD exact J);
    Freeman MF, Tukey JW (1950) Ann Math Stat 21:607-611 (PFT); Yusuf S et al. (1985)
    Prog Cardiovasc Dis 27:335-371 (PETO).
    """
    check_measure(table.kind, measure)
    if to not in ZERO_TO:
        raise StatsInputError(f"zero-cell option to={to!r} is unknown; use one of {', '.join(ZERO_TO)}")
    try:
        add = float(add)
    except (TypeError, ValueError):
        raise StatsInputError(f"zero-cell option add={add!r} is not a number") from None
    if add < 0:
        raise StatsInputError(f"zero-cell option add={add} is negative; use 0 or a positive constant")
    v = table.values
    k = len(table)
    # rows with an empty data cell first: their reason is the empty cell, whatever the arithmetic gives
    excluded: dict[int, str] = dict(table.missing)
    ni = None
    with np.errstate(divide="ignore", invalid="ignore"):
        if table.kind == "binary":
            ai = v["treat_events"].copy()
            ci = v["control_events"].copy()
            bi = v["treat_total"] - ai
            di = v["control_total"] - ci
            if drop00:
                id00 = ((ai == 0) & (ci == 0)) | ((bi == 0) & (di == 0))
                for i in np.flatnonzero(id00):
                    excluded.setdefault(int(i), "no events (or only events) in both arms; excluded because drop00=True")
            else:
                id00 = np.zeros(k, bool)
            ai, bi, ci, di = _add_to_tables((ai, bi, ci, di), add, to, ~id00)
            n1i, n2i = ai + bi, ci + di
            p1i, p2i = ai / n1i, ci / n2i
            if measure == "RR":
                yi = np.log(p1i) - np.log(p2i)
                vi = 1 / ai - 1 / n1i + 1 / ci - 1 / n2i
            elif measure == "OR":
                yi = np.log(p1i / (1 - p1i)) - np.log(p2i / (1 - p2i))
                vi = 1 / ai + 1 / bi + 1 / ci + 1 / di
            elif measure == "RD":
                yi = p1i - p2i
                vi = p1i * (1 - p1i) / n1i + p2i * (1 - p2i) / n2i
            else:  # PETO
                nn = n1i + n2i
                xt, yt = ai + ci, bi + di
                ei = xt * n1i / nn
                vpeto = xt * yt * (n1i / nn) * (n2i / nn) / (nn - 1)
                yi = (ai - ei) / vpeto
                vi = 1 / vpeto
            yi[id00] = np.nan
            vi[id00] = np.nan
        elif table.kind == "proportion":
            xi = v["events"].copy()
            mi = v["total"] - xi
            ni = v["total"].copy()
            if measure in ("PR", "PLO"):
                xi, mi = _add_to_tables((xi, mi), add, to, np.ones(k, bool))
            nc = xi + mi
            pri = xi / nc
            if measure == "PR":
                yi, vi = pri, pri * (1 - pri) / nc
            elif measure == "PLO":
                yi, vi = np.log(pri / (1 - pri)), 1 / (nc * pri) + 1 / (nc * (1 - pri))
            elif measure == "PAS":
                yi, vi = np.arcsin(np.sqrt(pri)), 1 / (4 * nc)
            else:  # PFT
                yi = 0.5 * (np.arcsin(np.sqrt(xi / (nc + 1))) + np.arcsin(np.sqrt((xi + 1) / (nc + 1))))
                vi = 1 / (4 * nc + 2)
        elif table.kind == "continuous":
            m1, sd1, n1 = v["treat_mean"], v["treat_sd"], v["treat_n"]
            m2, sd2, n2 = v["control_mean"], v["control_sd"], v["control_n"]
            if measure == "MD":
                yi = m1 - m2
                vi = sd1**2 / n1 + sd2**2 / n2
            elif measure == "SMD":
                mi = n1 + n2 - 2
                for i in np.flatnonzero(mi <= 1):
                    raise StatsInputError(
                        f"{table.locations[i]}, columns 'treat_n'/'control_n': SMD needs at "
                        f"least 4 participants in total; this study has {n1[i] + n2[i]:g}"
                    )
                sdpi = np.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / mi)
                cmi = np.exp(gammaln(mi / 2) - np.log(np.sqrt(mi / 2)) - gammaln((mi - 1) / 2))
                yi = cmi * (m1 - m2) / sdpi
                vi = 1 / n1 + 1 / n2 + yi**2 / (2 * (n1 + n2))
            else:  # ROM
                for col, arr in (("treat_mean", m1), ("control_mean", m2)):
                    for i in np.flatnonzero(arr <= 0):
                        raise StatsInputError(
                            f"{table.locations[i]}, column '{col}': the ratio of means needs "
                            f"positive means, got {arr[i]:g}; use MD or SMD instead"
                        )
                yi = np.log(m1 / m2)
                vi = sd1**2 / (n1 * m1**2) + sd2**2 / (n2 * m2**2)
        else:
            yi, vi = _generic(table, scale)
    for i in table.missing:
        # an empty cell leaves the other cells' arithmetic finite sometimes (GEN: yi without its se)
        yi[i] = np.nan
        vi[i] = np.nan
    for i in range(k):
        if i in excluded:
            continue
        if not (np.isfinite(yi[i]) and np.isfinite(vi[i]) and vi[i] > 0):
            excluded[i] = (
                "effect size not estimable (a zero cell with no zero-cell correction, or a "
                "zero variance); excluded — use the default correction (add=0.5, to='only0')"
            )
            yi[i] = np.nan
            vi[i] = np.nan
    return EffectSizes(yi=np.asarray(yi, float), vi=np.asarray(vi, float), ni=ni, excluded=excluded)


def _add_to_tables(cells, add, to, eligible):
    cells = [c.astype(float).copy() for c in cells]
    if to == "none" or add == 0:
        return cells
    has0 = np.zeros(len(cells[0]), bool)
    for c in cells:
        has0 |= c == 0
    has0 &= eligible
    if to == "all":
        target = eligible
    elif to == "only0":
        target = has0
    else:  # if0all
        target = eligible if has0.any() else np.zeros_like(has0)
    for c in cells:
        c[target] += add
    return cells


def _generic(table: StudyTable, scale: str):
    if scale not in ("ratio", "difference"):
        raise StatsInputError(
            f"scale={scale!r} is unknown; use 'ratio' (estimates such as OR, RR, HR on the "
            f"ratio scale) or 'difference' (MD, RD, log ratios)"
        )
    v = table.values
    est = v["estimate"]
    if scale == "ratio":
        cols = ["estimate"] + (["ci_lower", "ci_upper"] if "ci_lower" in v else [])
        for col in cols:
            for i in np.flatnonzero(v[col] <= 0):
                raise StatsInputError(
                    f"{table.locations[i]}, column '{col}': {v[col][i]:g} is not a ratio "
                    f"(ratios are > 0); give ratios on their natural scale or use "
                    f"scale='difference' for log ratios"
                )
        yi = np.log(est)
        if "se" in v:
            se = v["se"]
        else:
            se = (np.log(v["ci_upper"]) - np.log(v["ci_lower"])) / (2 * CI_Z)
    else:
        yi = est.astype(float).copy()
        se = v["se"] if "se" in v else (v["ci_upper"] - v["ci_lower"]) / (2 * CI_Z)
    return yi, se**2
