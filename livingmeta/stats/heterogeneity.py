"""Between-study variance (tau2) estimators and the Q-profile interval, vectorised over subsets.

Symbols: ``Y`` (n, k) effect sizes, ``V`` (n, k) sampling variances, ``M`` (n, k) 1.0 where a
study belongs to the subset of that row and 0.0 elsewhere, ``kk`` (n,) studies per row,
``w`` weights. Every row is an independent meta-analysis (the full data, one leave-one-out
subset, one cumulative step), so leave-one-out and cumulative analyses cost one pass each.

All estimators follow rma.uni() in metafor 3.8-1 for intercept-only models (p = 1), including
its iteration: Fisher scoring from the Hedges (HE) start with step halving at the tau2 >= 0
boundary, stopping when |change| <= 1e-5 (threshold) and failing after 100 iterations.

References: DerSimonian R, Laird N (1986) Control Clin Trials 7:177-188 (DL);
Hedges LV, Olkin I (1985) Statistical Methods for Meta-Analysis (HE);
Sidik K, Jonkman JN (2005) J Biopharm Stat 15:823-838 (SJ);
Viechtbauer W (2005) J Educ Behav Stat 30:261-293 (ML, REML, Fisher scoring);
Paule RC, Mandel J (1982) J Res Natl Bur Stand 87:377-385 (PM);
Morris CN (1983) J Am Stat Assoc 78:47-55 (EB);
Viechtbauer W (2007) Stat Med 26:37-52 (Q-profile confidence interval for tau2).
"""

from __future__ import annotations

import numpy as np
from livingmeta.stats import distributions as stats  # scipy.stats costs ~1 s to import; same floats

from livingmeta.stats.root_finding import R_UNIROOT_TOL, zeroin

TAU2_METHODS = ("DL", "REML", "ML", "PM", "SJ", "HE", "EB")
DEFAULT_CONTROL = {"threshold": 1e-5, "maxiter": 100, "stepadj": 1.0, "tau2_max": 100.0}


def _weighted(w, Y):
    sw = w.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = (w * Y).sum(1) / sw
    return sw, mu


def generalized_q(Y, V, M, tau2):
    """Return sum w (y - mu_w)^2 with w = 1/(v + tau2) per row (the generalised Q statistic)."""
    w = M / (V + tau2[:, None])
    sw, mu = _weighted(w, Y)
    return (w * (Y - mu[:, None]) ** 2).sum(1)


def _mad_squared_times_10(Y, M):
    out = np.empty(len(Y))
    for i in range(len(Y)):
        y = Y[i][M[i] > 0]
        med = np.median(y) if len(y) else 0.0
        out[i] = 10 * (1.4826 * np.median(np.abs(y - med))) ** 2 if len(y) else 0.0
    return out


