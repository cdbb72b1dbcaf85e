"""The engine against R's metafor 3.8-1: the shared reference cases (through meta_analyze and the
CLI's --json) and our own metafor-generated fixture (tests/fixtures/stats/make_metafor_extra.R).

Tolerances:
- CLOSED_FORM_REL = 1e-9 relative: FE, DL, HE, SJ, MH, PETO, yi/vi and everything computed from them.
- REML_ABS = 1e-5 absolute for REML/ML/EB (metafor stops Fisher scoring at |change| < 1e-5), PM_ABS =
  1e-4 absolute for PM (metafor's uniroot tolerance is eps^0.25 = 1.2e-4): applied to tau2 and
  all numbers depending on it. (We replay metafor's iterations, so the agreement is in fact ~1e-12.)
- TAU2_CI_ABS = 1e-4 absolute for the Q-profile CI of tau2: metafor's confint() finds the bounds with
  uniroot (tol 1.2e-4) while we solve exactly; our bounds are separately checked to solve the
  Q-profile equation to 1e-8.
"""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import typer
from scipy import stats
from typer.testing import CliRunner

from flows.cli import meta as cli_meta
from livingmeta.stats import (cumulative, egger_test, leave_one_out, meta_analyze, subgroup_analysis,
                              trim_and_fill)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_CASES = SHARED / "reference" / "metafor_cases.json"
EXTRA = Path(__file__).resolve().parent / "fixtures" / "stats" / "metafor_extra.json"

CLOSED_FORM_REL = 1e-9
REML_ABS = 1e-5
PM_ABS = 1e-4
TAU2_CI_ABS = 1e-4
ITERATIVE = {"REML": REML_ABS, "ML": REML_ABS, "EB": REML_ABS, "PM": PM_ABS}


def _shared_cases():
    if not SHARED_CASES.exists():
        return []
    return json.loads(SHARED_CASES.read_text())


def _extra():
    return json.loads(EXTRA.read_text())


def _assert_close(got, expected, method, key, case_id):
    if isinstance(expected, list):
        assert got is not None and len(got) == len(expected), (case_id, key)
        for g, e in zip(got, expected):
            _assert_close(g, e, method, key, case_id)
        return
    assert got is not None, f"{case_id}: {key} is None, metafor has {expected}"
    if key.startswith("tau2_ci"):
        assert abs(got - expected) <= TAU2_CI_ABS, (case_id, key, got, expected)
    elif method in ITERATIVE and key not in ("yi", "vi", "q", "q_p", "k"):
        assert abs(got - expected) <= ITERATIVE[method], (case_id, key, got, expected)
    else:
        assert got == pytest.approx(expected, rel=CLOSED_FORM_REL, abs=1e-300), (case_id, key, got, expected)


def _compare(result: dict, case: dict) -> None:
    for key, expected in case["expected"].items():
        if key in ("yi", "vi"):
            got = [s[key] for s in result["studies"]]
        elif key.endswith("_bt") and result.get(key) is None:
            # identity measures (RD, MD, SMD, PR): metafor's "back-transform" is the estimate itself;
            # the API contract is None for them
            assert result["measure"] in ("RD", "MD", "SMD", "PR", "GEN"), (case["id"], key)
            assert expected == pytest.approx(case["expected"][key[:-3]], rel=1e-12)
            continue
        else:
            got = result[key]
        _assert_close(got, expected, case["method"], key, case["id"])


@pytest.mark.skipif(not SHARED_CASES.exists(), reason="../shared/reference/metafor_cases.json is absent")
@pytest.mark.parametrize("case", _shared_cases(), ids=lambda c: c["id"])
def test_shared_metafor_case_through_meta_analyze(case):
    result = meta_analyze(case["rows"], measure=case["measure"], method=case["method"], test=case["test"])
    _compare(result.to_dict(), case)


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return path


@pytest.fixture(scope="module")
def cli_app():
    app = typer.Typer()
    app.add_typer(cli_meta.app)

    @app.command("noop")
    def noop():  # a second command keeps typer from collapsing the app into `meta` itself
        pass

    return app


@pytest.mark.skipif(not SHARED_CASES.exists(), reason="../shared/reference/metafor_cases.json is absent")
@pytest.mark.parametrize("case", _shared_cases(), ids=lambda c: c["id"])
def test_shared_metafor_case_through_cli_json(case, cli_app, tmp_path):
    path = _write_csv(tmp_path / "studies.csv", case["rows"])
    run = CliRunner().invoke(cli_app, ["meta", str(path), "--measure", case["measure"], "--method",
                                       case["method"], "--test", case["test"], "--json"])
    assert run.exit_code == 0, run.output
    _compare(json.loads(run.stdout), case)


@pytest.mark.parametrize("case", _extra()["cases"], ids=lambda c: c["id"])
def test_extra_metafor_case(case):
    result = meta_analyze(case["rows"], measure=case["measure"], method=case["method"], test=case["test"],
                          level=case["level"], **(case["options"] or {}))
    _compare(result.to_dict(), case)


@pytest.mark.parametrize("case", [c for c in _extra()["cases"] if "tau2_ci_lower" in c["expected"]][:12],
                         ids=lambda c: c["id"])
