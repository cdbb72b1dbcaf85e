"""An analysis without data reports `no_data` on every update, never `unchanged`, and never makes a version.

Real DuckDB under tmp_path; the review and trials come from tests/living_seed.py (its relief-share-pft
analysis has no extraction rows here).
"""

from __future__ import annotations

import datetime as dt

from living_seed import binary_csv, ingest, link_and_include, new_update, record_for, register, write_review
from livingmeta.config import load_review
from tasks.analysis import analyze_review
from tasks.versions import record_review_version
from warehouse import opened
from warehouse.extraction import import_extraction

T1 = dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)


def _statuses(wh, review_id, analysis_id):
    with opened(wh, read_only=True) as con:
        return [r[0] for r in con.execute(
            "SELECT status FROM analysis_runs WHERE review_id = ? AND analysis_id = ? ORDER BY analysis_run_id",
            [review_id, analysis_id]).fetchall()]


def test_no_data_analysis_stays_no_data_and_makes_no_version(tmp_path):
    review_dir = write_review(tmp_path / "review")
    wh = tmp_path / "wh.duckdb"
    review_id = register(review_dir, wh)
    kinds = {o.id: o.kind for o in load_review(review_dir).outcomes}
    uid = new_update(wh, review_id, T1)
    ingest(wh, review_id, uid, [record_for("Jann2020"), record_for("Geerts2021")], T1)
    link_and_include(wh, review_id, ["Jann2020", "Geerts2021"], T1)
    with opened(wh) as con:
        import_extraction(con, review_id, binary_csv(tmp_path / "x.csv", ["Jann2020", "Geerts2021"]), kinds, now=T1)
    first = analyze_review(str(review_dir), review_id, str(wh), uid, now=T1)
    assert first["no_data"] == ["relief-share-pft"]
    assert sorted(first["computed"]) == ["responders-or-mh", "responders-rr-re"]
    v1 = record_review_version(str(review_dir), review_id, str(wh), uid, T1, now=T1, environ={})
    assert v1["version"] == 1

    for i in (1, 2):  # nothing changed: the no-data analysis says so each time, the others are unchanged
        when = T1 + i * DAY
        uid = new_update(wh, review_id, when)
        again = analyze_review(str(review_dir), review_id, str(wh), uid, now=when)
        assert again["no_data"] == ["relief-share-pft"], again
        assert "relief-share-pft" not in again["unchanged"]
        assert sorted(again["unchanged"]) == ["responders-or-mh", "responders-rr-re"]
        assert record_review_version(str(review_dir), review_id, str(wh), uid, when, now=when,
                                     environ={})["version"] is None
    assert _statuses(wh, review_id, "relief-share-pft") == ["no_data", "no_data", "no_data"]
    assert _statuses(wh, review_id, "responders-or-mh") == ["computed", "unchanged", "unchanged"]
    with opened(wh, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM review_versions WHERE review_id = ?", [review_id]).fetchone()[0] == 1
        assert con.execute("SELECT count(*) FROM estimates WHERE analysis_id = 'relief-share-pft'").fetchone()[0] == 0


def test_review_with_only_no_data_never_gets_a_version(tmp_path):
    review_dir = write_review(tmp_path / "review")
    wh = tmp_path / "wh.duckdb"
    review_id = register(review_dir, wh)
    for i in range(2):
        when = T1 + i * DAY
        uid = new_update(wh, review_id, when)
        out = analyze_review(str(review_dir), review_id, str(wh), uid, now=when)
        assert sorted(out["no_data"]) == ["relief-share-pft", "responders-or-mh", "responders-rr-re"], out
        assert out["unchanged"] == [] and out["computed"] == []
        assert record_review_version(str(review_dir), review_id, str(wh), uid, when, now=when,
                                     environ={})["version"] is None
