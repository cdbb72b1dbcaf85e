"""End to end over recorded updates, as plain task functions over a real DuckDB:

1. Jann 2020 + Geerts 2021 -> version 1 (MH OR 2.91, 95% CI 1.16-7.31).
2. a new trial changes the estimate -> version 2, classified diff, alert POSTed to a receiver on 127.0.0.1.
3. nothing new -> no version, no alert, every analysis `unchanged` (fast).
4. the new trial's record is retracted -> version 3 without it; the diff says it was retracted.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from living_seed import (Receiver, binary_csv, ingest, link_and_include, new_update, record_for, register,
                         write_review)
from livingmeta.config import load_review
from tasks.analysis import analyze
from tasks.versions import record_version, record_review_version
from warehouse import opened
from warehouse.extraction import import_extraction

DAY = dt.timedelta(days=1)
T1 = dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc)


def _outcomes(review_dir):
    return {o.id: o.kind for o in load_review(review_dir).outcomes}


def _cycle(review_dir, wh, review_id, when, records, studies=(), csv=None, env=None, fail=None):
    uid = new_update(wh, review_id, when)
    ingest(wh, review_id, uid, records, when, fail=fail)
    if studies:
        link_and_include(wh, review_id, list(studies), when)
    if csv is not None:
        with opened(wh) as con:
            import_extraction(con, review_id, csv, _outcomes(review_dir), now=when)
    t0 = time.perf_counter()
    analyses = analyze.fn(str(review_dir), review_id, str(wh), uid)
    analyze_seconds = time.perf_counter() - t0
    version = record_review_version(str(review_dir), review_id, str(wh), uid, when, now=when, environ=env or {})
    return analyses, version, analyze_seconds


def test_living_cycle_versions_diffs_alerts(tmp_path, warehouse_path):
    review_dir = write_review(tmp_path / "review", webhook=True)
    rid = register(review_dir, warehouse_path)
    with Receiver() as hook:
        env = {"LM_TEST_WEBHOOK": hook.url}

        # 1: two trials -> version 1
        csv1 = binary_csv(tmp_path / "x1.csv", ["Jann2020", "Geerts2021"])
        a1, v1, _ = _cycle(review_dir, warehouse_path, rid, T1, [record_for("Jann2020"), record_for("Geerts2021")],
                           ["Jann2020", "Geerts2021"], csv1, env)
        assert sorted(a1["computed"]) == ["responders-or-mh", "responders-rr-re"]
        assert a1["no_data"] == ["relief-share-pft"]
        assert v1["version"] == 1 and v1["from_version"] is None
        with opened(warehouse_path) as con:
            est = con.execute("SELECT estimate, ci_lower, ci_upper, k, participants FROM v_current_estimates "
                              "WHERE analysis_id = 'responders-or-mh'").fetchone()
        # the published Zis 2022 pooled OR for these two trials: 2.91 (1.16 to 7.31); metafor rma.mh agrees
        assert est[0] == pytest.approx(2.9082, abs=5e-4)
        assert est[1] == pytest.approx(1.1571, abs=5e-4)
        assert est[2] == pytest.approx(7.3094, abs=5e-4)
        assert est[3:] == (2, 83.0)
        assert len(hook.received) == 1 and hook.received[0]["kind"] == "estimate_change"

        # 2: a new trial -> version 2 with a classified diff, delivered to the webhook
        csv2 = binary_csv(tmp_path / "x2.csv", ["Jann2020", "Geerts2021", "Novak2023"])
        a2, v2, _ = _cycle(review_dir, warehouse_path, rid, T1 + 30 * DAY, [record_for("Novak2023")], ["Novak2023"],
                           csv2, env)
        assert sorted(a2["computed"]) == ["responders-or-mh", "responders-rr-re"]
        assert v2["version"] == 2 and v2["from_version"] == 1
        assert v2["trigger"]["new_studies"] == ["Novak2023"]
        with opened(warehouse_path) as con:
            diffs = {r[0]: (json.loads(r[1]), json.loads(r[2]), json.loads(r[3])) for r in con.execute(
                "SELECT analysis_id, changes, old, new FROM estimate_diffs WHERE review_id = ? AND to_version = 2",
                [rid]).fetchall()}
            deliveries = con.execute("SELECT channel, status, attempts FROM alert_deliveries ORDER BY alert_id, "
                                     "channel").fetchall()
        changes, old, new = diffs["responders-or-mh"]
        assert "studies_added" in changes
        # Mantel-Haenszel by hand: sum(a d / n) / sum(b c / n) = (84/23 + 252/60 + 1140/100) / (162/60 + 240/100)
        mh = (84 / 23 + 252 / 60 + 1140 / 100) / (162 / 60 + 240 / 100)
        assert new["estimate"] == pytest.approx(mh, rel=1e-9)
        # 2.91 -> 3.77 is +30%, above the 10% threshold; the CI (log scale) narrows by more than 20%
        assert "relative_change" in changes
        assert "ci_narrowed" in changes
        assert old["k"] == 2 and new["k"] == 3
        assert old["estimate"] == pytest.approx(2.9082, abs=5e-4)
        assert "significance_gained" not in changes and "direction_change" not in changes
        assert len(hook.received) == 2 and hook.received[1]["version"] == 2
        assert "Novak2023" in hook.received[1]["body"]
        assert ("webhook:LM_TEST_WEBHOOK", "delivered", 1) in deliveries
        assert (review_dir / "alerts.log").read_text().count("## [") == 2

        # 3: nothing new -> no version, no alert, analyses skipped quickly
        a3, v3, secs = _cycle(review_dir, warehouse_path, rid, T1 + 60 * DAY, [], env=env)
        # relief-share has no extraction rows in this review: it stays no_data (never "unchanged" estimates)
        assert a3["computed"] == [] and a3["no_data"] == ["relief-share-pft"]
        assert sorted(a3["unchanged"]) == ["responders-or-mh", "responders-rr-re"]
        assert v3["version"] is None and v3["alerts"] == []
        assert len(hook.received) == 2
        assert max(a3["seconds"].values()) < 1.0, a3["seconds"]

        # 4: Novak2023's record is retracted -> it leaves the analyses; the diff says so
        a4, v4, _ = _cycle(review_dir, warehouse_path, rid, T1 + 90 * DAY, [record_for("Novak2023", retracted=True)],
                           env=env)
        assert sorted(a4["computed"]) == ["responders-or-mh", "responders-rr-re"]
        assert v4["version"] == 3
        assert v4["trigger"]["retracted"] == ["Novak2023"]
        assert "studies_retracted" in v4["changes"]["responders-or-mh"]
        assert "studies_removed" not in v4["changes"]["responders-or-mh"]
        with opened(warehouse_path) as con:
            k, est = con.execute("SELECT k, estimate FROM v_current_estimates WHERE analysis_id = "
                                 "'responders-or-mh'").fetchone()
            versions = con.execute("SELECT version, trigger FROM review_versions ORDER BY version").fetchall()
            unchanged_links = con.execute(
                "SELECT count(*) FROM review_version_runs vr JOIN analysis_runs r USING (analysis_run_id) "
                "WHERE r.status = 'unchanged'").fetchone()[0]
        assert (k, est) == (2, pytest.approx(2.9082, abs=5e-4))
        assert [v for v, _ in versions] == [1, 2, 3]
        assert unchanged_links == 0  # versions link the run that computed their numbers
        # the version alert (a retraction is a watched change) and the retraction event itself
        kinds = sorted((m["kind"], m["severity"]) for m in hook.received[2:])
        assert kinds == [("estimate_change", "warning"), ("registry_event", "warning")]


def test_failed_delivery_is_retried_recorded_and_does_not_block(tmp_path, warehouse_path):
    review_dir = write_review(tmp_path / "review", webhook=True)
    rid = register(review_dir, warehouse_path)
    csv1 = binary_csv(tmp_path / "x1.csv", ["Jann2020", "Geerts2021"])
    with Receiver(status=500) as hook:
        _, v1, _ = _cycle(review_dir, warehouse_path, rid, T1, [record_for("Jann2020"), record_for("Geerts2021")],
                          ["Jann2020", "Geerts2021"], csv1, {"LM_TEST_WEBHOOK": hook.url})
    assert v1["version"] == 1
    assert v1["deliveries"] == {"delivered": 1, "failed": 1}  # the file channel still worked
    assert len(hook.received) == 3  # three attempts
    with opened(warehouse_path) as con:
        row = con.execute("SELECT status, attempts, last_error FROM alert_deliveries WHERE channel LIKE 'webhook:%'"
                          ).fetchone()
        failed = con.execute("SELECT failed FROM v_alerts").fetchone()[0]
    assert row[0] == "failed" and row[1] == 3 and "500" in row[2]
    assert failed == 1


def test_missing_webhook_variable_is_recorded_not_raised(tmp_path, warehouse_path):
    review_dir = write_review(tmp_path / "review", webhook=True)
    rid = register(review_dir, warehouse_path)
    csv1 = binary_csv(tmp_path / "x1.csv", ["Jann2020", "Geerts2021"])
    _, v1, _ = _cycle(review_dir, warehouse_path, rid, T1, [record_for("Jann2020"), record_for("Geerts2021")],
                      ["Jann2020", "Geerts2021"], csv1, {})
    assert v1["version"] == 1
    with opened(warehouse_path) as con:
        err = con.execute("SELECT last_error FROM alert_deliveries WHERE channel = 'webhook:LM_TEST_WEBHOOK'").fetchone()
    assert "LM_TEST_WEBHOOK is not set" in err[0]


def test_failed_search_and_no_data_make_no_version_but_alert(tmp_path, warehouse_path):
    review_dir = write_review(tmp_path / "review")
    rid = register(review_dir, warehouse_path)
    analyses, version, _ = _cycle(review_dir, warehouse_path, rid, T1, [], fail="HTTP 500 from esearch")
    assert sorted(analyses["no_data"]) == ["relief-share-pft", "responders-or-mh", "responders-rr-re"]
    assert version["version"] is None
    with opened(warehouse_path) as con:
        alerts = con.execute("SELECT kind, severity FROM alerts").fetchall()
    assert alerts == [("search_failed", "critical")]


def test_single_study_with_zero_cell_is_stored_with_engine_warning(tmp_path, warehouse_path):
    review_dir = write_review(tmp_path / "review")
    rid = register(review_dir, warehouse_path)
    csv1 = binary_csv(tmp_path / "x1.csv", ["Jann2020"])
    analyses, version, _ = _cycle(review_dir, warehouse_path, rid, T1, [record_for("Jann2020")], ["Jann2020"], csv1)
    assert "responders-or-mh" in analyses["computed"]
    with opened(warehouse_path) as con:
        est, warnings, k = con.execute("SELECT estimate, warnings, k FROM estimates WHERE analysis_id = "
                                       "'responders-or-mh'").fetchone()
    assert est is None and k == 1
    assert "Mantel-Haenszel estimate undefined" in json.loads(warnings)[0]
    # the RR random-effects analysis is estimable with one study: version 1 publishes it
    assert version["version"] == 1


def test_record_version_task_signature(tmp_path, warehouse_path):
    """The Prefect task keeps the flow's signature and runs as a plain function."""
    review_dir = write_review(tmp_path / "review")
    rid = register(review_dir, warehouse_path)
    uid = new_update(warehouse_path, rid, T1)
    assert analyze.fn(str(review_dir), rid, str(warehouse_path), uid)["no_data"]
    assert record_version.fn(str(review_dir), rid, str(warehouse_path), uid, T1)["version"] is None
