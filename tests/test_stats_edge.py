"""Edge cases of the statistics engine: defined answers, never crashes or silent drops."""

import json
import math
import re

import numpy as np
import pytest

from livingmeta.stats import (ENGINE_VERSION, RESULT_KEYS, MetaResult, cumulative, egger_test, leave_one_out,
                              meta_analyze, subgroup_analysis, trim_and_fill)

BCG = [  # dat.bcg (Colditz et al. 1994), as in metafor
    ("Aronson", 1948, 4, 123, 11, 139), ("Ferguson & Simes", 1949, 6, 306, 29, 303),
    ("Rosenthal 1960", 1960, 3, 231, 11, 220), ("Hart & Sutherland", 1977, 62, 13598, 248, 12867),
    ("Frimodt-Moller", 1973, 33, 5069, 47, 5808), ("Stein & Aronson", 1953, 180, 1541, 372, 1451),
    ("Vandiviere", 1973, 8, 2545, 10, 629), ("TPT Madras", 1980, 505, 88391, 499, 88391),
    ("Coetzee & Berjak", 1968, 29, 7499, 45, 7277), ("Rosenthal 1961", 1961, 17, 1716, 65, 1665),
    ("Comstock 1974", 1974, 186, 50634, 141, 27338), ("Comstock & Webster", 1969, 5, 2498, 3, 2341),
    ("Comstock 1976", 1976, 27, 16913, 29, 17854),
]


def bcg_rows():
    return [dict(study=s, year=y, treat_events=a, treat_total=n1, control_events=c, control_total=n2)
            for s, y, a, n1, c, n2 in BCG]


def assert_json_clean(result: MetaResult):
    d = result.to_dict()
    assert tuple(d) == RESULT_KEYS
    json.dumps(d, allow_nan=False)  # raises on NaN/inf
    for s in d["studies"]:
        assert set(s) == {"study", "yi", "vi", "weight", "ci_lower", "ci_upper", "n", "yi_bt", "ci_lower_bt",
                          "ci_upper_bt", "not_estimable"}
        # a study without an effect size of its own says why; every other study has no such note
        assert (s["not_estimable"] is None) == (s["yi"] is not None), s


def test_engine_version_is_semver():
    assert re.fullmatch(r"\d+\.\d+\.\d+", ENGINE_VERSION)


@pytest.mark.parametrize("method", ["FE", "DL", "REML", "PM", "ML", "SJ", "HE", "EB"])
@pytest.mark.parametrize("test", ["z", "knha"])
def test_single_study_gives_the_study_itself(method, test):
    row = bcg_rows()[:1]
    r = meta_analyze(row, measure="RR", method=method, test=test)
    yi = math.log(4 / 123) - math.log(11 / 139)
    vi = 1 / 4 - 1 / 123 + 1 / 11 - 1 / 139
    assert r.k == 1 and r.estimate == pytest.approx(yi, rel=1e-12) and r.se == pytest.approx(math.sqrt(vi))
    assert r.tau2 == 0
    assert r.i2 is None and r.h2 is None and r.q is None and r.q_df is None and r.q_p is None
    assert r.pi_lower is None and r.tau2_ci_lower is None
    assert r.ci_lower == pytest.approx(yi - 1.959963984540054 * math.sqrt(vi))
    assert r.studies[0]["weight"] == pytest.approx(100.0)
    if test == "knha":
        assert any("Knapp-Hartung needs k >= 2" in w for w in r.warnings)
    assert_json_clean(r)


def test_all_zero_events():
    rows = [dict(study=f"s{i}", treat_events=0, treat_total=20 + i, control_events=0, control_total=25)
            for i in range(4)]
    # inverse variance: every table gets 1/2 in each cell (metafor's default), nothing is dropped
    r = meta_analyze(rows, measure="RR", method="DL")
    assert r.k == 4 and all(s["yi"] is not None for s in r.studies)
    assert r.studies[0]["yi"] == pytest.approx(math.log(0.5 / 21) - math.log(0.5 / 26))
    assert r.tau2 == 0
    # Mantel-Haenszel OR is undefined without events: estimate None, said in warnings
    mh = meta_analyze(rows, measure="OR", method="MH")
    assert mh.estimate is None and mh.estimate_bt is None
    assert any("undefined" in w for w in mh.warnings)
    assert_json_clean(mh)
    # ...but the MH risk difference is 0, and every double-zero study is named as left out of Q
    rd = meta_analyze(rows, measure="RD", method="MH")
    assert rd.estimate == 0 and rd.k == 4
    assert sum("drop00" in w for w in rd.warnings) == 4
    peto = meta_analyze(rows, measure="OR", method="PETO")
    assert peto.estimate is None
    assert_json_clean(peto)


