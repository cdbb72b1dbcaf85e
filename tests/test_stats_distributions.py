"""livingmeta.stats.distributions gives the very floats scipy.stats gives (it calls the same scipy.special
functions without scipy.stats' one-second import), edges included."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from livingmeta.stats import distributions as d

XS = [-math.inf, -40.0, -8.3, -1.96, -1e-12, -0.0, 0.0, 1e-300, 1e-12, 0.3, 1.0, 1.959963984540054, 3.7, 12.0,
      40.0, 1e6, math.inf, math.nan]
QS = [0.0, 1e-300, 1e-12, 0.001, 0.025, 0.05, 0.1, 0.5, 0.9, 0.975, 0.999, 1 - 1e-12, 1.0, -0.1, 1.1, math.nan]
DFS = [-1.0, 0.0, 0.3, 1.0, 2.0, 3.5, 9.0, 30.0, 1e4, 1e8, math.inf, math.nan]


def same(a, b) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


@pytest.mark.parametrize("fn", ["sf"])
def test_norm_sf(fn):
    for x in XS:
        assert same(getattr(d.norm, fn)(x), getattr(stats.norm, fn)(x)), (fn, x)
    assert same(getattr(d.norm, fn)(np.array(XS)), getattr(stats.norm, fn)(np.array(XS)))


@pytest.mark.parametrize("fn", ["isf", "ppf"])
def test_norm_isf_ppf(fn):
    for q in QS:
        assert same(getattr(d.norm, fn)(q), getattr(stats.norm, fn)(q)), (fn, q)


def test_t_sf_isf():
    for x, df in itertools.product(XS, DFS):
        assert same(d.t.sf(x, df), stats.t.sf(x, df)), (x, df)
    for q, df in itertools.product(QS, DFS):
        assert same(d.t.isf(q, df), stats.t.isf(q, df)), (q, df)
    xs, dfs = np.array(XS), np.maximum(np.arange(len(XS)), 1)
    assert same(d.t.sf(xs, dfs), stats.t.sf(xs, dfs))


@pytest.mark.parametrize("fn", ["sf", "isf", "ppf"])
def test_chi2(fn):
    args = XS if fn == "sf" else QS
    for a, df in itertools.product(args, DFS):
        assert same(getattr(d.chi2, fn)(a, df), getattr(stats.chi2, fn)(a, df)), (fn, a, df)


def test_f_sf():
    for x, dfn, dfd in itertools.product(XS, DFS, DFS):
        assert same(d.f.sf(x, dfn, dfd), stats.f.sf(x, dfn, dfd)), (x, dfn, dfd)


def test_scalar_in_scalar_out():
    assert isinstance(d.norm.sf(1.0), np.floating) and isinstance(d.chi2.sf(3.0, 2), np.floating)
    assert d.t.isf(np.array([0.025]), np.array([4.0])).shape == (1,)
