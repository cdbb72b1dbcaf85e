"""Pooling: inverse-variance (common and random effects), Mantel-Haenszel and Peto, for many
subsets of the same studies at once (full data, leave-one-out, cumulative).

Symbols: ``yi, vi`` study effect sizes and variances; ``w`` weights; ``tau2`` between-study
variance; ``q`` Cochran's Q with inverse-variance (common-effect) weights; ``vt`` metafor's
"typical" within-study variance (k-1) sum(w) / ((sum w)^2 - sum(w^2)).

References: rma.uni(), rma.mh() and rma.peto() in metafor 3.8-1 (Viechtbauer 2010, J Stat Softw
36(3)); Mantel N, Haenszel W (1959) J Natl Cancer Inst 22:719-748; Robins J, Breslow N,
Greenland S (1986) Biometrics 42:311-323 (variance of the MH log OR); Greenland S, Robins JM
(1985) Biometrics 41:55-68 (MH log RR); Sato T, Greenland S, Robins JM (1989) Biometrics
45:1323-1324 (MH RD variance); Yusuf S et al. (1985) Prog Cardiovasc Dis 27:335-371 (Peto);
Hartung J, Knapp G (2001) Stat Med 20:3875-3889 (Knapp-Hartung); Higgins JPT, Thompson SG
(2002) Stat Med 21:1539-1558 (I2, H2); Riley RD et al. (2011) BMJ 342:d549 (prediction interval);
Miller JJ (1978) Am Stat 32:138 (PFT back-transform with the harmonic mean n).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from livingmeta.stats import distributions as stats  # scipy.stats costs ~1 s to import; same floats

from livingmeta.stats.effect_sizes import EffectSizes
from livingmeta.stats.heterogeneity import TAU2_METHODS, estimate_tau2, qprofile_ci
from livingmeta.stats.inputs import StudyTable
from livingmeta.stats.result import MetaResult, StudyList
from livingmeta.stats.updating import SubsetLayout

COMMON_METHODS = ("FE", "MH", "PETO")
METHODS = COMMON_METHODS + TAU2_METHODS
CHUNK_CELLS = 2_000_000


@dataclass(frozen=True)
class FitOptions:
    """The model options of one pooling call, shared by every subset it fits.

    measure, method, test, level, control, scale: as meta_analyze; tau2_ci: compute the Q-profile
    interval of tau2 (and from it those of I2 and H2) for random-effects methods.
    """

    measure: str
    method: str
    test: str = "z"
    level: float = 0.95
    control: dict | None = None
    scale: str = "difference"
    tau2_ci: bool = True


def back_transform(measure: str, scale: str, x: np.ndarray, nhm: np.ndarray | None = None):
    """Back-transform `x` from the analysis scale; None when the measure has none.

    exp for RR, OR, PETO, ROM and GEN ratios; inverse logit for PLO; sin^2 for PAS (clipped
    to [0, 1]); the inverse Freeman-Tukey transform with the harmonic mean n for PFT
    (Miller 1978), as metafor's transf.ipft.hm.
    """
    x = np.asarray(x, float)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if measure in ("RR", "OR", "PETO", "ROM") or (measure == "GEN" and scale == "ratio"):
            return np.exp(x)
        if measure == "PLO":
            return 1 / (1 + np.exp(-x))
        if measure == "PAS":
            z = np.sin(x) ** 2
            z = np.where(x < 0, 0.0, z)
            return np.where(x > np.arcsin(1.0), 1.0, z)
        if measure == "PFT":
            n = nhm
            s2 = np.sin(2 * x)
            z = 0.5 * (1 - np.sign(np.cos(2 * x)) * np.sqrt(1 - (s2 + (s2 - 1 / s2) / n) ** 2))
            top = 0.5 * (np.arcsin(np.sqrt(n / (n + 1))) + np.arcsin(np.sqrt((n + 1) / (n + 1))))
            bottom = 0.5 * (np.arcsin(np.sqrt(0 / (n + 1))) + np.arcsin(np.sqrt(1 / (n + 1))))
            z = np.where(x > top, 1.0, z)
            return np.where(x < bottom, 0.0, z)
    return None


def study_back_transform(measure: str, scale: str, ni: np.ndarray | None):
    """A per-study back-transform ``f(values, index) -> values`` for StudyList, or None when the
    measure has none.

    As `back_transform`, except that PFT uses each study's own n (metafor's transf.ipft with
    ni = the study's total, Miller 1978), so a study's own yi maps back to exactly xi / ni.
    """
    if measure == "PFT":
        if ni is None:
            return None
        n_all = np.asarray(ni, float)
        return lambda x, idx: back_transform("PFT", scale, x, n_all[idx])
    if back_transform(measure, scale, np.zeros(1)) is None:
        return None
    return lambda x, idx: back_transform(measure, scale, x)


def fit_subsets(
    table: StudyTable,
    es: EffectSizes,
    members: np.ndarray,
    measure: str,
    method: str,
    test: str,
    level: float,
    control: dict | None = None,
    scale: str = "difference",
    labels_warnings: list[list[str]] | None = None,
    tau2_ci: bool = True,
    layout: SubsetLayout | None = None,
) -> list[MetaResult]:
    """Pool every subset of studies given by the rows of `members`.

    Parameters
    ----------
    table : StudyTable
    es : EffectSizes
        yi/vi for all studies (NaN for studies that cannot contribute).
    members : ndarray of bool, shape (n, k)
        Row r selects the studies of analysis r.
    measure, method, test, level, control, scale : as meta_analyze.
    labels_warnings : optional extra warnings per row.
    tau2_ci : bool
        Compute the Q-profile confidence interval of tau2 (random-effects methods); False leaves
        tau2_ci_lower/upper None and saves most of the time of a random-effects fit.
    layout : SubsetLayout, optional
        When the rows are the leave-one-out or cumulative subsets (exactly ``layout.members()``), the
        sums of the closed-form quantities are updated in O(k) per subset instead of recomputed.

    Returns
    -------
    list of MetaResult, one per row of `members`.
    """
    members = np.asarray(members, bool)
    n, k = members.shape
    results: list[MetaResult] = []
    opts = FitOptions(
        measure=measure, method=method, test=test, level=level, control=control, scale=scale, tau2_ci=tau2_ci
    )
    step = max(1, CHUNK_CELLS // max(k, 1))
    for start in range(0, n, step):
        block = members[start : start + step]
        extra = None if labels_warnings is None else labels_warnings[start : start + step]
        sums = None if layout is None else _LayoutSums(layout, slice(start, start + step))
        if method in ("MH", "PETO"):
            results.extend(_fit_counts(table, es, block, opts, extra=extra, sums=sums))
        else:
            results.extend(_fit_inverse_variance(table, es, block, opts, extra=extra, sums=sums))
    return results


class _LayoutSums:
    """Row sums for one block of rows of a SubsetLayout (the rows `rows` of the whole layout)."""

    def __init__(self, layout: SubsetLayout, rows: slice):
        self.layout, self.rows = layout, rows

    def __call__(self, x):
        return self.layout.sums(x)[self.rows]

    def moments(self, w, y):
        return tuple(a[self.rows] for a in self.layout.weighted_moments(w, y))


class _MatrixSums:
    """Row sums over the members of each row of `block`, by matrix products (any subsets)."""

    def __init__(self, block):
        self.Mf = block.astype(float)

    def __call__(self, x):
        return self.Mf @ np.asarray(x, float)


def _study_notes(table, es, block):
    notes = []
    excluded = sorted(es.excluded)
    for row in block:
        notes.append(
            [f"study '{table.studies[i]}' ({table.locations[i]}): {es.excluded[i]}" for i in excluded if row[i]]
        )
    return notes


def _heterogeneity_fe(q, df):
    with np.errstate(invalid="ignore", divide="ignore"):
        i2 = np.where(q > 0, np.maximum(0.0, 100 * (q - df) / q), 0.0)
        h2 = q / df
    return i2, h2


def _fit_inverse_variance(
    table: StudyTable,
    es: EffectSizes,
    block: np.ndarray,
    opts: FitOptions,
    *,
    extra: list[list[str]] | None = None,
    sums=None,
) -> list[MetaResult]:
    """Inverse-variance pooling (FE or random effects) of every row of `block`; `sums` (a _LayoutSums)
    replaces (n, k) passes by subset sums where the quantity allows."""
    measure, method, test, level = opts.measure, opts.method, opts.test, opts.level
    control, scale, tau2_ci = opts.control, opts.scale, opts.tau2_ci
    yi, vi = es.yi, es.vi
    valid = np.isfinite(yi)
    n = len(block)
    random = method in TAU2_METHODS
    # the (n, k) arrays are only built when a quantity cannot come from subset sums
    arrays = {}

    def nk():
        if not arrays:
            M = block & valid
            arrays.update(M=M, Mf=M.astype(float), Y=np.where(M, yi, 0.0), V=np.where(M, vi, 1.0))
        return arrays["Y"], arrays["V"], arrays["Mf"]

    notes = _study_notes(table, es, block)
    if extra is not None:
        notes = [a + list(b) for a, b in zip(notes, extra)]
    alpha = 1 - level
    zcrit = stats.norm.isf(alpha / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        if sums is None:
            Y, V, Mf = nk()
            kk = arrays["M"].sum(1)
            wf = Mf / V
            swf = wf.sum(1)
            muf = (wf * Y).sum(1) / swf
            q = np.maximum(0.0, (wf * (Y - muf[:, None]) ** 2).sum(1))
            swf2 = (wf * wf).sum(1)
            pre = None
        else:
            w1 = np.where(valid, 1 / np.where(valid, vi, 1.0), 0.0)
            kk = np.rint(sums(valid.astype(float))).astype(int)
            swf, muf, q = sums.moments(w1, yi)
            swf2 = sums(w1 * w1)
            _, _, rss = sums.moments(valid.astype(float), yi)
            pre = {"q": q, "swf": swf, "swf2": swf2, "rss": rss, "sv": sums(np.where(valid, vi, 0.0))}
        df = kk - 1.0
        if random:
            Y, V, Mf = nk()
            tau2, ok, messages = estimate_tau2(Y, V, Mf, kk, method, control, pre)
            failed = np.flatnonzero(~ok)
            if len(failed):
                dl, _, _ = estimate_tau2(Y[failed], V[failed], Mf[failed], kk[failed], "DL")
                tau2[failed] = dl
            for r, msg in messages.items():
                notes[r].append(msg + ("; fell back to the DerSimonian-Laird estimate" if not ok[r] else ""))
        else:
            tau2 = np.zeros(n)
        if random or sums is None:
            Y, V, Mf = nk()
            w = Mf / (V + tau2[:, None])
            sw = w.sum(1)
            est = (w * Y).sum(1) / sw
        else:
            w, sw, est = None, swf, muf
        se = np.sqrt(1 / sw)
        knha = np.full(n, test == "knha")
        if test == "knha":
            for r in np.flatnonzero(kk < 2):
                notes[r].append("Knapp-Hartung needs k >= 2; the z test is used")
            knha &= kk >= 2
            # with common-effect weights the weighted residual sum of squares is Cochran's Q
            rss_w = q if w is None else (w * (Y - est[:, None]) ** 2).sum(1)
            s2w = np.where(rss_w <= np.finfo(float).eps, 0.0, rss_w / np.maximum(df, 1))
            se = np.where(knha, np.sqrt(s2w / sw), se)
        crit = np.where(knha, stats.t.isf(alpha / 2, np.maximum(df, 1)), zcrit)
        stat = est / se
        pval = np.where(knha, 2 * stats.t.sf(np.abs(stat), np.maximum(df, 1)), 2 * stats.norm.sf(np.abs(stat)))
        ci_lo, ci_hi = est - crit * se, est + crit * se
        t2lo = t2hi = i2lo = i2hi = h2lo = h2hi = np.full(n, np.nan)
        if random:
            vt = df * swf / (swf**2 - swf2)
            i2 = 100 * tau2 / (vt + tau2)
            h2 = tau2 / vt + 1
            pi_half = crit * np.sqrt(se**2 + tau2)
            pi_lo, pi_hi = est - pi_half, est + pi_half
            if tau2_ci:
                t2lo, t2hi = qprofile_ci(Y, V, Mf, kk, level)
            # confint.rma.uni: I2 and H2 are monotone in tau2, so their bounds are the tau2 bounds mapped
            i2lo, i2hi = 100 * t2lo / (vt + t2lo), 100 * t2hi / (vt + t2hi)
            h2lo, h2hi = t2lo / vt + 1, t2hi / vt + 1
        else:
            i2, h2 = _heterogeneity_fe(q, df)
            pi_lo = pi_hi = np.full(n, np.nan)
        qp = stats.chi2.sf(q, np.maximum(df, 1))
    small = kk < 2
    q = q.copy()
    for arr in (q, qp, i2, h2, pi_lo, pi_hi, t2lo, t2hi, i2lo, i2hi, h2lo, h2hi):
        arr[small] = np.nan
    nhm = None
    if measure == "PFT":
        with np.errstate(divide="ignore", invalid="ignore"):
            if sums is None:
                nhm = kk / (arrays["Mf"] / np.where(arrays["M"], es.ni, 1.0)).sum(1)
            else:
                nhm = kk / sums(np.where(valid, 1 / np.where(valid, es.ni, 1.0), 0.0))
    bt = {
        key: back_transform(measure, scale, arr, nhm)
        for key, arr in (
            ("estimate", est),
            ("ci_lower", ci_lo),
            ("ci_upper", ci_hi),
            ("pi_lower", pi_lo),
            ("pi_upper", pi_hi),
        )
    }
    participants = _participants(table, block, sums)
    bt = {key: (None if arr is None else arr.tolist()) for key, arr in bt.items()}
    lists = {
        key: arr.tolist()
        for key, arr in (
            ("est", est),
            ("se", se),
            ("stat", stat),
            ("pval", pval),
            ("ci_lo", ci_lo),
            ("ci_hi", ci_hi),
            ("tau2", tau2),
            ("i2", i2),
            ("h2", h2),
            ("q", q),
            ("qp", qp),
            ("pi_lo", pi_lo),
            ("pi_hi", pi_hi),
            ("t2lo", t2lo),
            ("t2hi", t2hi),
            ("i2lo", i2lo),
            ("i2hi", i2hi),
            ("h2lo", h2lo),
            ("h2hi", h2hi),
        )
    }
    no_ci = random and not tau2_ci
    per_study = study_back_transform(measure, scale, es.ni)
    out = []
    for r in range(n):
        if kk[r] == 0:
            notes[r].append("no study in this analysis could contribute an effect size")
        t = lists["tau2"][r]

        def raw(idx, t=t):
            return 1 / (vi[idx] + t)

        out.append(
            MetaResult(
                k=int(kk[r]),
                measure=measure,
                method=method,
                test=test,
                estimate=lists["est"][r],
                se=lists["se"][r],
                statistic=lists["stat"][r],
                p_value=lists["pval"][r],
                ci_lower=lists["ci_lo"][r],
                ci_upper=lists["ci_hi"][r],
                tau2=t if kk[r] else None,
                i2=lists["i2"][r],
                h2=lists["h2"][r],
                q=lists["q"][r],
                q_df=None if small[r] else int(df[r]),
                q_p=lists["qp"][r],
                pi_lower=lists["pi_lo"][r],
                pi_upper=lists["pi_hi"][r],
                **{f"{key}_bt": (None if arr is None else arr[r]) for key, arr in bt.items()},
                participants=participants[r],
                tau2_ci_lower=None if no_ci else lists["t2lo"][r],
                tau2_ci_upper=None if no_ci else lists["t2hi"][r],
                i2_ci_lower=None if no_ci else lists["i2lo"][r],
                i2_ci_upper=None if no_ci else lists["i2hi"][r],
                h2_ci_lower=None if no_ci else lists["h2lo"][r],
                h2_ci_upper=None if no_ci else lists["h2hi"][r],
                warnings=tuple(notes[r]),
                studies=StudyList(
                    table.studies,
                    yi,
                    vi,
                    block[r].copy(),
                    raw,
                    zcrit,
                    n=table.participants,
                    back=per_study,
                    reasons=es.excluded,
                ),
            )
        )
    return out


def _participants(table, block, sums=None):
    if table.participants is None:
        return [None] * len(block)
    p = table.participants
    if table.missing:
        # a row with an empty cell is dropped from the model (as metafor drops rows with NA): neither k nor
        # the pooled participants count it; its own n is still listed with it
        p = np.where(table.incomplete, 0.0, p)
    if sums is not None:
        missing = np.isnan(p)
        # integer counts: running sums are exact, so they equal the per-row sums
        if np.all(np.mod(p[~missing], 1) == 0):
            total = sums(np.where(missing, 0.0, p))
            gaps = sums(missing.astype(float)) > 0
            kk = block.sum(1)
            return [None if kk[r] == 0 or gaps[r] else float(total[r]) for r in range(len(block))]
    out = []
    for row in block:
        vals = p[row]
        out.append(None if len(vals) == 0 or np.isnan(vals).any() else float(vals.sum()))
    return out


def _undefined_reason(method: str, measure: str, R, S, r: int) -> str:
    # say which sum vanished: "no events" is wrong for 7/11 vs 0/12, where the MH odds ratio is undefined
    # because no study has control events (S = sum b c / n = 0), while the tables do hold events
    if method == "PETO":
        return "Peto estimate undefined: no events (or no non-events) in the pooled tables"
    if measure == "OR" and R is not None:
        if not R[r] > 0 and not S[r] > 0:
            why = "no study has events in one arm together with non-events in the other"
        elif not S[r] > 0:
            why = "no study has both control events and treatment non-events (sum of b*c/n is 0; odds ratio infinite)"
        else:
            why = "no study has both treatment events and control non-events (sum of a*d/n is 0; odds ratio 0)"
        return (
            f"Mantel-Haenszel estimate undefined: {why}; an inverse-variance method (which adds 1/2 to "
            f"tables with a zero) gives an estimate"
        )
    if measure == "RR" and R is not None:
        why = (
            "no control events in any study (risk ratio infinite)"
            if R[r] > 0
            else "no treatment events in any study (risk ratio 0)"
            if S[r] > 0
            else "no events in any study"
        )
        return (
            f"Mantel-Haenszel estimate undefined: {why}; an inverse-variance method (which adds 1/2 to "
            f"tables with a zero) gives an estimate"
        )
    return "Mantel-Haenszel estimate undefined: no participants in the pooled tables"


def _fit_counts(
    table: StudyTable,
    es: EffectSizes,
    block: np.ndarray,
    opts: FitOptions,
    *,
    extra: list[list[str]] | None = None,
    sums=None,
) -> list[MetaResult]:
    """Mantel-Haenszel or Peto pooling of the raw 2x2 counts of every row of `block`."""
    measure, method, level = opts.measure, opts.method, opts.level
    v = table.values
    ai = v["treat_events"]
    ci = v["control_events"]
    n1 = v["treat_total"]
    n2 = v["control_total"]
    bi, di = n1 - ai, n2 - ci
    N = n1 + n2
    base_sum = _MatrixSums(block) if sums is None else sums
    incomplete = table.incomplete
    if incomplete.any():
        # rows with an empty cell contribute nothing to the pooled counts (their terms are NaN)
        def rowsum(x):
            return base_sum(np.where(incomplete, 0.0, x))
    else:
        rowsum = base_sum
    kk = (block & ~incomplete).sum(1)
    notes = _study_notes(table, es, block)
    if extra is not None:
        notes = [a + list(b) for a, b in zip(notes, extra)]
    zcrit = stats.norm.isf((1 - level) / 2)
    R = S = None
    with np.errstate(invalid="ignore", divide="ignore"):
        if method == "PETO":
            xt = ai + ci
            ei = xt * n1 / N
            vpeto = np.where(N > 1, xt * (bi + di) * (n1 / N) * (n2 / N) / (N - 1), 0.0)
            o_e = ai - ei
            sum_v = rowsum(vpeto)
            est = rowsum(o_e) / sum_v
            se = np.sqrt(1 / sum_v)
            contrib = np.where(vpeto > 0, o_e**2 / np.where(vpeto > 0, vpeto, 1), 0.0)
            q = np.maximum(0.0, rowsum(contrib) - rowsum(o_e) ** 2 / sum_v)
            undefined = ~(sum_v > 0)
            static_w = vpeto
        else:
            if measure == "OR":
                Ri, Si = ai * di / N, bi * ci / N
                R, S = rowsum(Ri), rowsum(Si)
                Pi, Qi = (ai + di) / N, (bi + ci) / N
                est = np.log(R / S)
                var = 0.5 * (rowsum(Pi * Ri) / R**2 + rowsum(Pi * Si + Qi * Ri) / (R * S) + rowsum(Qi * Si) / S**2)
                undefined = ~((R > 0) & (S > 0))
                static_w = Si
            elif measure == "RR":
                R, S = rowsum(ai * n2 / N), rowsum(ci * n1 / N)
                est = np.log(R / S)
                var = rowsum((n1 / N) * (n2 / N) * (ai + ci) - (ai / N) * ci) / (R * S)
                undefined = ~((R > 0) & (S > 0))
                static_w = ci * n1 / N
            elif measure == "RD":
                W = rowsum(n1 * n2 / N)
                est = rowsum(ai * (n2 / N) - ci * (n1 / N)) / W
                var = (
                    est * rowsum(ci * (n1 / N) ** 2 - ai * (n2 / N) ** 2 + (n1 / N) * (n2 / N) * (n2 - n1) / 2)
                    + rowsum(ai * (n2 - ci) / N + ci * (n1 - ai) / N) / 2
                ) / W**2
                undefined = ~(W > 0)
                static_w = n1 * n2 / N
            else:
                raise AssertionError(measure)
            se = np.sqrt(var)
            valid = np.isfinite(es.yi)
            wy = np.where(valid, 1 / np.where(valid, es.vi, 1), 0.0)
            yy = np.where(valid, es.yi, 0.0)
            if sums is None:
                q = np.array(
                    [
                        np.maximum(0.0, np.sum(wy[row & valid] * (yy[row & valid] - e) ** 2))
                        for row, e in zip(block, est)
                    ]
                )
            else:
                # sum w (y - e)^2 = sum w (y - mu)^2 + sum w (mu - e)^2 with mu the inverse-variance mean:
                # two non-negative terms, so no digits are lost when e is close to mu
                sw, mu, m2 = sums.moments(wy, yy)
                q = np.where(sw > 0, m2 + sw * (mu - est) ** 2, 0.0)
        stat = est / se
        pval = 2 * stats.norm.sf(np.abs(stat))
        ci_lo, ci_hi = est - zcrit * se, est + zcrit * se
    if method == "PETO":
        kq = np.rint(rowsum((vpeto > 0).astype(float))).astype(int)
    else:
        kq = np.rint(rowsum(np.isfinite(es.yi).astype(float))).astype(int)
    df = kq - 1.0
    qp = stats.chi2.sf(q, np.maximum(df, 1))
    i2, h2 = _heterogeneity_fe(q, df)
    small = kq < 2
    for arr in (q, qp, i2, h2):
        arr[small] = np.nan
    for arr in (est, se, stat, pval, ci_lo, ci_hi):
        arr[undefined] = np.nan
    for r in np.flatnonzero(undefined):
        notes[r].append(_undefined_reason(method, measure, R, S, r))
    bt = {
        key: back_transform(measure if method != "PETO" else "PETO", "difference", arr)
        for key, arr in (("estimate", est), ("ci_lower", ci_lo), ("ci_upper", ci_hi))
    }
    bt = {key: ([None] * len(block) if arr is None else arr.tolist()) for key, arr in bt.items()}
    participants = _participants(table, block, sums)
    lists = {
        key: arr.tolist()
        for key, arr in (
            ("est", est),
            ("se", se),
            ("stat", stat),
            ("pval", pval),
            ("ci_lo", ci_lo),
            ("ci_hi", ci_hi),
            ("i2", i2),
            ("h2", h2),
            ("q", q),
            ("qp", qp),
        )
    }
    per_study = study_back_transform(measure if method != "PETO" else "PETO", "difference", None)
    out = []
    for r in range(len(block)):
        out.append(
            MetaResult(
                k=int(kk[r]),
                measure=measure,
                method=method,
                test="z",
                estimate=lists["est"][r],
                se=lists["se"][r],
                statistic=lists["stat"][r],
                p_value=lists["pval"][r],
                ci_lower=lists["ci_lo"][r],
                ci_upper=lists["ci_hi"][r],
                tau2=0.0,
                i2=lists["i2"][r],
                h2=lists["h2"][r],
                q=lists["q"][r],
                q_df=None if small[r] else int(df[r]),
                q_p=lists["qp"][r],
                pi_lower=None,
                pi_upper=None,
                **{f"{key}_bt": arr[r] for key, arr in bt.items()},
                pi_lower_bt=None,
                pi_upper_bt=None,
                participants=participants[r],
                tau2_ci_lower=None,
                tau2_ci_upper=None,
                i2_ci_lower=None,
                i2_ci_upper=None,
                h2_ci_lower=None,
                h2_ci_upper=None,
                warnings=tuple(notes[r]),
                studies=StudyList(
                    table.studies,
                    es.yi,
                    es.vi,
                    block[r].copy(),
                    lambda idx: static_w[idx],
                    zcrit,
                    n=table.participants,
                    back=per_study,
                    reasons=es.excluded,
                ),
            )
        )
    return out