def test_double_zero_study_kept_by_default_and_named_when_dropped():
    rows = bcg_rows() + [dict(study="No events", year=1990, treat_events=0, treat_total=40, control_events=0,
                              control_total=40)]
    kept = meta_analyze(rows, measure="RR", method="DL")
    assert kept.k == 14 and kept.studies[-1]["yi"] == pytest.approx(0.0)
    dropped = meta_analyze(rows, measure="RR", method="DL", drop00=True)
    assert dropped.k == 13
    assert dropped.studies[-1]["yi"] is None and dropped.studies[-1]["weight"] == 0.0
    assert any("No events" in w and "drop00" in w for w in dropped.warnings)
    assert len(dropped.studies) == 14  # listed, not silently removed


def test_no_correction_excludes_zero_cell_study_with_a_warning():
    rows = bcg_rows() + [dict(study="Zero arm", treat_events=0, treat_total=40, control_events=3, control_total=40,
                              year=1990)]
    r = meta_analyze(rows, measure="OR", method="FE", zero_correction={"to": "none"})
    assert r.k == 13 and any("Zero arm" in w for w in r.warnings)


def test_tau2_on_the_boundary():
    # homogeneous studies: Q < k - 1, so every estimator gives tau2 = 0 and I2 = 0
    rows = [dict(study=f"s{i}", estimate=e, se=0.2) for i, e in enumerate([0.10, 0.12, 0.09, 0.11, 0.10])]
    fe = meta_analyze(rows, measure="GEN", method="FE")
    for method in ["DL", "REML", "ML", "PM", "EB", "HE", "SJ"]:
        r = meta_analyze(rows, measure="GEN", method=method)
        assert r.tau2 == pytest.approx(0.0, abs=1e-12 if method != "SJ" else 1e-3), method
        if method != "SJ":
            assert r.estimate == pytest.approx(fe.estimate, rel=1e-9)
            assert r.i2 == pytest.approx(0.0, abs=1e-9)
            assert r.tau2_ci_lower == 0 and r.tau2_ci_upper == 0
        assert not r.warnings
    assert fe.i2 == 0 and fe.h2 < 1


def test_non_convergence_falls_back_to_dl_with_warning():
    rows = bcg_rows()
    dl = meta_analyze(rows, measure="RR", method="DL")
    for method in ["REML", "ML", "EB"]:
        r = meta_analyze(rows, measure="RR", method=method, maxiter=1)
        assert r.tau2 == pytest.approx(dl.tau2, rel=1e-12)
        assert r.estimate == pytest.approx(dl.estimate, rel=1e-12)
        assert any("did not converge" in w and "DerSimonian-Laird" in w for w in r.warnings), r.warnings
    pm = meta_analyze(rows, measure="RR", method="PM", maxiter=1)
    assert pm.tau2 == pytest.approx(dl.tau2) and any("did not converge" in w for w in pm.warnings)


def test_generic_ratio_ci_is_logged():
    rows = [dict(study="A", estimate=0.5, ci_lower=0.25, ci_upper=1.0),
            dict(study="B", estimate=0.8, ci_lower=0.6, ci_upper=1.0667)]
    r = meta_analyze(rows, measure="GEN", method="FE", scale="ratio")
    se_a = (math.log(1.0) - math.log(0.25)) / (2 * 1.959964)
    assert r.studies[0]["yi"] == pytest.approx(math.log(0.5))
    assert r.studies[0]["vi"] == pytest.approx(se_a ** 2)
    assert r.estimate_bt == pytest.approx(math.exp(r.estimate))
    diff = meta_analyze(rows, measure="GEN", method="FE")
    assert diff.estimate_bt is None and diff.studies[0]["yi"] == 0.5