def estimate_tau2(Y, V, M, kk, method, control=None, sums=None):
    """Estimate tau2 for each row.

    Parameters
    ----------
    Y, V, M : ndarray (n, k)
        Effect sizes, sampling variances, membership (1.0/0.0) of each study in each row.
    kk : ndarray (n,)
        Number of studies per row (rows with kk < 2 get tau2 = 0).
    method : str
        DL, REML, ML, PM, SJ, HE or EB.
    control : dict, optional
        threshold (1e-5), maxiter (100), stepadj (1), tau2_max (100, widened to 10*mad(y)^2
        as metafor does).
    sums : dict, optional
        Per-row sums already known (from subset updating, see updating.py): ``q`` (Cochran's Q),
        ``swf`` and ``swf2`` (sum of 1/v and of 1/v^2), ``rss`` (sum (y - ybar)^2, unweighted) and
        ``sv`` (sum v). DL and HE then need no pass over (n, k) arrays, SJ one, and REML/ML/EB start
        from the same HE value as without them.

    Returns
    -------
    (tau2, ok, messages): tau2 (n,), ok (n,) False where the iteration failed, and a
    per-row message for rows that needed one.
    """
    con = dict(DEFAULT_CONTROL)
    con.update(control or {})
    n = len(Y)
    tau2 = np.zeros(n)
    ok = np.ones(n, bool)
    messages: dict[int, str] = {}
    rows = np.flatnonzero(kk >= 2)
    if len(rows) == 0:
        return tau2, ok, messages
    all_rows = len(rows) == n
    kr = kk[rows].astype(float)
    # fancy indexing copies the (n, k) arrays: skip it when every row takes part
    Yr, Vr, Mr = (Y, V, M) if all_rows else (Y[rows], V[rows], M[rows])
    pre = None if sums is None else {key: np.asarray(val)[rows] for key, val in sums.items()}
    with np.errstate(invalid="ignore", divide="ignore"):
        if method == "DL" and pre is not None:
            t = (pre["q"] - (kr - 1)) / (pre["swf"] - pre["swf2"] / pre["swf"])
        elif method == "DL":
            w = Mr / Vr
            sw, mu = _weighted(w, Yr)
            q = (w * (Yr - mu[:, None]) ** 2).sum(1)
            t = (q - (kr - 1)) / (sw - (w * w).sum(1) / sw)
        elif method in ("HE", "REML", "ML", "EB"):
            if pre is None:
                ybar = (Mr * Yr).sum(1) / kr
                rss = (Mr * (Yr - ybar[:, None]) ** 2).sum(1)
                sv = (Mr * Vr).sum(1)
            else:
                rss, sv = pre["rss"], pre["sv"]
            t = (rss - (sv - sv / kr)) / (kr - 1)
            if method != "HE":
                t, good, msg = _fisher_scoring(Yr, Vr, Mr, kr, np.maximum(0.0, t), method, con)
                ok[rows] = good
                for j, m in msg.items():
                    messages[int(rows[j])] = m
                if method in ("ML", "REML"):
                    t = _ll0_check(Yr, Vr, Mr, kr, np.maximum(0.0, t), method, good, con, rows, messages)
        elif method == "SJ":
            if pre is None:
                ybar = (Mr * Yr).sum(1) / kr
                t0 = (Mr * (Yr - ybar[:, None]) ** 2).sum(1) / kr
            else:
                t0 = pre["rss"] / kr
            qg = generalized_q(Yr, Vr, Mr, t0)
            t = np.where(t0 > 0, t0 * qg / (kr - 1), 0.0)
        elif method == "PM":
            t = np.empty(len(rows))
            tau2_max = np.maximum(con["tau2_max"], _mad_squared_times_10(Yr, Mr))
            for j in range(len(rows)):
                t[j], good, msg = _paule_mandel(Yr[j], Vr[j], Mr[j], kr[j], tau2_max[j], con)
                if not good:
                    ok[rows[j]] = False
                if msg:
                    messages[int(rows[j])] = msg
        else:
            raise ValueError(f"unknown tau2 method {method}")
    tau2[rows] = np.maximum(0.0, t)
    return tau2, ok, messages


def _fisher_scoring(Y, V, M, kk, start, method, con):
    n = len(Y)
    tau2 = start.astype(float).copy()
    active = np.ones(n, bool)
    good = np.zeros(n, bool)
    iters = np.zeros(n, int)
    messages: dict[int, str] = {}
    while active.any():
        idx = np.flatnonzero(active)
        t = tau2[idx]
        Ya, Ma, ka = Y[idx], M[idx], kk[idx]
        w = Ma / (V[idx] + t[:, None])
        sw, mu = _weighted(w, Ya)
        r = Ya - mu[:, None]
        if method == "EB":
            ypy = (w * r * r).sum(1)
            adj = (ypy * ka / (ka - 1) - ka) / sw
        else:
            w2 = w * w
            sw2 = w2.sum(1)
            yppy = (w2 * r * r).sum(1)
            if method == "ML":
                adj = (yppy - sw) / sw2
            else:
                sw3 = (w2 * w).sum(1)
                trp = sw - sw2 / sw
                trpp = sw2 - 2 * sw3 / sw + sw2**2 / sw**2
                adj = (yppy - trp) / trpp
        adj = np.where(np.isnan(adj), 0.0, adj) * con["stepadj"]
        # metafor halves the step until tau2 stays inside the parameter space
        bad = t + adj < 0
        while bad.any():
            adj[bad] /= 2
            bad = t + adj < 0
        new = t + adj
        change = np.abs(t - new)
        tau2[idx] = new
        iters[idx] += 1
        done = change <= con["threshold"]
        over = iters[idx] > con["maxiter"]
        good[idx[done & ~over]] = True
        active[idx[done | over]] = False
        for j in idx[over]:
            messages[int(j)] = f"{method} Fisher scoring did not converge in {con['maxiter']} iterations"
    return tau2, good, messages


def _ll0_check(Y, V, M, kk, tau2, method, good, con, rows, messages):
    # metafor's guard against a local maximum: if the likelihood at tau2 = 0 is higher, use 0
    def loglik(t):
        w = M / (V + t[:, None])
        sw, mu = _weighted(w, Y)
        rss = (w * (Y - mu[:, None]) ** 2).sum(1)
        slog = (M * np.log(V + t[:, None])).sum(1)
        if method == "ML":
            return -0.5 * kk * np.log(2 * np.pi) - 0.5 * slog - 0.5 * rss
        return -0.5 * (kk - 1) * np.log(2 * np.pi) - 0.5 * slog - 0.5 * np.log(sw) - 0.5 * rss

    ll0 = loglik(np.zeros(len(tau2)))
    ll = loglik(tau2)
    stuck = good & (ll0 - ll > R_UNIROOT_TOL) & (tau2 > con["threshold"])
    for j in np.flatnonzero(stuck):
        messages[int(rows[j])] = "Fisher scoring may have stopped at a local maximum; tau2 set to 0 (as metafor does)"
    return np.where(stuck, 0.0, tau2)


