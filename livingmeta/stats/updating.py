"""Subset sums for leave-one-out and cumulative analyses in O(k) instead of O(k^2).

A leave-one-out or cumulative analysis of k studies pools k subsets that differ from one another by
a single study, so every sum a closed-form estimator needs (sum w, sum w y, sum v, counts, ...) follows
from the full-data sum (minus one term) or from a running sum. Weighted means and Q-type sums of squares
are updated with the numerically stable one-point update/downdate formulas rather than by expanding
sum w (y - mu)^2 = sum w y^2 - (sum w y)^2 / sum w, which loses digits when the studies agree.

Symbols: ``x`` a per-study quantity (0 for studies that do not contribute), ``w`` weights (0 for studies
that do not contribute), ``y`` effect sizes, ``mu`` weighted mean, ``m2`` sum w (y - mu)^2.

Reference: West DHD (1979) Commun ACM 22:532-535 (weighted incremental mean and variance);
Chan TF, Golub GH, LeVeque RJ (1983) Am Stat 37:242-247 (stability of updating formulas).
"""

from __future__ import annotations

import numpy as np


class SubsetLayout:
    """Which subsets the rows of an analysis are: leave-one-out, or cumulative in a given order.

    Parameters
    ----------
    kind : str
        "leave_one_out" (row i = every study but study i) or "cumulative" (row j = the first j + 1
        studies of `order`).
    k : int
        Number of studies.
    order : ndarray of int, optional
        The order in which a cumulative analysis adds the studies (0-based positions).
    """

    def __init__(self, kind: str, k: int, order: np.ndarray | None = None):
        if kind not in ("leave_one_out", "cumulative"):
            raise ValueError(f"unknown subset layout {kind!r}")
        self.kind = kind
        self.k = k
        self.order = np.arange(k) if order is None else np.asarray(order, int)

    def members(self) -> np.ndarray:
        """Return the (k, k) boolean membership matrix of the rows."""
        if self.kind == "leave_one_out":
            return ~np.eye(self.k, dtype=bool)
        ranks = np.empty(self.k, int)
        ranks[self.order] = np.arange(self.k)
        return ranks[None, :] <= np.arange(self.k)[:, None]

    def sums(self, x: np.ndarray) -> np.ndarray:
        """Return the sum of per-study `x` (shape (k,) or (k, p)) over the members of every row."""
        x = np.asarray(x, float)
        if self.kind == "leave_one_out":
            return x.sum(0) - x
        return np.cumsum(x[self.order], axis=0)

    def weighted_moments(self, w: np.ndarray, y: np.ndarray):
        """Return (sum w, mu, m2) for every row, with mu = sum w y / sum w and m2 = sum w (y - mu)^2.

        Studies with w = 0 do not count (their y may be anything finite). mu is NaN where a row has
        no weight; m2 is clipped at 0.
        """
        w = np.asarray(w, float)
        y = np.where(w > 0, np.asarray(y, float), 0.0)
        if self.kind == "leave_one_out":
            return _downdate(w, y)
        return _running(w[self.order], y[self.order])


def _downdate(w, y):
    sw = w.sum()
    mu = (w * y).sum() / sw if sw > 0 else 0.0
    m2 = (w * (y - mu) ** 2).sum()
    rest = sw - w
    with np.errstate(invalid="ignore", divide="ignore"):
        d = y - mu
        mu_out = np.where(w > 0, mu - w * d / rest, mu)
        m2_out = np.where(w > 0, m2 - w * d * (y - mu_out), m2)
    mu_out = np.where(rest > 0, mu_out, np.nan)
    return rest, mu_out, np.maximum(0.0, np.where(rest > 0, m2_out, 0.0))


def _running(w, y):
    # plain Python floats: k scalar steps cost far less than numpy calls per step
    n = len(w)
    sw_out = np.empty(n)
    mu_out = np.empty(n)
    m2_out = np.empty(n)
    sw = mu = m2 = 0.0
    for j, (wj, yj) in enumerate(zip(w.tolist(), y.tolist())):
        if wj > 0:
            total = sw + wj
            d = yj - mu
            r = d * wj / total
            mu += r
            m2 += sw * d * r
            sw = total
        sw_out[j] = sw
        mu_out[j] = mu if sw > 0 else np.nan
        m2_out[j] = m2
    return sw_out, mu_out, np.maximum(0.0, m2_out)
