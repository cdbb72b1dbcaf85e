"""Storing search results: counts, versions, watermark, all-or-nothing."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from livingmeta.records import Record
from warehouse import connect
from warehouse.ingest import Fetched, fail_search_run, finish_search_run, get_watermark, start_search_run

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
T1 = dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc)


def rec(pmid: str, title: str = "A trial", **kw) -> Fetched:
    r = Record(source="pubmed", source_id=pmid, title=title, year=2020, **kw)
    return Fetched(r, f"<PubmedArticle><PMID>{pmid}</PMID><T>{title}</T></PubmedArticle>")


def run(con, fetched, now, watermark):
    rid = start_search_run(con, review_id="r1", source="pubmed", query="q", mode="replay", window_start=None,
                           window_end=now, now=now)
    return rid, finish_search_run(con, run_id=rid, review_id="r1", source="pubmed", fetched=fetched,
                                  watermark=watermark, now=now)


def test_new_changed_unchanged_and_versions(tmp_path):
    con = connect(tmp_path / "wh.duckdb")
    _, c1 = run(con, [rec("1"), rec("2"), rec("2")], T0, T0)  # a duplicate in one batch counts once
    assert (c1.new, c1.changed, c1.unchanged) == (2, 0, 0)
    _, c2 = run(con, [rec("1"), rec("2", "A trial (corrected)"), rec("3", deleted=True)], T1, T1)
    assert (c2.new, c2.changed, c2.unchanged, c2.deleted) == (1, 1, 1, 1)
    assert c2.changed_ids == ["pubmed:2"]
    versions = con.execute("SELECT record_id, version, changed_fields FROM record_versions ORDER BY 1, 2").fetchall()
    assert [(r, v) for r, v, _ in versions] == [("pubmed:1", 1), ("pubmed:2", 1), ("pubmed:2", 2), ("pubmed:3", 1)]
    assert json.loads(versions[2][2]) == ["title"]
    row = con.execute("SELECT version, title, first_seen_at, updated_at FROM records WHERE record_id = 'pubmed:2'").fetchone()
    assert row[0] == 2 and row[1] == "A trial (corrected)" and row[2] == T0 and row[3] == T1
    # raw payloads only for what was new or changed: exactly what the source returned
    assert con.execute("SELECT count(*) FROM raw_records").fetchone()[0] == 4
    assert con.execute("SELECT deleted FROM records WHERE record_id = 'pubmed:3'").fetchone()[0] is True
    assert get_watermark(con, "r1", "pubmed") == T1
    assert con.execute("SELECT count(*) FROM review_records WHERE review_id = 'r1'").fetchone()[0] == 3


def test_rerun_of_the_same_answer_changes_nothing(tmp_path):
    con = connect(tmp_path / "wh.duckdb")
    run(con, [rec("1"), rec("2")], T0, T0)
    cols = "SELECT * EXCLUDE (updated_at, last_run_id) FROM records ORDER BY record_id"
    snapshot = con.execute(cols).fetchall()
    _, c = run(con, [rec("1"), rec("2")], T1, T1)
    assert (c.new, c.changed, c.unchanged) == (0, 0, 2)
    assert con.execute(cols).fetchall() == snapshot
    assert con.execute("SELECT count(*) FROM record_versions").fetchone()[0] == 2


def test_failure_inside_the_transaction_leaves_everything_as_it_was(tmp_path):
    con = connect(tmp_path / "wh.duckdb")
    run(con, [rec("1")], T0, T0)
    before = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("records", "record_versions", "raw_records", "review_records")}
    rid = start_search_run(con, review_id="r1", source="pubmed", query="q", mode="replay", window_start=None,
                           window_end=T1, now=T1)
    bad = Fetched(Record(source="pubmed", source_id="9", title="x"), object())  # payload that cannot be stored
    with pytest.raises(Exception):
        finish_search_run(con, run_id=rid, review_id="r1", source="pubmed", fetched=[rec("2"), bad],
                          watermark=T1, now=T1)
    after = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in before}
    assert after == before
    assert get_watermark(con, "r1", "pubmed") == T0
    fail_search_run(con, rid, "boom: fix the thing", T1)
    assert con.execute("SELECT status, error FROM search_runs WHERE run_id = ?", [rid]).fetchone() == ("failed", "boom: fix the thing")


def test_registry_status_change_is_an_event(tmp_path):
    con = connect(tmp_path / "wh.duckdb")

    def ct(status):
        r = Record(source="ctgov", source_id="NCT02915263", title="t", extra={"overall_status": status})
        return Fetched(r, json.dumps({"nct": "NCT02915263", "status": status}))

    for now, status in ((T0, "RECRUITING"), (T1, "TERMINATED")):
        rid = start_search_run(con, review_id="r1", source="ctgov", query="q", mode="replay", window_start=None,
                               window_end=now, now=now)
        finish_search_run(con, run_id=rid, review_id="r1", source="ctgov", fetched=[ct(status)], watermark=now, now=now)
    assert con.execute("SELECT kind, old_value, new_value FROM registry_events").fetchall() == [
        ("status_change", "RECRUITING", "TERMINATED")]
