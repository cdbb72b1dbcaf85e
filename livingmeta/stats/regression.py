"""Meta-regression with study-level moderators (rma.uni with `mods`), for Egger's test as metafor's
regtest(model = "rma") and for the subgroup moderator test with one shared tau2.

Symbols: ``y, v`` (k,) study effect sizes and sampling variances; ``X`` (k, p) design matrix (first
column the intercept); ``w`` weights 1 / (v + tau2); ``b`` coefficients, ``vb`` their covariance;
``qe`` the test for residual heterogeneity (Q with common-effect weights 1 / v, k - p df); ``qm`` the
omnibus test of the coefficients `btt`.

References: rma.uni() with moderators in metafor 3.8-1 (Viechtbauer 2010, J Stat Softw 36(3));
Viechtbauer W (2005) J Educ Behav Stat 30:261-293 (Fisher scoring for ML/REML with moderators);
Knapp G, Hartung J (2003) Stat Med 22:2693-2710 (t and F tests in meta-regression);
Egger M et al. (1997) BMJ 315:629-634 and Sterne JAC, Egger M (2005) in Publication Bias in
Meta-Analysis, ch. 6 (the regression test with the standard error as moderator).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from livingmeta.stats import distributions as stats  # scipy.stats costs ~1 s to import; same floats

from livingmeta.stats.heterogeneity import DEFAULT_CONTROL, TAU2_METHODS
from livingmeta.stats.root_finding import R_UNIROOT_TOL, zeroin

COMMON = ("FE", "MH", "PETO")


@dataclass(frozen=True)
class MetaRegression:
    """One fitted meta-regression (see the module docstring for the symbols).

    ``df`` is k - p; ``test`` "z" (normal and chi-square) or "knha" (t with k - p df, F for qm);
    ``qm_df2`` is k - p under Knapp-Hartung and None otherwise.
    """

    k: int
    p: int
    method: str
    test: str
    tau2: float
    b: np.ndarray
    vb: np.ndarray
    se: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    qe: float
    qe_df: int
    qe_p: float
    qm: float
    qm_df: int
    qm_df2: int | None
    qm_p: float


def tau2_regression(y: np.ndarray, v: np.ndarray, X: np.ndarray, method: str, control: dict | None = None) -> float:
    """tau2 of the meta-regression y ~ X by `method`, as rma.uni(yi, vi, mods = X[:, 1:], method).

    DL, HE, SJ and PM solve their moment equations (PM: uniroot on the generalised Q = k - p);
    ML, REML and EB use Fisher scoring from the HE start, halving a step that would leave tau2 >= 0,
    until |change| <= threshold (1e-5), as metafor. FE, MH and PETO give 0.
    """
    con = dict(DEFAULT_CONTROL)
    con.update(control or {})
    k, p = X.shape
    if method in COMMON:
        return 0.0
    if method not in TAU2_METHODS:
        raise ValueError(f"unknown tau2 method {method}")

    def parts(t):
        w = 1 / (v + t)
        A = X.T @ (w[:, None] * X)
        Ainv = np.linalg.inv(A)
        b = Ainv @ (X.T @ (w * y))
        r = y - X @ b
        return w, Ainv, b, r

    if method == "DL":
        w, Ainv, b, r = parts(0.0)
        rss = np.sum(w * r * r)
        trp = w.sum() - np.trace(Ainv @ (X.T @ ((w * w)[:, None] * X)))
        return max(0.0, (rss - (k - p)) / trp)
    if method == "SJ":
        t0 = np.var(y, ddof=1) * (k - 1) / k
        w, Ainv, b, r = parts(t0)
        return max(0.0, t0 * np.sum(w * r * r) / (k - p)) if t0 > 0 else 0.0
    if method == "PM":

        def f(t):
            w, Ainv, b, r = parts(t)
            return float(np.sum(w * r * r) - (k - p))

        if f(0.0) < 0:
            return 0.0
        upper = con["tau2_max"]
        while f(upper) > 0 and upper < 1e12:
            upper *= 10
        return zeroin(f, 0.0, upper, tol=R_UNIROOT_TOL)[0]
    XtXi = np.linalg.inv(X.T @ X)
    r0 = y - X @ (XtXi @ (X.T @ y))
    he = (r0 @ r0 - (v.sum() - np.trace(XtXi @ (X.T @ (v[:, None] * X))))) / (k - p)
    if method == "HE":
        return max(0.0, he)
    t = max(0.0, he)
    for _ in range(con["maxiter"]):
        w, Ainv, b, r = parts(t)
        if method == "EB":
            adj = (np.sum(w * r * r) * k / (k - p) - k) / w.sum()
        else:
            yppy = np.sum((w * r) ** 2)
            B = Ainv @ (X.T @ ((w * w)[:, None] * X))
            if method == "ML":
                adj = (yppy - w.sum()) / np.sum(w * w)
            else:
                trp = w.sum() - np.trace(B)
                trpp = np.sum(w * w) - 2 * np.trace(Ainv @ (X.T @ ((w**3)[:, None] * X))) + np.trace(B @ B)
                adj = (yppy - trp) / trpp
        adj *= con["stepadj"]
        while t + adj < 0:
            adj /= 2
        new = t + adj
        if abs(new - t) <= con["threshold"]:
            return max(0.0, new)
        t = new
    return max(0.0, t)


def fit_meta_regression(
    y, v, X, method: str, test: str = "z", level: float = 0.95, btt=None, control: dict | None = None
) -> MetaRegression:
    """Fit y ~ X by weighted least squares with weights 1 / (v + tau2).

    Parameters
    ----------
    y, v : array (k,)
        Effect sizes and sampling variances (all finite, v > 0).
    X : array (k, p)
        Design matrix, first column the intercept; k > p.
    method : str
        FE (MH and PETO are treated as FE: the per-study effects are re-pooled) or a tau2 estimator.
    test : str
        "z", or "knha": vb scaled by sum w r^2 / (k - p), t tests with k - p df, qm as F(m, k - p).
    level : float
        Confidence level of the coefficient intervals.
    btt : sequence of int, optional
        Coefficients in the omnibus test qm; default all but the intercept.

    Returns
    -------
    MetaRegression (numbers as metafor's rma.uni: QE with weights 1/v, QM = b' vb^-1 b over btt,
    divided by m under Knapp-Hartung).
    """
    y, v, X = np.asarray(y, float), np.asarray(v, float), np.asarray(X, float)
    k, p = X.shape
    if k <= p:
        raise ValueError(f"a meta-regression with {p} coefficients needs more than {p} studies; there are {k}")
    method = "FE" if method in COMMON else method
    tau2 = tau2_regression(y, v, X, method, control)
    w = 1 / (v + tau2)
    A = X.T @ (w[:, None] * X)
    vb = np.linalg.inv(A)
    b = vb @ (X.T @ (w * y))
    df = k - p
    if test == "knha":
        r = y - X @ b
        rss = float(np.sum(w * r * r))
        s2w = 0.0 if rss <= np.finfo(float).eps else rss / df
        vb = s2w * vb
    se = np.sqrt(np.diag(vb))
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = b / se
    alpha = 1 - level
    if test == "knha":
        crit = stats.t.isf(alpha / 2, df)
        pval = 2 * stats.t.sf(np.abs(stat), df)
    else:
        crit = stats.norm.isf(alpha / 2)
        pval = 2 * stats.norm.sf(np.abs(stat))
    # residual heterogeneity, with common-effect weights whatever tau2 is (metafor's QE)
    w0 = 1 / v
    b0 = np.linalg.solve(X.T @ (w0[:, None] * X), X.T @ (w0 * y))
    qe = max(0.0, float(np.sum(w0 * (y - X @ b0) ** 2)))
    btt = list(range(1, p)) if btt is None else list(btt)
    m = len(btt)
    if m:
        bt = b[btt]
        qm = float(bt @ np.linalg.solve(vb[np.ix_(btt, btt)], bt))
    else:
        qm = float("nan")
    if test == "knha":
        qm = qm / m if m else qm
        qm_p = float(stats.f.sf(qm, m, df)) if m else float("nan")
        qm_df2 = df
    else:
        qm_p = float(stats.chi2.sf(qm, m)) if m else float("nan")
        qm_df2 = None
    return MetaRegression(
        k=k,
        p=p,
        method=method,
        test=test,
        tau2=float(tau2),
        b=b,
        vb=vb,
        se=se,
        statistic=stat,
        p_value=pval,
        ci_lower=b - crit * se,
        ci_upper=b + crit * se,
        qe=qe,
        qe_df=df,
        qe_p=float(stats.chi2.sf(qe, df)),
        qm=qm,
        qm_df=m,
        qm_df2=qm_df2,
        qm_p=qm_p,
    )