def test_tau2_ci_solves_the_q_profile_equation(case):
    # second, independent check of the tau2 CI: the generalised Q at each bound equals its chi2 quantile
    r = meta_analyze(case["rows"], measure=case["measure"], method=case["method"], level=case["level"],
                     **(case["options"] or {}))
    yi = np.array([s["yi"] for s in r.studies if s["yi"] is not None])
    vi = np.array([s["vi"] for s in r.studies if s["vi"] is not None])
    alpha = 1 - case["level"]

    def q_gen(t):
        w = 1 / (vi + t)
        mu = np.sum(w * yi) / np.sum(w)
        return np.sum(w * (yi - mu) ** 2)

    for bound, crit in ((r.tau2_ci_lower, stats.chi2.isf(alpha / 2, r.k - 1)),
                        (r.tau2_ci_upper, stats.chi2.ppf(alpha / 2, r.k - 1))):
        if bound > 0:
            assert q_gen(bound) == pytest.approx(crit, rel=1e-8)
        else:
            assert q_gen(0.0) <= crit


SPECIAL = _extra()["special"]


@pytest.mark.parametrize("name", [n for n in SPECIAL if n.startswith("egger")])
def test_egger_matches_regtest_lm(name):
    case = SPECIAL[name]
    got = egger_test(case["rows"], measure=case["measure"], method=case["method"])
    for key, expected in case["expected"].items():
        assert got[key] == pytest.approx(expected, rel=CLOSED_FORM_REL), (name, key)
    # the same test from a fitted result
    fitted = meta_analyze(case["rows"], measure=case["measure"], method=case["method"])
    assert egger_test(fitted)["intercept"] == pytest.approx(got["intercept"], rel=1e-12)


@pytest.mark.parametrize("name", [n for n in SPECIAL if n.startswith("trimfill")])
def test_trim_and_fill_matches_metafor(name):
    case = SPECIAL[name]
    exp = case["expected"]
    tol = ITERATIVE.get(case["method"], 1e-9)
    got = trim_and_fill(case["rows"], measure=case["measure"], method=case["method"])
    assert got["k0"] == exp["k0"] and got["side"] == exp["side"]
    res = got["result"]
    assert res.k == exp["k"]
    for key in ("estimate", "se", "tau2", "ci_lower", "ci_upper"):
        assert getattr(res, key) == pytest.approx(exp[key], rel=1e-9, abs=tol), (name, key)
    filled = exp["filled_yi"] if isinstance(exp["filled_yi"], list) else [exp["filled_yi"]]
    assert [f["yi"] for f in got["filled"]] == pytest.approx(filled, rel=1e-9, abs=tol)


@pytest.mark.parametrize("name", [n for n in SPECIAL if n.startswith(("leave1out", "cumul"))])
def test_leave_one_out_and_cumulative_match_metafor(name):
    case = SPECIAL[name]
    tol = ITERATIVE.get(case["method"], 1e-9)
    fn = leave_one_out if name.startswith("leave1out") else cumulative
    got = fn(case["rows"], measure=case["measure"], method=case["method"])
    for key, expected in case["expected"].items():
        values = [getattr(r, key) for _, r in got]
        if key == "q" and name.startswith("cumul"):
            # k = 1 has no heterogeneity statistic here (None); metafor prints Q = 0
            assert values[0] is None and expected[0] == 0
            values, expected = values[1:], expected[1:]
        assert values == pytest.approx(expected, rel=1e-9, abs=tol), (name, key)


def test_cumulative_orders_by_year_and_labels_the_added_study():
    case = SPECIAL["cumul_bcg_DL"]
    steps = cumulative(case["rows"], measure="RR", method="DL")
    years = [next(r["year"] for r in case["rows"] if r["study"] == label) for label, _ in steps]
    assert years == sorted(years)
    assert [r.k for _, r in steps] == list(range(1, len(steps) + 1))


def test_subgroup_analysis_matches_separate_metafor_fits():
    case = SPECIAL["subgroup_bcg_alloc"]
    exp = case["expected"]
    got = subgroup_analysis(case["rows"], by=case["by"], measure="RR", method="REML")
    for name, g in exp["groups"].items():
        r = got["subgroups"][name]
        assert r.k == g["k"]
        for key in ("estimate", "se", "tau2"):
            assert getattr(r, key) == pytest.approx(g[key], abs=REML_ABS), (name, key)
    assert got["q_between"] == pytest.approx(exp["q_between"], abs=1e-4)
    assert got["q_between_df"] == exp["q_between_df"]
    assert got["q_between_p"] == pytest.approx(exp["q_between_p"], abs=1e-5)
    assert got["overall"].k == len(case["rows"])


def test_metafor_documentation_values_for_bcg():
    # Published in metafor's documentation / Viechtbauer (2010, J Stat Softw 36(3)): dat.bcg log RR,
    # REML: estimate -0.7145 (SE 0.1798), tau2 0.3132, I2 92.22%; DL: tau2 0.3088.
    rows = SPECIAL["cumul_bcg_DL"]["rows"]
    reml = meta_analyze(rows, measure="RR", method="REML")
    assert round(reml.estimate, 4) == -0.7145 and round(reml.se, 4) == 0.1798
    assert round(reml.tau2, 4) == 0.3132 and round(reml.i2, 2) == 92.22
    assert round(meta_analyze(rows, measure="RR", method="DL").tau2, 4) == 0.3088
