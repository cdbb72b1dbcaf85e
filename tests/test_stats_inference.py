"""Issue 16's statistics against R's metafor 3.8-1 (tests/fixtures/stats/metafor_inference.json, written by
tests/fixtures/stats/make_metafor_inference.R) and against hand computation from the published formulas:

- Peto: with method PETO the per-study effects are Peto's one-step log odds ratios (Yusuf et al. 1985):
  yi = (O - E) / V, vi = 1 / V with O = ai, E = (ai + ci) n1 / N, V = (ai + ci)(bi + di) n1 n2 / (N^2 (N - 1)),
  1/2 added to the four cells of a table with a zero, double-zero tables dropped (rma.peto's yi/vi).
- Egger's test with model "rma" (regtest's default): yi ~ sei meta-regression with the analysis' model.
- I2 and H2 confidence intervals: the Q-profile tau2 bounds mapped through I2 = 100 tau2 / (tau2 + vt),
  H2 = 1 + tau2 / vt, vt = (k - 1) sum w / ((sum w)^2 - sum w^2), w = 1 / vi (confint.rma.uni).
- The subgroup moderator test with one shared tau2: QM, QE of rma(yi, vi, mods = ~ factor(g)).

Tolerances (the shared reference's, see tests/test_stats_metafor.py):
- CLOSED_FORM_REL = 1e-9 relative for everything that is a closed form (Peto, FE/DL/HE/SJ fits, regtest
  and moderator tests for them). The REML/ML/EB/PM meta-regressions replay metafor's Fisher scoring /
  uniroot, so they also agree to ~1e-14; they are held to ITERATIVE_ABS (1e-5 REML/ML/EB, 1e-4 PM) as the
  README of the shared reference asks.
- TAU2_CI_ABS = 1e-4 absolute on tau2 bounds (metafor's confint() uses uniroot, tolerance 1.2e-4; we solve
  exactly). The I2/H2 bounds are checked (a) to be metafor's mapping of metafor's own tau2 bounds to
  CLOSED_FORM_REL, and (b) to be the same mapping of our tau2 bounds to 1e-12; comparing them directly would
  need a tolerance scaled by dI2/dtau2, which is what (a)+(b) make unnecessary.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from livingmeta.stats import (cumulative, egger_test, leave_one_out, meta_analyze, subgroup_analysis,
                              trim_and_fill)

FIXTURE = json.loads((Path(__file__).resolve().parent / "fixtures" / "stats" / "metafor_inference.json").read_text())
CLOSED_FORM_REL = 1e-9
TAU2_CI_ABS = 1e-4
ITERATIVE_ABS = {"REML": 1e-5, "ML": 1e-5, "EB": 1e-5, "PM": 1e-4}


def close(got, expected, method="FE"):
    assert got is not None and expected is not None, (got, expected)
    if method in ITERATIVE_ABS:
        return abs(got - expected) <= ITERATIVE_ABS[method]
    return got == pytest.approx(expected, rel=CLOSED_FORM_REL, abs=1e-300)


def peto_by_hand(row):
    a, n1, c, n2 = row["treat_events"], row["treat_total"], row["control_events"], row["control_total"]
    b, d = n1 - a, n2 - c
    if (a == 0 and c == 0) or (b == 0 and d == 0):
        return None, None
    if 0 in (a, b, c, d):
        a, b, c, d = a + 0.5, b + 0.5, c + 0.5, d + 0.5
    n1, n2 = a + b, c + d
    N = n1 + n2
    E = (a + c) * n1 / N
    V = (a + c) * (b + d) * n1 * n2 / (N * N * (N - 1))
    return (a - E) / V, 1 / V


# --- Peto ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(FIXTURE["peto"]))
def test_peto_study_effects_are_petos_log_odds_ratios(name):
    case = FIXTURE["peto"][name]
    res = meta_analyze(case["rows"], measure="OR", method="PETO")
    assert close(res.estimate, case["estimate"]) and close(res.se, case["se"])
    assert len(res.studies) == len(case["rows"])
    # weights(rma.peto): V of the raw tables (no correction), in percent; 0 for a double-zero table
    assert [s["weight"] for s in res.studies] == pytest.approx(case["weights"], rel=CLOSED_FORM_REL, abs=1e-12)
    for s, row, y, v in zip(res.studies, case["rows"], case["yi"], case["vi"]):
        hy, hv = peto_by_hand(row)
        if y is None:  # a double-zero table: rma.peto drops it from its per-study effects
            assert s["yi"] is None and hy is None
            continue
        assert close(s["yi"], y) and close(s["vi"], v), (name, s["study"])
        assert close(s["yi"], hy) and close(s["vi"], hv), (name, s["study"])
        # the CI and back-transform belong to the same Peto effect
        half = 1.959963984540054 * math.sqrt(v)
        assert close(s["ci_lower"], y - half) and close(s["yi_bt"], math.exp(y))


def test_peto_study_effects_differ_from_ordinary_log_odds_ratios():
    # the bug: PETO listed escalc(measure="OR") effects. Aronson 1948 (bcg): log OR -0.939 vs Peto -0.910
    case = FIXTURE["peto"]["bcg"]
    peto = meta_analyze(case["rows"], measure="OR", method="PETO").studies[0]["yi"]
    ordinary = meta_analyze(case["rows"], measure="OR", method="FE").studies[0]["yi"]
    r = case["rows"][0]
    a, b, c, d = r["treat_events"], r["treat_total"] - r["treat_events"], r["control_events"], \
        r["control_total"] - r["control_events"]
    assert ordinary == pytest.approx(math.log(a * d / (b * c)), rel=1e-12)
    assert peto == pytest.approx(peto_by_hand(r)[0], rel=1e-12) and abs(peto - ordinary) > 0.02


def test_peto_effects_in_leave_one_out_cumulative_and_trim_and_fill():
    case = FIXTURE["peto"]["hine"]
    hand = [peto_by_hand(r) for r in case["rows"]]
    for _, res in leave_one_out(case["rows"], measure="OR", method="PETO")[:2]:
        for s in res.studies:
            row = next(r for r in case["rows"] if r["study"] == s["study"])
            assert close(s["yi"], peto_by_hand(row)[0])
    _, last = cumulative(case["rows"], measure="OR", method="PETO")[-1]
    assert [s["yi"] for s in last.studies] == pytest.approx([h[0] for h in hand], rel=CLOSED_FORM_REL)
    # trim-and-fill re-pools the Peto effects by inverse-variance FE (what the Peto analysis shows)
    tf = trim_and_fill(case["rows"], measure="OR", method="PETO")
    y, v = np.array([h[0] for h in hand]), np.array([h[1] for h in hand])
    if tf["k0"] == 0:
        assert tf["result"].estimate == pytest.approx(np.sum(y / v) / np.sum(1 / v), rel=CLOSED_FORM_REL)
    assert any("replaced by inverse-variance FE" in w for w in tf["result"].warnings)


@pytest.mark.parametrize("name", sorted(FIXTURE["peto"]))
def test_egger_rma_on_a_peto_analysis_matches_regtest(name):
    case = FIXTURE["peto"][name]
    exp = case["egger_rma"]
    for got in (egger_test(case["rows"], model="rma", measure="OR", method="PETO"),
                egger_test(meta_analyze(case["rows"], measure="OR", method="PETO"), model="rma")):
        assert got["method"] == "FE" and got["df"] is None
        for key in ("statistic", "p_value", "limit", "limit_ci_lower", "limit_ci_upper"):
            assert close(got[key], exp[key]), (name, key)
    # the lm form also runs on the Peto effects: its intercept is the hand regression of yi/sei on 1/sei
    hand = [peto_by_hand(r) for r in case["rows"] if peto_by_hand(r)[0] is not None]
    y, se = np.array([h[0] for h in hand]), np.sqrt([h[1] for h in hand])
    X = np.column_stack([np.ones(len(y)), 1 / se])
    beta = np.linalg.lstsq(X, y / se, rcond=None)[0]
    lm = egger_test(case["rows"], measure="OR", method="PETO")
    assert lm["model"] == "lm" and lm["intercept"] == pytest.approx(beta[0], rel=1e-10)


# --- Egger, model = "rma" -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(FIXTURE["egger"]))
def test_egger_rma_matches_regtest(name):
    case = FIXTURE["egger"][name]
    exp = case["expected"]
    kw = dict(measure=case["measure"], method=case["method"], test=case["test"])
    got = egger_test(case["rows"], model="rma", **kw)
    assert got["model"] == "rma" and got["k"] == len(case["rows"])
    assert got["df"] == (len(case["rows"]) - 2 if case["test"] == "knha" else None) == exp["df"]
    for key in ("statistic", "p_value", "limit", "limit_ci_lower", "limit_ci_upper", "tau2", "slope", "slope_se"):
        assert close(got[key], exp[key], case["method"]), (name, key, got[key], exp[key])
    # the same test from a fitted result (its method and test are used)
    fitted = egger_test(meta_analyze(case["rows"], **kw), model="rma")
    assert fitted["statistic"] == pytest.approx(got["statistic"], rel=1e-12)


def test_egger_rma_fe_is_the_weighted_least_squares_slope_by_hand():
    case = FIXTURE["egger"]["bcg_RR_FE_z"]
    r = meta_analyze(case["rows"], measure="RR", method="FE")
    y = np.array([s["yi"] for s in r.studies])
    v = np.array([s["vi"] for s in r.studies])
    X = np.column_stack([np.ones(len(y)), np.sqrt(v)])
    W = np.diag(1 / v)
    cov = np.linalg.inv(X.T @ W @ X)  # z test of b1 with var (X'WX)^-1 (Sterne & Egger 2005)
    b = cov @ X.T @ W @ y
    got = egger_test(r, model="rma")
    assert got["statistic"] == pytest.approx(b[1] / math.sqrt(cov[1, 1]), rel=1e-10)
    assert got["limit"] == pytest.approx(b[0], rel=1e-10)


def test_egger_rma_needs_three_studies_and_a_known_model():
    rows = FIXTURE["egger"]["bcg_RR_DL_z"]["rows"][:2]
    out = egger_test(rows, model="rma", measure="RR", method="DL")
    assert out["k"] == 2 and out["statistic"] is None
    with pytest.raises(Exception, match="Egger model 'glm' is unknown"):
        egger_test(rows, model="glm", measure="RR", method="DL")


# --- I2 and H2 confidence intervals ---------------------------------------------------------------------

def _vt(res):
    v = np.array([s["vi"] for s in res.studies if s["vi"] is not None])
    w = 1 / v
    return (len(v) - 1) * w.sum() / (w.sum() ** 2 - (w * w).sum())


@pytest.mark.parametrize("name", sorted(FIXTURE["confint"]))
def test_i2_h2_confidence_intervals_match_confint(name):
    case = FIXTURE["confint"][name]
    exp = case["expected"]
    res = meta_analyze(case["rows"], measure=case["measure"], method=case["method"], level=case["level"])
    vt = _vt(res)

    def i2(t):
        return 100 * t / (t + vt)

    def h2(t):
        return 1 + t / vt

    # (a) metafor's I2/H2 bounds are this mapping of its own tau2 bounds (and its point estimates of ours)
    for side in ("lower", "upper"):
        assert i2(exp[f"tau2_ci_{side}"]) == pytest.approx(exp[f"i2_ci_{side}"], rel=CLOSED_FORM_REL)
        assert h2(exp[f"tau2_ci_{side}"]) == pytest.approx(exp[f"h2_ci_{side}"], rel=CLOSED_FORM_REL)
        # (b) ours are the same mapping of our tau2 bounds
        assert getattr(res, f"i2_ci_{side}") == pytest.approx(i2(getattr(res, f"tau2_ci_{side}")), rel=1e-12)
        assert getattr(res, f"h2_ci_{side}") == pytest.approx(h2(getattr(res, f"tau2_ci_{side}")), rel=1e-12)
    assert close(res.i2, exp["i2"], case["method"]) and close(res.h2, exp["h2"], case["method"])
    assert abs(res.tau2_ci_lower - exp["tau2_ci_lower"]) <= TAU2_CI_ABS
    if name == "normand_MD_DL":
        # metafor's upper bound is its search limit tau2.max = 10 * tau2 (it notes that the bound is larger);
        # we solve Q_gen(tau2) = chi2_{0.025, k-1} exactly, so ours lies beyond it
        assert exp["tau2_ci_upper"] == pytest.approx(10 * exp["tau2"], rel=1e-12)
        assert res.tau2_ci_upper > exp["tau2_ci_upper"] and res.i2_ci_upper > exp["i2_ci_upper"]
    else:
        assert abs(res.tau2_ci_upper - exp["tau2_ci_upper"]) <= TAU2_CI_ABS
    assert res.i2_ci_lower <= res.i2 <= res.i2_ci_upper or res.tau2 < res.tau2_ci_lower


def test_i2_h2_intervals_absent_for_common_effect_models_and_when_tau2_ci_is_off():
    rows = FIXTURE["confint"]["bcg_RR_REML"]["rows"]
    for method in ("FE", "MH"):
        r = meta_analyze(rows, measure="RR", method=method)
        assert r.i2_ci_lower is None and r.h2_ci_upper is None
    r = meta_analyze(rows, measure="RR", method="REML", tau2_ci=False)
    assert r.i2_ci_lower is None and r.h2_ci_lower is None and r.i2 is not None
    d = meta_analyze(rows, measure="RR", method="REML").to_dict()
    assert {"i2_ci_lower", "i2_ci_upper", "h2_ci_lower", "h2_ci_upper"} <= set(d)


# --- subgroup moderator test with a shared tau2 -----------------------------------------------------------

@pytest.mark.parametrize("name", sorted(FIXTURE["moderators"]))
def test_subgroup_moderator_test_matches_rma_with_factor(name):
    case = FIXTURE["moderators"][name]
    exp = case["expected"]
    got = subgroup_analysis(case["rows"], by=case["by"], measure=case["measure"], method=case["method"],
                            test=case["test"])["moderator"]
    assert got["k"] == exp["k"] and got["qm_df"] == exp["qm_df"] and got["qe_df"] == exp["qe_df"]
    assert got["qm_df2"] == exp["qm_df2"]
    for key in ("qm", "qm_p", "tau2"):
        assert close(got[key], exp[key], case["method"]), (name, key, got[key], exp[key])
    for key in ("qe", "qe_p"):  # QE uses weights 1/vi whatever tau2 is: a closed form
        assert close(got[key], exp[key]), (name, key)


def test_moderator_test_under_fe_is_the_between_and_within_q_by_hand():
    # with tau2 = 0, QM is the between-subgroup Q of the FE subgroup estimates and QE the sum of the
    # within-subgroup Q statistics (Borenstein et al. 2009, ch. 19)
    case = FIXTURE["moderators"]["bcg_RR_alloc_FE_z"]
    sg = subgroup_analysis(case["rows"], by="alloc", measure="RR", method="FE")
    est = np.array([r.estimate for r in sg["subgroups"].values()])
    w = np.array([1 / r.se ** 2 for r in sg["subgroups"].values()])
    mu = np.sum(w * est) / np.sum(w)
    assert sg["moderator"]["qm"] == pytest.approx(np.sum(w * (est - mu) ** 2), rel=1e-10)
    assert sg["moderator"]["qm"] == pytest.approx(sg["q_between"], rel=1e-10)
    assert sg["moderator"]["qe"] == pytest.approx(sum(r.q for r in sg["subgroups"].values()), rel=1e-10)


def test_moderator_test_says_why_it_is_missing():
    rows = FIXTURE["moderators"]["bcg_RR_alloc_REML_z"]["rows"]
    one = [dict(r, alloc="all") for r in rows]
    got = subgroup_analysis(one, by="alloc", measure="RR", method="REML")["moderator"]
    assert got["qm"] is None and "fewer than two subgroups" in got["note"]
    few = [dict(r, alloc=str(i % 3)) for i, r in enumerate(rows[:3])]
    got = subgroup_analysis(few, by="alloc", measure="RR", method="DL")["moderator"]
    assert got["qm"] is None and "needs more studies than subgroups" in got["note"]
    peto = subgroup_analysis(rows, by="alloc", measure="OR", method="PETO")["moderator"]
    assert peto["method"] == "FE" and "Peto log odds ratios" in peto["note"] and peto["qm"] is not None
