"""Storing search results: counts, versions, watermark, all-or-nothing."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from livingmeta.records import Record, hash_bytes
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


def test_a_run_left_running_is_marked_interrupted_by_the_next_start(tmp_path):
    con = connect(tmp_path / "wh.duckdb")
    kw = dict(query="q", mode="live", window_start=None, window_end=T0)
    dead = start_search_run(con, review_id="r1", source="pubmed", now=T0, **kw)  # its process was killed
    other_source = start_search_run(con, review_id="r1", source="ctgov", now=T0, **kw)
    other_review = start_search_run(con, review_id="r2", source="pubmed", now=T0, **kw)
    new = start_search_run(con, review_id="r1", source="pubmed", now=T1, **kw)
    rows = {r: (s, f, e) for r, s, f, e in con.execute("SELECT run_id, status, finished_at, error FROM search_runs").fetchall()}
    status, finished, error = rows[dead]
    assert status == "interrupted" and finished == T1
    assert "stopped before this run committed" in error and "nothing from it was stored" in error and f"Run {new}" in error
    assert rows[other_source][0] == rows[other_review][0] == rows[new][0] == "running"
    # the new run finishes normally; a finished run is never touched by a later start
    finish_search_run(con, run_id=new, review_id="r1", source="pubmed", fetched=[rec("1")], watermark=T1, now=T1)
    start_search_run(con, review_id="r1", source="pubmed", now=T1, **kw)
    assert con.execute("SELECT status FROM search_runs WHERE run_id = ?", [new]).fetchone()[0] == "succeeded"
    assert con.execute("SELECT status FROM search_runs WHERE run_id = ?", [dead]).fetchone()[0] == "interrupted"


def test_an_update_left_running_is_marked_interrupted_by_the_next_start(tmp_path):
    from warehouse.reviews import finish_update, start_update

    con = connect(tmp_path / "wh.duckdb")
    dead = start_update(con, "r1", T0, T0, "flow-1")
    other = start_update(con, "r2", T0, T0, "flow-2")
    new = start_update(con, "r1", T1, T1, "flow-3")
    rows = {u: (s, f, e) for u, s, f, e in con.execute("SELECT update_id, status, finished_at, error FROM update_runs").fetchall()}
    assert rows[dead][0] == "interrupted" and rows[dead][1] == T1
    assert "stopped before this update finished" in rows[dead][2] and f"Update {new}" in rows[dead][2]
    assert rows[other][0] == "running" and rows[new][0] == "running"
    finish_update(con, new, "succeeded", {}, T1)
    start_update(con, "r1", T1, T1, "flow-4")
    assert con.execute("SELECT status FROM update_runs WHERE update_id = ?", [new]).fetchone()[0] == "succeeded"


def test_every_distinct_payload_is_kept_even_when_the_record_did_not_change(tmp_path):
    con = connect(tmp_path / "wh.duckdb")

    def fetched(revised: str, title: str = "A trial") -> Fetched:
        r = Record(source="pubmed", source_id="1", title=title, year=2020)
        return Fetched(r, f"<PubmedArticle><PMID>1</PMID><DateRevised>{revised}</DateRevised><T>{title}</T></PubmedArticle>")

    def raw() -> list[str]:
        return [p for (p,) in con.execute("SELECT payload FROM raw_records ORDER BY raw_id").fetchall()]

    run(con, [fetched("2024-01-01")], T0, T0)
    _, c = run(con, [fetched("2024-01-20")], T1, T1)  # NCBI maintenance: only DateRevised moved
    assert (c.new, c.changed, c.unchanged) == (0, 0, 1)
    assert con.execute("SELECT count(*) FROM record_versions").fetchone()[0] == 1
    assert [("2024-01-01" in p, "2024-01-20" in p) for p in raw()] == [(True, False), (False, True)]
    _, c = run(con, [fetched("2024-01-20")], T1, T1)  # the same answer again: nothing new to keep
    assert c.unchanged == 1 and len(raw()) == 2
    run(con, [fetched("2024-01-01")], T1, T1)  # back to an earlier answer: it differs from the latest, so kept
    assert len(raw()) == 3
    _, c = run(con, [fetched("2024-02-01", "A trial (corrected)")], T1, T1)
    assert c.changed == 1 and len(raw()) == 4
    hashes = con.execute("SELECT payload_hash, payload FROM raw_records").fetchall()
    assert all(h == hash_bytes(p.encode()) for h, p in hashes)
    assert con.execute("SELECT DISTINCT run_id IS NOT NULL, fetched_at FROM raw_records ORDER BY 2").fetchall() == [
        (True, T0), (True, T1)]


def test_stored_hashes_and_data_are_those_of_record_to_dict():
    # the loader builds field dicts without dataclasses.asdict (speed): they must be the same JSON, same hash
    from pathlib import Path

    from livingmeta.records import canonical_json
    from livingmeta.sources.pubmed import parse_efetch

    fixtures = Path(__file__).resolve().parent / "fixtures" / "pubmed"
    # delete.xml repeats a PMID of articles.xml (marked deleted): keep one record per id, the last
    by_id = {a.record.record_id: a.record for name in ("articles.xml", "retraction.xml", "delete.xml")
             for a in parse_efetch(fixtures / name)}
    records = list(by_id.values())
    records.append(Record(source="ctgov", source_id="NCT02915263", extra={"overall_status": "RECRUITING", "arms": [{"n": 1}]}))
    con = connect(":memory:")
    _, counts = run(con, [Fetched(r, "x" + r.source_id) for r in records], T0, T0)
    assert counts.new == len(records) > 6
    stored = dict(con.execute("SELECT v.record_id, v.content_hash || ' ' || v.data FROM record_versions v").fetchall())
    assert stored == {r.record_id: f"{r.content_hash()} {canonical_json(r.to_dict())}" for r in records}
