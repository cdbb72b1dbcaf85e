"""Leave-one-out and cumulative analyses (updated sums, livingmeta/stats/updating.py) against a plain
meta_analyze of every subset, on random data, for every method.

Tolerances:
- CLOSED_FORM_REL = 1e-10 relative (abs 1e-12 near zero) for every number of FE, DL, HE, SJ, MH and PETO,
  and for everything but tau2 of the iterative methods: the fast path sums in a different order, so
  only the last digits may differ.
- ITERATIVE_TAU2_ABS = 1e-6 absolute on tau2 for REML, ML, PM and EB (their solvers stop at 1e-5 and
  1.2e-4; the fast path runs the same iterations from the same start, so agreement is in fact ~1e-12).
"""

import math
import re

import numpy as np
import pytest

from livingmeta.stats import cumulative, leave_one_out, meta_analyze
from livingmeta.stats.updating import SubsetLayout

CLOSED_FORM_REL = 1e-10
CLOSED_FORM_ABS = 1e-12
ITERATIVE_TAU2_ABS = 1e-6
ITERATIVE = ("REML", "ML", "PM", "EB")
IV_METHODS = ("FE", "DL", "HE", "SJ", "REML", "ML", "PM", "EB")


def binary_rows(k, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(k):
        n1, n2 = (int(x) for x in rng.integers(15, 200, 2))
        p2 = rng.uniform(0.05, 0.5)
        p1 = 1 / (1 + math.exp(-(math.log(p2 / (1 - p2)) + rng.normal(-0.3, 0.5))))
        rows.append(dict(study=f"s{i}", year=int(2000 + rng.integers(0, 20)), treat_events=int(rng.binomial(n1, p1)),
                         treat_total=n1, control_events=int(rng.binomial(n2, p2)), control_total=n2))
    # a zero cell and a double-zero study: corrected / dropped exactly as in a separate fit
    rows[2].update(treat_events=0)
    rows[5].update(treat_events=0, control_events=0)
    return rows


def assert_same(got, want, method, where):
    g, w = got.to_dict(), want.to_dict()
    assert g.keys() == w.keys()
    for key, expected in w.items():
        value = g[key]
        if key == "studies":
            assert [s["study"] for s in value] == [s["study"] for s in expected], where
            assert [s["weight"] for s in value] == pytest.approx([s["weight"] for s in expected],
                                                                 rel=CLOSED_FORM_REL, abs=CLOSED_FORM_ABS), where
        elif isinstance(expected, float):
            assert value is not None, (where, key)
            if key == "tau2" and method in ITERATIVE:
                assert abs(value - expected) <= ITERATIVE_TAU2_ABS, (where, key, value, expected)
            else:
                assert value == pytest.approx(expected, rel=CLOSED_FORM_REL, abs=CLOSED_FORM_ABS), \
                    (where, key, value, expected)
        elif key == "warnings":
            # a separate fit of a subset numbers its rows afresh: compare the messages without row numbers
            assert [re.sub(r"\(row \d+\)", "(row)", m) for m in value] == \
                [re.sub(r"\(row \d+\)", "(row)", m) for m in expected], where
        else:
            assert value == expected, (where, key, value, expected)


def check_against_separate_fits(rows, order, **opts):
    loo = leave_one_out(rows, **opts)
    assert [name for name, _ in loo] == [r["study"] for r in rows]
    for i, (_, got) in enumerate(loo):
        assert_same(got, meta_analyze(rows[:i] + rows[i + 1:], **opts), opts["method"], f"leave out {i}")
    cum = cumulative(rows, order=order, **opts)
    assert [name for name, _ in cum] == [rows[i]["study"] for i in order]
    for j, (_, got) in enumerate(cum):
        subset = [rows[i] for i in sorted(order[:j + 1])]
        assert_same(got, meta_analyze(subset, **opts), opts["method"], f"cumulative step {j}")


@pytest.mark.parametrize("method", IV_METHODS)
def test_inverse_variance_fast_path_equals_separate_fits(method):
    rows = binary_rows(14, seed=7)
    order = list(np.random.default_rng(3).permutation(len(rows)))
    check_against_separate_fits(rows, order, measure="OR", method=method)


@pytest.mark.parametrize("measure,method", [("OR", "MH"), ("RR", "MH"), ("RD", "MH"), ("OR", "PETO"),
                                            ("PETO", "PETO")])
def test_count_methods_fast_path_equals_separate_fits(measure, method):
    rows = binary_rows(14, seed=11)
    order = list(np.random.default_rng(5).permutation(len(rows)))
    check_against_separate_fits(rows, order, measure=measure, method=method)


@pytest.mark.parametrize("method", ["FE", "DL", "SJ", "REML"])
def test_knapp_hartung_proportions_and_generic_data(method):
    rng = np.random.default_rng(21)
    props = [dict(study=f"p{i}", events=int(e), total=int(n))
             for i, (n, e) in enumerate((n, rng.binomial(n, 0.3)) for n in rng.integers(20, 300, 10))]
    check_against_separate_fits(props, list(range(10))[::-1], measure="PFT", method=method, test="knha")
    generic = [dict(study=f"g{i}", estimate=float(e), se=float(s), n=int(n))
               for i, (e, s, n) in enumerate(zip(rng.normal(0.4, 0.3, 12), rng.uniform(0.05, 0.4, 12),
                                                 rng.integers(30, 500, 12)))]
    check_against_separate_fits(generic, list(rng.permutation(12)), measure="GEN", method=method)


@pytest.mark.parametrize("method", ["DL", "REML", "PM", "SJ"])
def test_tau2_ci_false_leaves_only_the_interval_out(method):
    rows = binary_rows(12, seed=2)
    for fn in (leave_one_out, cumulative):
        with_ci = fn(rows, measure="OR", method=method)
        without = fn(rows, measure="OR", method=method, tau2_ci=False)
        assert any(r.tau2_ci_upper is not None for _, r in with_ci)
        for (_, a), (_, b) in zip(with_ci, without):
            assert b.tau2_ci_lower is None and b.tau2_ci_upper is None
            # the I2 and H2 intervals are the tau2 interval mapped (confint.rma.uni): they go with it
            assert b.i2_ci_lower is b.i2_ci_upper is b.h2_ci_lower is b.h2_ci_upper is None
            da, db = a.to_dict(), b.to_dict()
            for key in ("tau2_ci_lower", "tau2_ci_upper", "i2_ci_lower", "i2_ci_upper", "h2_ci_lower", "h2_ci_upper"):
                da.pop(key), db.pop(key)
            assert da == db
    pooled = meta_analyze(rows, measure="OR", method=method, tau2_ci=False)
    assert pooled.tau2_ci_lower is None and pooled.tau2 == meta_analyze(rows, measure="OR", method=method).tau2


def test_tau2_ci_must_be_a_bool():
    from livingmeta.stats import StatsInputError
    with pytest.raises(StatsInputError, match="tau2_ci"):
        leave_one_out(binary_rows(8, seed=1), measure="OR", method="DL", tau2_ci="no")


def test_updated_moments_keep_their_digits_when_studies_agree():
    # y near 1000 with spread 1e-3: expanding sum w y^2 - (sum w y)^2 / sum w would lose ~12 digits
    rng = np.random.default_rng(8)
    k = 40
    y = 1000 + rng.normal(0, 1e-3, k)
    w = rng.uniform(0.5, 2, k)
    w[7] = 0.0  # a study that does not contribute
    order = rng.permutation(k)
    worst_naive = 0.0
    for layout in (SubsetLayout("leave_one_out", k), SubsetLayout("cumulative", k, order)):
        sw, mu, m2 = layout.weighted_moments(w, np.where(w > 0, y, np.nan))
        for r, row in enumerate(layout.members()):
            sel = row & (w > 0)
            if not sel.any():
                assert sw[r] == 0 and math.isnan(mu[r])
                continue
            ww, yy = w[sel], y[sel]
            ref_mu = np.sum(ww * yy) / np.sum(ww)
            ref_m2 = np.sum(ww * (yy - ref_mu) ** 2)
            assert sw[r] == pytest.approx(np.sum(ww), rel=1e-13)
            assert mu[r] == pytest.approx(ref_mu, rel=1e-15)
            assert m2[r] == pytest.approx(ref_m2, rel=1e-8, abs=1e-300), (layout.kind, r)
            if sel.sum() > 1:
                naive = np.sum(ww * yy * yy) - np.sum(ww * yy) ** 2 / np.sum(ww)
                worst_naive = max(worst_naive, abs(naive - ref_m2) / ref_m2)
    assert worst_naive > 1e-6  # the data do defeat the expanded formula


def test_layout_members_match_the_documented_subsets():
    lo = SubsetLayout("leave_one_out", 4).members()
    assert lo.tolist() == [[i != j for j in range(4)] for i in range(4)]
    cu = SubsetLayout("cumulative", 4, [2, 0, 3, 1]).members()
    assert cu.tolist() == [[False, False, True, False], [True, False, True, False], [True, False, True, True],
                           [True, True, True, True]]
    with pytest.raises(ValueError):
        SubsetLayout("bootstrap", 4)