def _paule_mandel(y, v, m, k, tau2_max, con):
    sel = m > 0
    y, v = y[sel], v[sel]

    def q_minus(t):
        w = 1 / (v + t)
        mu = (w * y).sum() / w.sum()
        return float((w * (y - mu) ** 2).sum() - (k - 1))

    if q_minus(0.0) < 0:
        return 0.0, True, None
    upper = tau2_max
    note = None
    if q_minus(upper) > 0:
        # metafor stops here ("tau2.max too low"); widen the bracket instead and say so
        while q_minus(upper) > 0 and upper < 1e12:
            upper *= 10
        if q_minus(upper) > 0:
            return np.nan, False, "PM: no root of the generalised Q equation below 1e12"
        note = f"PM: tau2 exceeds metafor's default search limit; search interval widened to [0, {upper:g}]"
    root, converged = zeroin(q_minus, 0.0, upper, tol=R_UNIROOT_TOL, maxiter=con["maxiter"])
    if not converged:
        return root, False, f"PM root finding did not converge in {con['maxiter']} iterations"
    return root, True, note


def qprofile_ci(Y, V, M, kk, level=0.95):
    """Q-profile confidence interval for tau2 (Viechtbauer 2007), solved exactly per row.

    The bounds solve Q_gen(tau2) = chi2 quantiles with k-1 df; a bound is 0 when
    Q_gen(0) is already below its quantile. Returns (lower, upper), NaN where k < 2.
    """
    n = len(Y)
    lower = np.full(n, np.nan)
    upper = np.full(n, np.nan)
    rows = np.flatnonzero(kk >= 2)
    if len(rows) == 0:
        return lower, upper
    Yr, Vr, Mr = (Y, V, M) if len(rows) == n else (Y[rows], V[rows], M[rows])
    df = kk[rows] - 1.0
    alpha = 1 - level
    q0 = generalized_q(Yr, Vr, Mr, np.zeros(len(rows)))
    for crit, out in ((stats.chi2.isf(alpha / 2, df), lower), (stats.chi2.ppf(alpha / 2, df), upper)):
        res = np.zeros(len(rows))
        need = q0 > crit
        if need.any():
            res[need] = _solve_decreasing(Yr[need], Vr[need], Mr[need], crit[need])
        out[rows] = res
    return lower, upper


def _solve_decreasing(Y, V, M, target):
    # Q_gen(t) decreases in t: bracket the root, then Newton steps kept inside the bracket
    # (bisection otherwise); rows drop out of the work arrays as soon as they converge
    n = len(Y)
    lo = np.zeros(n)
    hi = np.full(n, 100.0)
    need = np.arange(n)
    for _ in range(60):
        above = generalized_q(Y[need], V[need], M[need], hi[need]) > target[need]
        if not above.any():
            break
        need = need[above]
        lo[need] = hi[need]
        hi[need] *= 10
    t = lo.copy()
    active = np.arange(n)
    for _ in range(200):
        if len(active) == 0:
            break
        ta = t[active]
        # fancy indexing copies the (rows, k) arrays: only pay for it once rows have converged
        Ma, Va, Ya = (M, V, Y) if len(active) == n else (M[active], V[active], Y[active])
        w = Ma / (Va + ta[:, None])
        sw, mu = _weighted(w, Ya)
        r = Ya - mu[:, None]
        wr2 = w * r * r
        q = wr2.sum(1)
        qp = -(w * wr2).sum(1)
        f = q - target[active]
        lo[active] = np.where(f > 0, ta, lo[active])
        hi[active] = np.where(f <= 0, ta, hi[active])
        # Newton on 1/Q(t), which is close to linear in t (Q ~ sum r^2 / (v + t)): few steps
        with np.errstate(divide="ignore", invalid="ignore"):
            step = ta - (1 / q - 1 / target[active]) / (-qp / q**2)
        la, ha = lo[active], hi[active]
        inside = (step > la) & (step < ha) & np.isfinite(step)
        new = np.where(inside, step, (la + ha) / 2)
        t[active] = new
        # relative: the bounds feed I2 and H2, which divide tau2 by the (often small) typical variance vt
        active = active[np.abs(new - ta) > 1e-14 * np.abs(ta) + 1e-300]
    return t
