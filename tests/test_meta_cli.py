"""`livingmeta meta` for metafor users (issue 16, item 7), through the real CLI app:

- escalc() column names (ai, bi, ci, di, n1i, n2i, m1i, sd1i, m2i, sd2i, xi, ni, yi, vi, sei) give the numbers
  metafor 3.8-1 gives (tests/fixtures/stats/metafor_extra.json and metafor_inference.json, written by the R
  scripts beside them);
- a row with an empty count is "not estimable" with its reason (the rest is pooled, as metafor drops the
  row with a note), while a cell that is not a number is still an error naming file, line and column;
- --leave-one-out, --cumulative, --subgroup, --egger and --trimfill, each with --json, give metafor's numbers.

Tolerances as tests/test_stats_metafor.py: CLOSED_FORM_REL = 1e-9 relative for closed forms (FE, DL, MH,
PETO, regtest/QM/QE of FE and DL fits); ITERATIVE_ABS 1e-5 (REML) / 1e-4 (PM) absolute on what depends on
an iterated tau2, as the shared reference's README asks.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "stats"
EXTRA = json.loads((FIXTURES / "metafor_extra.json").read_text())
INFERENCE = json.loads((FIXTURES / "metafor_inference.json").read_text())
CLOSED_FORM_REL = 1e-9
ITERATIVE_ABS = {"REML": 1e-5, "ML": 1e-5, "EB": 1e-5, "PM": 1e-4}
runner = CliRunner()


def case(case_id: str) -> dict:
    return next(c for c in EXTRA["cases"] if c["id"] == case_id)


def close(got, expected, method="FE"):
    assert got is not None, expected
    if method in ITERATIVE_ABS:
        return abs(got - expected) <= ITERATIVE_ABS[method]
    return got == pytest.approx(expected, rel=CLOSED_FORM_REL, abs=1e-300)


def write_csv(path: Path, rows: list[dict], columns: dict[str, object]) -> Path:
    """rows -> CSV with `columns` {file column: our column name, or a function of the row}."""
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(list(columns))
        for r in rows:
            out.writerow([f(r) if callable(f) else r[f] for f in columns.values()])
    return path


def meta_json(path: Path, *args: str) -> dict:
    run = runner.invoke(app, ["meta", str(path), *args, "--json"])
    assert run.exit_code == 0, run.output
    return json.loads(run.stdout)


BINARY_N = {"study": "study", "ai": "treat_events", "n1i": "treat_total", "ci": "control_events", "n2i": "control_total"}
BINARY_BD = {"study": "study", "ai": "treat_events", "bi": lambda r: r["treat_total"] - r["treat_events"],
             "ci": "control_events", "di": lambda r: r["control_total"] - r["control_events"]}


# --- escalc names ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("columns", [BINARY_N, BINARY_BD], ids=["ai-n1i-ci-n2i", "ai-bi-ci-di"])
@pytest.mark.parametrize("case_id,measure,method", [("bcg_RR_DL_z", "RR", "DL"), ("nielweise_OR_MH_z", "OR", "MH"),
                                                    ("bcg_RR_REML_z", "RR", "REML")])
def test_escalc_binary_names_give_metafors_numbers(tmp_path, columns, case_id, measure, method):
    c = case(case_id)
    out = meta_json(write_csv(tmp_path / "d.csv", c["rows"], columns), "--measure", measure, "--method", method)
    for key in ("estimate", "se", "ci_lower", "ci_upper", "q", "tau2"):
        if key in c["expected"]:
            assert close(out[key], c["expected"][key], method), key
    if "yi" in c["expected"]:
        assert [s["yi"] for s in out["studies"]] == pytest.approx(c["expected"]["yi"], rel=CLOSED_FORM_REL)
    assert [r["study"] for r in out["not_estimable"]] == [s["study"] for s in out["studies"] if s["yi"] is None]


def test_escalc_continuous_proportion_and_generic_names(tmp_path):
    c = case("normand_MD_ML_z")
    cols = {"study": "study", "m1i": "treat_mean", "sd1i": "treat_sd", "n1i": "treat_n", "m2i": "control_mean",
            "sd2i": "control_sd", "n2i": "control_n"}
    out = meta_json(write_csv(tmp_path / "c.csv", c["rows"], cols), "--method", "ML")
    assert out["measure"] == "MD" and close(out["estimate"], c["expected"]["estimate"], "ML")
    c = case("pritz_PLO_DL_z")
    out = meta_json(write_csv(tmp_path / "p.csv", c["rows"], {"study": "study", "xi": "events", "ni": "total"}),
                    "--method", "DL")
    assert out["measure"] == "PLO" and close(out["estimate"], c["expected"]["estimate"])
    assert close(out["estimate_bt"], c["expected"]["estimate_bt"])
    c = case("hackshaw_GEN_REML_z")
    for cols in ({"study": "study", "yi": "estimate", "sei": "se"},
                 {"study": "study", "yi": "estimate", "vi": lambda r: repr(r["se"] ** 2)}):
        out = meta_json(write_csv(tmp_path / "g.csv", c["rows"], cols), "--method", "REML")
        assert out["measure"] == "GEN" and close(out["estimate"], c["expected"]["estimate"], "REML")
        assert close(out["tau2"], c["expected"]["tau2"], "REML")


@pytest.mark.parametrize("text,where,phrase", [
    ("study,ai,bi,ci,di\nA,4,119,11,128\nB,x,300,29,274\n", "line 3, column 'ai'", "is not a number"),
    ("study,ai,bi,ci,di\nA,4,119,11,128\nB,6,-3,29,274\n", "line 3, column 'bi'", "not a count"),
    ("study,ai,n1i,ci,n2i\nA,4,123,11,139\nB,400,306,29,303\n", "line 3, column 'ai'", "more than 'n1i'"),
    ("study,yi,vi\nA,0.2,0.04\nB,0.1,0\n", "line 3, column 'vi'", "greater than 0"),
    ("study,yi,sei\nA,0.2,0.04\nB,0.1,abc\n", "line 3, column 'sei'", "is not a number"),
    ("study,m1i,sd1i,n1i,m2i,sd2i,n2i\nA,10,2,20,12,2,20\nB,10,-1,20,12,2,20\n", "line 3, column 'sd1i'",
     "greater than 0"),
])
def test_escalc_files_with_a_bad_cell_name_the_files_own_column(tmp_path, text, where, phrase):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    run = runner.invoke(app, ["meta", str(path), "--json"])
    assert run.exit_code == 2, run.output
    assert isinstance(run.exception, SystemExit)  # a clean exit with one message, not an uncaught error
    message = " ".join(run.output.split())
    assert f"{path}, {where}" in message and phrase in message, message
    assert "Traceback" not in run.output


# --- not estimable rows ----------------------------------------------------------------------------------

def test_a_row_with_an_empty_count_is_not_estimable_and_the_rest_is_pooled(tmp_path):
    c = case("bcg_RR_DL_z")
    rows = [dict(r) for r in c["rows"]]
    full = write_csv(tmp_path / "full.csv", rows[:3] + rows[4:], BINARY_N)
    rows[3] = dict(rows[3], control_events="")  # Hart & Sutherland 1977, line 5 of the file
    gap = write_csv(tmp_path / "gap.csv", rows, BINARY_N)
    expected = meta_json(full, "--measure", "RR", "--method", "DL")
    out = meta_json(gap, "--measure", "RR", "--method", "DL")
    assert out["not_estimable"] == [{"study": rows[3]["study"], "line": 5, "reason": "not estimable: cell 'ci' is empty"}]
    assert out["k"] == expected["k"] == len(rows) - 1
    for key in ("estimate", "se", "tau2", "q", "i2", "participants"):
        assert out[key] == pytest.approx(expected[key], rel=1e-12), key
    listed = [s for s in out["studies"] if s["study"] == rows[3]["study"]]
    assert listed == [dict(listed[0], yi=None, weight=0.0, not_estimable="not estimable: cell 'ci' is empty")]
    assert any(rows[3]["study"] in w and "line 5" in w for w in out["warnings"])
    # the table says so too, and MH (raw counts) and Peto drop the row the same way
    run = runner.invoke(app, ["meta", str(gap), "--measure", "RR", "--method", "DL"])
    assert run.exit_code == 0 and "not estimable" in run.output and "cell 'ci' is empty" in " ".join(run.output.split())
    for method in ("MH", "PETO"):
        measure = "OR"
        got, want = meta_json(gap, "--measure", measure, "--method", method), meta_json(full, "--measure", measure,
                                                                                    "--method", method)
        assert got["k"] == want["k"] and got["estimate"] == pytest.approx(want["estimate"], rel=1e-12), method
        assert got["participants"] == want["participants"]


def test_not_estimable_lists_every_study_without_an_effect_and_several_empty_cells(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("study,treat_events,treat_total,control_events,control_total\nA,4,123,11,139\n"
                    "B,,,29,303\nC,0,50,0,50\nD,6,306,29,303\n")
    out = meta_json(path, "--measure", "OR", "--method", "MH")
    reasons = {r["study"]: (r["line"], r["reason"]) for r in out["not_estimable"]}
    assert reasons["B"] == (3, "not estimable: cells 'treat_events', 'treat_total' are empty")
    assert reasons["C"][0] == 4 and "no events" in reasons["C"][1]  # double zero: dropped like rma.mh
    assert set(reasons) == {"B", "C"} and out["k"] == 3  # k counts C's table (it adds nothing), not B


@pytest.mark.parametrize("text,measure", [
    ("study,yi,vi\nA,0.2,0.04\nB,0.5,\nC,0.1,0.02\nD,,0.03\n", "GEN"),
    ("study,estimate,se\nA,0.2,0.2\nB,0.5,\nC,0.1,0.1414\nD,,0.17\n", "GEN"),
    ("study,m1i,sd1i,n1i,m2i,sd2i,n2i\nA,10,2,20,12,2,20\nB,10,,20,12,2,20\nC,11,3,25,12,3,24\n"
     "D,10,2,,12,2,20\n", "SMD"),
    ("study,xi,ni\nA,4,20\nB,,20\nC,7,25\nD,3,\n", "PLO"),
])
def test_any_empty_data_cell_drops_only_its_row(tmp_path, text, measure):
    # an empty se (or vi) must not leave the study's estimate in the model without a variance
    path = tmp_path / "gap.csv"
    path.write_text(text)
    out = meta_json(path, "--measure", measure, "--method", "FE")
    assert [r["study"] for r in out["not_estimable"]] == ["B", "D"] and out["k"] == 2
    lines = text.splitlines()
    kept = tmp_path / "kept.csv"
    kept.write_text("\n".join([lines[0], lines[1], lines[3]]) + "\n")
    want = meta_json(kept, "--measure", measure, "--method", "FE")
    assert out["estimate"] == pytest.approx(want["estimate"], rel=1e-12)
    assert [s["yi"] for s in out["studies"] if s["study"] in ("B", "D")] == [None, None]


# --- the analyses beside the pooled one ----------------------------------------------------------------------

def bcg_csv(tmp_path, rows=None) -> Path:
    rows = rows or EXTRA["special"]["leave1out_bcg_DL"]["rows"]
    return write_csv(tmp_path / "bcg.csv", rows, {**BINARY_N, "year": "year", "alloc": "alloc"})


@pytest.mark.parametrize("method", ["DL", "REML", "PM"])
def test_leave_one_out_and_cumulative_flags_match_metafor(tmp_path, method):
    path = bcg_csv(tmp_path)
    out = meta_json(path, "--measure", "RR", "--method", method, "--leave-one-out", "--cumulative")
    loo = EXTRA["special"][f"leave1out_bcg_{method}"]["expected"]
    rows = EXTRA["special"][f"leave1out_bcg_{method}"]["rows"]
    assert [r["omitted"] for r in out["leave_one_out"]] == [r["study"] for r in rows]
    for key in ("estimate", "se", "tau2", "q", "i2"):
        for got, exp in zip((r[key] for r in out["leave_one_out"]), loo[key]):
            assert close(got, exp, "FE" if key == "q" else method), key
    cum = EXTRA["special"][f"cumul_bcg_{method}"]["expected"]
    assert [r["k"] for r in out["cumulative"]] == list(range(1, len(rows) + 1))
    years = [next(r["year"] for r in rows if r["study"] == step["added"]) for step in out["cumulative"]]
    assert years == sorted(years)
    for key in ("estimate", "se", "tau2"):
        for got, exp in zip((r[key] for r in out["cumulative"]), cum[key]):
            assert close(got, exp, method), key
    assert "studies" not in out["leave_one_out"][0]
    run = runner.invoke(app, ["meta", str(path), "--measure", "RR", "--method", method, "--leave-one-out",
                              "--cumulative"])
    assert run.exit_code == 0 and "Leave-one-out" in run.output and "Cumulative" in run.output


@pytest.mark.parametrize("method,test", [("FE", "z"), ("DL", "knha"), ("REML", "z")])
def test_subgroup_flag_carries_the_shared_tau2_moderator_test(tmp_path, method, test):
    case_ = INFERENCE["moderators"][f"bcg_RR_alloc_{method}_{test}"]
    exp = case_["expected"]
    path = bcg_csv(tmp_path, case_["rows"])
    out = meta_json(path, "--measure", "RR", "--method", method, "--test", test, "--subgroup", "alloc")
    m = out["subgroups"]["moderator"]
    assert m["qm_df"] == exp["qm_df"] and m["qe_df"] == exp["qe_df"] and m["qm_df2"] == exp["qm_df2"]
    for key in ("qm", "qm_p", "tau2"):
        assert close(m[key], exp[key], method), key
    assert close(m["qe"], exp["qe"]) and close(m["qe_p"], exp["qe_p"])
    assert set(out["subgroups"]["groups"]) == {"random", "alternate", "systematic"}
    run = runner.invoke(app, ["meta", str(path), "--measure", "RR", "--method", method, "--test", test,
                              "--subgroup", "alloc"])
    assert run.exit_code == 0 and "Moderator test (shared tau2" in run.output
    assert ("F(2, 10)" if test == "knha" else "QM(2)") in run.output


@pytest.mark.parametrize("method,test", [("DL", "z"), ("REML", "knha"), ("FE", "z")])
def test_egger_flag_gives_regtest_rma_and_the_lm_form(tmp_path, method, test):
    exp = INFERENCE["egger"][f"bcg_RR_{method}_{test}"]["expected"]
    path = bcg_csv(tmp_path)
    out = meta_json(path, "--measure", "RR", "--method", method, "--test", test, "--egger")
    rma = out["egger"]["rma"]
    for key in ("statistic", "p_value", "limit", "limit_ci_lower", "limit_ci_upper"):
        assert close(rma[key], exp[key], method), key
    assert rma["df"] == exp["df"]
    if method == "DL" and test == "z":
        lm = EXTRA["special"]["egger_bcg"]["expected"]  # regtest(model = "lm") on the same data
        assert close(out["egger"]["lm"]["intercept"], lm["intercept"]) and out["egger"]["lm"]["df"] == lm["df"]
    run = runner.invoke(app, ["meta", str(path), "--measure", "RR", "--method", method, "--test", test, "--egger"])
    assert run.exit_code == 0 and "Egger's test (meta-regression on the standard error" in run.output
    # the limit estimate is shown on the ratio scale like the pooled estimate
    assert f"{math.exp(exp['limit']):.3f}" in run.output


def test_egger_flag_on_a_peto_analysis_uses_petos_effects(tmp_path):
    c = INFERENCE["peto"]["hine"]
    path = write_csv(tmp_path / "hine.csv", c["rows"], BINARY_N)
    out = meta_json(path, "--measure", "OR", "--method", "PETO", "--egger")
    assert [s["yi"] for s in out["studies"]] == pytest.approx(c["yi"], rel=CLOSED_FORM_REL)
    assert close(out["egger"]["rma"]["statistic"], c["egger_rma"]["statistic"])


@pytest.mark.parametrize("name,method", [("trimfill_bcg_FE", "FE"), ("trimfill_bcg_REML", "REML")])
def test_trimfill_flag_matches_metafor(tmp_path, name, method):
    exp = EXTRA["special"][name]["expected"]
    path = bcg_csv(tmp_path, EXTRA["special"][name]["rows"])
    out = meta_json(path, "--measure", "RR", "--method", method, "--trimfill")
    tf = out["trimfill"]
    assert tf["k0"] == exp["k0"] and tf["side"] == exp["side"] and tf["result"]["k"] == exp["k"]
    for key in ("estimate", "se", "tau2", "ci_lower", "ci_upper"):
        assert close(tf["result"][key], exp[key], method), key
    filled = exp["filled_yi"] if isinstance(exp["filled_yi"], list) else [exp["filled_yi"]]
    assert [f["yi"] for f in tf["filled"]] == pytest.approx(filled, rel=1e-9, abs=ITERATIVE_ABS.get(method, 0))
    run = runner.invoke(app, ["meta", str(path), "--measure", "RR", "--method", method, "--trimfill"])
    assert run.exit_code == 0 and "Trim-and-fill (L0)" in run.output


def test_i2_and_h2_intervals_in_json_and_table(tmp_path):
    exp = INFERENCE["confint"]["bcg_RR_REML"]["expected"]
    path = bcg_csv(tmp_path, INFERENCE["confint"]["bcg_RR_REML"]["rows"])
    out = meta_json(path, "--measure", "RR", "--method", "REML")
    assert abs(out["tau2_ci_upper"] - exp["tau2_ci_upper"]) <= 1e-4
    assert out["i2_ci_lower"] < out["i2"] < out["i2_ci_upper"] and out["h2_ci_lower"] < out["h2"] < out["h2_ci_upper"]
    run = runner.invoke(app, ["meta", str(path), "--measure", "RR", "--method", "REML"])
    assert f"I2 = {out['i2']:.1f}% [{out['i2_ci_lower']:.1f}, {out['i2_ci_upper']:.1f}]" in run.output
    # a common-effect model prints no tau2 beside its I2
    run = runner.invoke(app, ["meta", str(path), "--measure", "RR", "--method", "FE"])
    assert run.exit_code == 0 and "tau2" not in run.output and "I2 = " in run.output
