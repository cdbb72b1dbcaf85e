"""CLI: `estimates`, `diff`, `extract template|import|suggestions|accept` over a real seeded warehouse."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from flows.cli import app
from living_seed import build_two_versions

T1 = dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc)
runner = CliRunner()


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    # built once for the module: the commands below only read it (or fail before writing)
    return build_two_versions(tmp_path_factory.mktemp("two_versions"))


def test_estimates_back_transformed_and_log(two_versions):
    review_dir, wh, rid = two_versions
    r = runner.invoke(app, ["estimates", rid, "--warehouse", wh, "--version", "1", "--json"])
    assert r.exit_code == 0, r.output
    rows = {x["analysis"]: x for x in json.loads(r.output)}
    mh = rows["responders-or-mh"]
    assert (mh["version"], mh["k"], mh["participants"]) == (1, 2, 83.0)
    assert mh["estimate"] == pytest.approx(2.908, abs=1e-3)
    assert (mh["ci_lower"], mh["ci_upper"]) == (pytest.approx(1.157, abs=1e-3), pytest.approx(7.309, abs=1e-3))
    assert mh["log_estimate"] == pytest.approx(1.0675, abs=1e-4)
    r = runner.invoke(app, ["estimates", str(review_dir), "--warehouse", wh], env={"COLUMNS": "250"})
    assert r.exit_code == 0 and "version 2" in r.output and "responders-or-mh" in r.output
    r = runner.invoke(app, ["estimates", rid, "--warehouse", wh, "--version", "7"])
    assert r.exit_code == 2 and "no version 7" in r.output


def test_diff_latest_and_explicit(two_versions):
    review_dir, wh, rid = two_versions
    r = runner.invoke(app, ["diff", rid, "--warehouse", wh, "--json"])
    assert r.exit_code == 0, r.output
    d = {x["analysis_id"]: x for x in json.loads(r.output)}
    assert "studies_added" in d["responders-or-mh"]["changes"] and d["responders-or-mh"]["studies_added"] == ["Novak2023"]
    r2 = runner.invoke(app, ["diff", rid, "--warehouse", wh, "--from", "1", "--to", "2"])
    assert r2.exit_code == 0 and "studies added: Novak2023" in r2.output
    r3 = runner.invoke(app, ["diff", rid, "--warehouse", wh, "--from", "2", "--to", "1"])
    assert r3.exit_code == 2 and "must be older" in r3.output


def test_extract_template_and_bad_import(two_versions, tmp_path):
    review_dir, wh, rid = two_versions
    out = tmp_path / "tpl.csv"
    r = runner.invoke(app, ["extract", "template", str(review_dir), "responders", "--out", str(out), "--warehouse", wh])
    assert r.exit_code == 0, r.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("study,outcome,arm") and len(lines) == 1 + 3 * 2
    assert "Geerts2021,responders,treatment" in lines[1] or "Geerts2021,responders,treatment" in "\n".join(lines)
    r = runner.invoke(app, ["extract", "template", str(review_dir), "nope", "--warehouse", wh])
    assert r.exit_code == 2 and "unknown outcome 'nope'" in r.output
    bad = tmp_path / "bad.csv"
    bad.write_text(out.read_text())  # empty numbers and no extractor
    r = runner.invoke(app, ["extract", "import", str(review_dir), str(bad), "--warehouse", wh])
    assert r.exit_code == 2 and "line 2, column 'events'" in r.output.replace("\n", "")
    r = runner.invoke(app, ["extract", "suggestions", rid, "--warehouse", wh, "--json"])
    assert r.exit_code == 0 and json.loads(r.output) == []
    r = runner.invoke(app, ["extract", "accept", rid, "12345", "--outcome", "responders", "--extractor", "AB",
                            "--warehouse", wh])
    assert r.exit_code == 2 and "no extraction row with this id" in r.output.replace("\n", "")
