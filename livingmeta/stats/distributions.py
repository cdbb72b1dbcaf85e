"""The few distribution functions the pooling code needs, on scipy.special instead of scipy.stats.

`scipy.stats` takes about a second to import (it builds every distribution); the command line pays that on
every `livingmeta meta`. Its norm/t/chi2 `sf`, `isf` and `ppf` are thin wrappers around these same
scipy.special functions (scipy 1.17: norm._sf = ndtr(-x), norm._isf = -ndtri(q), t._sf = stdtr(df, -x),
t._isf = -stdtrit(df, q), chi2._sf = chdtrc(df, x), chi2._isf = chdtri(df, p), chi2._ppf =
2*gammaincinv(df/2, p), f._sf = fdtrc(dfn, dfd, x)); this module calls them directly, with the wrappers' argument checks (an invalid
degree of freedom or probability gives nan; the support's ends give its bounds), so every number is the
same float. tests/test_stats_distributions.py compares them with scipy.stats on a grid, edges included.

Usage is the same as scipy.stats: `norm.sf(z)`, `norm.isf(q)`, `t.isf(q, df)`, `chi2.sf(q, df)`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special as sc


def _out(value: np.ndarray) -> Any:
    # scipy.stats returns a numpy scalar for scalar input and an array otherwise
    return value[()] if value.ndim == 0 else value


def _sf(x: Any, args: tuple, args_ok, lower: float, upper: float, fn) -> Any:
    """rv_continuous.sf: nan for bad arguments or x, 1 at and below the support, 0 at and above it."""
    x, *args = np.broadcast_arrays(np.asarray(x, dtype=float), *(np.asarray(a, dtype=float) for a in args))
    ok = np.broadcast_to(np.asarray(args_ok(*args), dtype=bool), x.shape)
    out = np.zeros(x.shape)
    out[~ok | np.isnan(x)] = np.nan
    out[ok & (x <= lower)] = 1.0
    inside = ok & (x > lower) & (x < upper)
    if inside.any():
        out[inside] = fn(x[inside], *(a[inside] for a in args))
    return _out(out)


def _quantile(q: Any, args: tuple, args_ok, at0: float, at1: float, fn) -> Any:
    """rv_continuous.isf/ppf: nan for bad arguments or q outside [0, 1], the support's bounds at 0 and 1."""
    q, *args = np.broadcast_arrays(np.asarray(q, dtype=float), *(np.asarray(a, dtype=float) for a in args))
    ok = np.broadcast_to(np.asarray(args_ok(*args), dtype=bool), q.shape)
    out = np.full(q.shape, np.nan)
    out[ok & (q == 0)] = at0
    out[ok & (q == 1)] = at1
    inside = ok & (q > 0) & (q < 1)
    if inside.any():
        out[inside] = fn(q[inside], *(a[inside] for a in args))
    return _out(out)


def _always(*args) -> bool:
    return True  # broadcast like an all-True mask


def _df_ok(df: np.ndarray) -> np.ndarray:
    return df > 0


class _Norm:
    """The standard normal distribution (scipy.stats.norm without loc/scale)."""

    @staticmethod
    def sf(x: Any) -> Any:
        """Survival function 1 - Phi(x)."""
        return _sf(x, (), _always, -np.inf, np.inf, lambda x: sc.ndtr(-x))

    @staticmethod
    def isf(q: Any) -> Any:
        """The z with sf(z) = q."""
        return _quantile(q, (), _always, np.inf, -np.inf, lambda q: -sc.ndtri(q))

    @staticmethod
    def ppf(q: Any) -> Any:
        """The z with cdf(z) = q."""
        return _quantile(q, (), _always, -np.inf, np.inf, sc.ndtri)


class _T:
    """Student's t distribution (scipy.stats.t without loc/scale)."""

    @staticmethod
    def sf(x: Any, df: Any) -> Any:
        """Survival function."""
        return _sf(x, (df,), _df_ok, -np.inf, np.inf, lambda x, df: sc.stdtr(df, -x))

    @staticmethod
    def isf(q: Any, df: Any) -> Any:
        """The t with sf(t) = q."""
        return _quantile(q, (df,), _df_ok, np.inf, -np.inf, lambda q, df: -sc.stdtrit(df, q))


class _Chi2:
    """The chi-squared distribution (scipy.stats.chi2 without loc/scale)."""

    @staticmethod
    def sf(x: Any, df: Any) -> Any:
        """Survival function (1 at and below 0)."""
        return _sf(x, (df,), _df_ok, 0.0, np.inf, lambda x, df: sc.chdtrc(df, x))

    @staticmethod
    def isf(q: Any, df: Any) -> Any:
        """The x with sf(x) = q."""
        return _quantile(q, (df,), _df_ok, np.inf, 0.0, lambda q, df: sc.chdtri(df, q))

    @staticmethod
    def ppf(q: Any, df: Any) -> Any:
        """The x with cdf(x) = q."""
        return _quantile(q, (df,), _df_ok, 0.0, np.inf, lambda q, df: 2 * sc.gammaincinv(df / 2, q))


class _F:
    """The F distribution (scipy.stats.f without loc/scale): the Knapp-Hartung moderator test."""

    @staticmethod
    def sf(x: Any, dfn: Any, dfd: Any) -> Any:
        """Survival function (1 at and below 0)."""
        return _sf(x, (dfn, dfd), lambda a, b: (a > 0) & (b > 0), 0.0, np.inf, lambda x, a, b: sc.fdtrc(a, b, x))


norm = _Norm()
t = _T()
chi2 = _Chi2()
f = _F()