@pytest.mark.parametrize("measure,method", [("RR", "REML"), ("OR", "MH"), ("RD", "MH"), ("OR", "PETO"),
                                            ("OR", "PM"), ("RR", "EB"), ("RD", "SJ"), ("OR", "FE")])
def test_leave_one_out_and_cumulative_equal_separate_fits(measure, method):
    rows = bcg_rows()
    loo = leave_one_out(rows, measure=measure, method=method, test="z")
    assert [name for name, _ in loo] == [r["study"] for r in rows]
    for i in (0, 5, 12):
        alone = meta_analyze(rows[:i] + rows[i + 1:], measure=measure, method=method)
        got, want = loo[i][1].to_dict(), alone.to_dict()
        for key in want:
            if isinstance(want[key], float):
                # summation order differs between the vectorised and the single fit: last bits only
                assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), key
            else:
                assert got[key] == want[key] or key == "studies", key
        assert [s["weight"] for s in got["studies"]] == pytest.approx([s["weight"] for s in want["studies"]])
    order = sorted(range(len(rows)), key=lambda i: rows[i]["year"])
    cum = cumulative(rows, measure=measure, method=method)
    for j in (1, 6, 12):
        subset = [rows[i] for i in sorted(order[:j + 1])]
        alone = meta_analyze(subset, measure=measure, method=method)
        got = cum[j][1]
        assert got.estimate == pytest.approx(alone.estimate, rel=1e-12)
        assert got.tau2 == pytest.approx(alone.tau2, rel=1e-12, abs=1e-15)
        assert got.k == j + 1


def test_cumulative_with_explicit_order_and_pft_leave_one_out():
    rows = bcg_rows()
    names = [r["study"] for r in rows][::-1]
    cum = cumulative(rows, order=names, measure="RR", method="DL")
    assert [n for n, _ in cum] == names
    props = [dict(study=f"p{i}", events=e, total=n) for i, (e, n) in enumerate([(16, 17), (10, 12), (4, 8), (43, 58)])]
    loo = leave_one_out(props, measure="PFT", method="DL")
    alone = meta_analyze(props[1:], measure="PFT", method="DL")
    assert loo[0][1].estimate_bt == pytest.approx(alone.estimate_bt, rel=1e-12)


def test_studies_weights_sum_to_100_and_participants():
    r = meta_analyze(bcg_rows(), measure="RR", method="REML")
    assert sum(s["weight"] for s in r.studies) == pytest.approx(100.0)
    assert r.participants == sum(r_["treat_total"] + r_["control_total"] for r_ in bcg_rows())
    mh = meta_analyze(bcg_rows(), measure="OR", method="MH")
    assert sum(s["weight"] for s in mh.studies) == pytest.approx(100.0)
    assert_json_clean(r)
    assert_json_clean(mh)


def test_egger_and_trim_and_fill_edge_cases():
    two = bcg_rows()[:2]
    assert egger_test(two, measure="RR", method="FE")["intercept"] is None
    tf = trim_and_fill(bcg_rows(), measure="OR", method="MH")
    assert any("replaced by inverse-variance FE" in w for w in tf["result"].warnings)
    assert tf["result"].k == 13 + tf["k0"] and len(tf["filled"]) == tf["k0"]


def test_subgroup_with_single_study_group():
    rows = bcg_rows()
    for i, r in enumerate(rows):
        r["grp"] = "solo" if i == 0 else "rest"
    res = subgroup_analysis(rows, by="grp", measure="RR", method="REML")
    assert res["subgroups"]["solo"].k == 1 and res["subgroups"]["rest"].k == 12
    assert res["q_between_df"] == 1 and 0 <= res["q_between_p"] <= 1


def test_large_k_leave_one_out_is_vectorised():
    rng = np.random.default_rng(1)
    k = 400
    rows = [dict(study=f"s{i}", estimate=float(e), se=float(s))
            for i, (e, s) in enumerate(zip(rng.normal(0.2, 0.3, k), rng.uniform(0.1, 0.5, k)))]
    loo = leave_one_out(rows, measure="GEN", method="REML")
    assert len(loo) == k and all(r.k == k - 1 for _, r in loo)
    alone = meta_analyze(rows[1:], measure="GEN", method="REML")
    assert loo[0][1].tau2 == pytest.approx(alone.tau2, rel=1e-12)
