"""TSA: Lan-DeMets O'Brien-Fleming boundaries against published group-sequential values, an independent
multivariate-normal check of the spent alpha, information sizes against the Wetterslev formula.

Tolerance: boundaries to 1e-3 on the Z scale (the tables print 3-4 decimals; our Simpson grid of 801
points per look is accurate to about 1e-5).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from livingmeta.stats.tsa import (TsaInputError, diversity, efficacy_boundaries, futility_boundaries,
                                  required_information_size_binary, required_information_size_continuous,
                                  trial_sequential_analysis)

TOL = 1e-3

# Lan-DeMets O'Brien-Fleming-type, two-sided alpha = 0.05, K equally spaced looks (R gsDesign sfLDOF /
# ldbounds; Jennison & Turnbull 2000, ch. 7). The first four K=5 values are also the brief's classic table.
PUBLISHED = {
    3: [3.7103, 2.5114, 1.9930],
    4: [4.3326, 2.9631, 2.3590, 2.0141],
    5: [4.8769, 3.3570, 2.6803, 2.2898, 2.0310],
}


@pytest.mark.parametrize("k", sorted(PUBLISHED))
def test_boundaries_match_published_tables(k):
    got = efficacy_boundaries([(i + 1) / k for i in range(k)], alpha=0.05)
    assert got == pytest.approx(PUBLISHED[k], abs=TOL)


def test_classic_k5_values_and_why_the_last_differs():
    got = efficacy_boundaries([0.2, 0.4, 0.6, 0.8, 1.0])
    assert got[:4] == pytest.approx([4.877, 3.357, 2.680, 2.290], abs=TOL)
    # the often-quoted last value 2.042 spends only ~0.0491 in total; the exact boundary spending all of
    # alpha = 0.05 is 2.031 (checked independently below with scipy's multivariate normal)
    assert got[4] == pytest.approx(2.031, abs=TOL)


def _mvn_alpha(fractions, bounds):
    t = np.asarray(fractions)
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    b = np.asarray(bounds)
    dist = stats.multivariate_normal(np.zeros(len(t)), cov, abseps=1e-7, releps=1e-7, maxpts=2_000_000, seed=1)
    return 1 - dist.cdf(b, lower_limit=-b)


def test_unequal_looks_spend_exactly_alpha_mvn_check():
    looks = [0.15, 0.45, 0.7, 1.0]
    b = efficacy_boundaries(looks, alpha=0.05)
    assert _mvn_alpha(looks, b) == pytest.approx(0.05, abs=2e-4)
    assert _mvn_alpha(looks[:2], b[:2]) == pytest.approx(4 * stats.norm.sf(stats.norm.isf(0.0125) / np.sqrt(0.45)),
                                                         abs=2e-5)
    # a single look at the RIS is the fixed-design test
    assert efficacy_boundaries([1.0]) == pytest.approx([1.959964], abs=1e-5)


def test_futility_boundaries_meet_efficacy_at_ris_and_rise():
    looks = [0.25, 0.5, 0.75, 1.0]
    b = efficacy_boundaries(looks)
    f = futility_boundaries(looks, b, alpha=0.05, beta=0.2)
    assert all(x is not None for x in f)
    assert f == sorted(f)
    assert all(fi <= bi + 1e-12 for fi, bi in zip(f, b))
    # beta spent at the first look under the drift z_{.975} + z_{.8}: P(Z_1 < a_1) = beta(0.25)
    theta = stats.norm.isf(0.025) + stats.norm.isf(0.2)
    spent = 2 * stats.norm.sf(stats.norm.isf(0.1) / np.sqrt(0.25))
    assert stats.norm.cdf(f[0], loc=theta * np.sqrt(0.25)) == pytest.approx(spent, abs=1e-6)


def test_information_sizes_wetterslev_formula():
    # 4 (z_.975 + z_.8)^2 p(1-p) / delta^2 with pc 0.25, pe 0.375 (RR 1.5): 431.7 participants
    z = stats.norm.isf(0.025) + stats.norm.isf(0.2)
    p = (0.25 + 0.375) / 2
    expect = 4 * z * z * p * (1 - p) / 0.125 ** 2
    assert required_information_size_binary(0.25, 0.5, direction="increase") == pytest.approx(expect, rel=1e-12)
    assert expect == pytest.approx(431.69, abs=0.01)
    assert required_information_size_continuous(5, 10) == pytest.approx(4 * z * z * 100 / 25, rel=1e-12)
    assert diversity(0.5, 0.2) == pytest.approx(0.6)
    assert diversity(0.2, 0.2) == 0.0 and diversity(None, 0.2) == 0.0
    with pytest.raises(TsaInputError, match="outside"):
        required_information_size_binary(0.8, 0.5, direction="increase")


def test_status_flags():
    pts = [{"label": "A", "information": 100, "z": 1.0}, {"label": "B", "information": 500, "z": 3.5}]
    r = trial_sequential_analysis(pts, 1000)
    assert r["points"][1]["upper"] < 3.5 and r["status"] == "boundary_crossed"
    assert r["curve"][-1]["fraction"] == 1.0
    r = trial_sequential_analysis([{"label": "A", "information": 1200, "z": 1.5}], 1000)
    assert r["status"] == "futility"  # at the RIS the futility and efficacy boundaries meet at 1.96
    r = trial_sequential_analysis([{"label": "A", "information": 300, "z": 1.0}], 1000)
    assert r["status"] == "inconclusive"
    # an anticipated reduction: benefit is z < 0; the futility boundary is negative too (z above it is futile)
    r = trial_sequential_analysis([{"label": "A", "information": 700, "z": -3.0}], 1000, direction=-1)
    assert r["status"] == "boundary_crossed" and r["points"][0]["futility"] < 0
    r = trial_sequential_analysis([{"label": "A", "information": 700, "z": -0.5}], 1000, direction=-1)
    assert r["status"] == "futility"
