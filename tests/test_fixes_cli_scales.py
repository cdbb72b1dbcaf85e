"""`diff --json` and `estimates --json` name the analysis scale by what it is: log_* for ratio measures,
transformed_* with `scale` for proportions pooled on a transformed scale (PFT: double arcsine, not a log).

Real DuckDB under tmp_path seeded through extraction import -> analyze -> record version (tests/living_seed.py).
"""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.cli.analysis import estimate_rows, name_scale_fields
from living_seed import binary_csv, ingest, link_and_include, new_update, record_for, register, write_review
from tasks.analysis import analyze_review
from tasks.versions import record_review_version

T1 = dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc)
SHARE = {"Jann2020": (5, 11), "Geerts2021": (14, 30), "Novak2023": (40, 50)}
runner = CliRunner()


def _pft(x, n):
    return 0.5 * (math.asin(math.sqrt(x / (n + 1))) + math.asin(math.sqrt((x + 1) / (n + 1))))


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("scales")
    wh = tmp_path / "warehouse.duckdb"
    review_dir = write_review(tmp_path / "review")
    rid = register(review_dir, wh)
    for i, studies in enumerate((["Jann2020", "Geerts2021"], ["Jann2020", "Geerts2021", "Novak2023"])):
        when = T1 + dt.timedelta(days=30 * i)
        uid = new_update(wh, rid, when)
        new = studies if i == 0 else studies[-1:]
        ingest(wh, rid, uid, [record_for(s) for s in new], when)
        link_and_include(wh, rid, new, when)
        share = "".join(f"{s},relief-share,single,IVIG,{SHARE[s][0]},{SHARE[s][1]},,,,,,,,,,AB,2024-01-02,T3,\n"
                        for s in studies)
        f = binary_csv(tmp_path / f"x{i}.csv", studies, extra=share)
        r = runner.invoke(app, ["extract", "import", str(review_dir), str(f), "--warehouse", str(wh), "--json"])
        assert r.exit_code == 0, r.output
        analyze_review(str(review_dir), rid, str(wh), uid, now=when)
        assert record_review_version(str(review_dir), rid, str(wh), uid, when, now=when, environ={})["version"] == i + 1
    return str(wh), rid


def _check_proportion(n: dict, what: str):
    assert not any(k.startswith("log_") for k in n), what
    assert n["scale"] == "Freeman-Tukey double arcsine", what
    assert 0 <= n["ci_lower"] < n["estimate"] < n["ci_upper"] <= 1, what  # proportions
    assert n["transformed_ci_lower"] < n["transformed_estimate"] < n["transformed_ci_upper"], what


def _check_ratio(n: dict, what: str):
    assert n["scale"] == "log" and not any(k.startswith("transformed_") for k in n), what
    assert n["log_estimate"] == pytest.approx(math.log(n["estimate"]), rel=1e-12), what
    assert n["log_ci_lower"] == pytest.approx(math.log(n["ci_lower"]), rel=1e-12), what


@pytest.mark.parametrize("args", [[], ["--from", "1", "--to", "2"]], ids=["stored", "explicit"])
def test_diff_json_names_the_scales(two_versions, args):
    wh, rid = two_versions
    r = runner.invoke(app, ["diff", rid, "--warehouse", wh, "--json", *args])
    assert r.exit_code == 0, r.output
    d = {x["analysis_id"]: x for x in json.loads(r.output)}
    assert {"relief-share-pft", "responders-or-mh", "responders-rr-re"} <= set(d)
    for side in ("old", "new"):
        _check_proportion(d["relief-share-pft"][side], f"pft {side}")
        _check_ratio(d["responders-or-mh"][side], f"or {side}")
        _check_ratio(d["responders-rr-re"][side], f"rr {side}")


def test_estimates_json_names_the_scales(two_versions):
    wh, rid = two_versions
    r = runner.invoke(app, ["estimates", rid, "--warehouse", wh, "--version", "1", "--json"])
    assert r.exit_code == 0, r.output
    rows = {x["analysis"]: x for x in json.loads(r.output)}
    _check_proportion(rows["relief-share-pft"], "pft")
    _check_ratio(rows["responders-or-mh"], "or")
    # the PFT pooled value lies between the two studies' own double-arcsine values (k = 2)
    lo, hi = sorted(_pft(*SHARE[s]) for s in ("Jann2020", "Geerts2021"))
    assert lo < rows["relief-share-pft"]["transformed_estimate"] < hi


def test_difference_measures_carry_no_second_scale():
    row = {"analysis_id": "x-rd", "version": 1, "k": 2, "participants": 40, "measure": "RD", "method": "DL",
           "estimate": 0.1, "ci_lower": -0.1, "ci_upper": 0.3, "pi_lower": None, "pi_upper": None, "p_value": 0.3,
           "i2": 0.0, "tau2": 0.0, "log_estimate": 0.1, "log_ci_lower": -0.1, "log_ci_upper": 0.3}
    (out,) = estimate_rows([row])
    assert "scale" not in out and not any(k.startswith(("log_", "transformed_")) for k in out)
    shown = name_scale_fields({"estimate": 0.1, "ci_lower": -0.1, "ci_upper": 0.3, "log_estimate": 0.1,
                               "log_ci_lower": -0.1, "log_ci_upper": 0.3, "measure": "MD", "method": "REML"})
    assert shown == {"estimate": 0.1, "ci_lower": -0.1, "ci_upper": 0.3, "measure": "MD", "method": "REML"}
    assert name_scale_fields(None) is None
    gen = name_scale_fields({"estimate": 2.0, "log_estimate": math.log(2.0), "log_ci_lower": 0.1, "log_ci_upper": 1.0,
                             "measure": "GEN"})
    assert gen["scale"] == "log" and gen["log_estimate"] == math.log(2.0)
