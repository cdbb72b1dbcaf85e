"""Brent's root finder exactly as R's uniroot() runs it, so tau2 from the Paule-Mandel
estimator lands on the same point as metafor's (which stops at tol = eps^0.25, ~1.2e-4).

Reference: Brent RP (1973) Algorithms for Minimization without Derivatives, ch. 4;
R source src/library/stats/src/zeroin.c (R_zeroin2), which this follows line by line.
"""

from __future__ import annotations

from collections.abc import Callable

EPSILON = 2.220446049250313e-16
R_UNIROOT_TOL = EPSILON**0.25


def zeroin(
    f: Callable[[float], float], lower: float, upper: float, tol: float = R_UNIROOT_TOL, maxiter: int = 1000
) -> tuple[float, bool]:
    """Find a root of `f` in [lower, upper] as R's uniroot(f, c(lower, upper), tol=tol) does.

    Parameters
    ----------
    f : callable
        Continuous function with f(lower) and f(upper) of opposite sign (or one of them zero).
    lower, upper : float
        The bracket.
    tol : float
        R's `tol` (default .Machine$double.eps^0.25).
    maxiter : int
        R's `maxiter`.

    Returns
    -------
    (root, converged)
    """
    a, b = lower, upper
    fa, fb = f(a), f(b)
    if fa == 0.0:
        return a, True
    if fb == 0.0:
        return b, True
    if (fa > 0) == (fb > 0):
        raise ValueError("f(lower) and f(upper) have the same sign")
    c, fc = a, fa
    for _ in range(maxiter + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * EPSILON * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0.0:
            return b, True
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b, False
