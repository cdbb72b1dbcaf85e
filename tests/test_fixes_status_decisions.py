"""`livingmeta status` counts current decisions: an undone decision no longer counts (review_status).

Real DuckDB under tmp_path; records through warehouse.ingest, decisions through warehouse.screening.
"""

from __future__ import annotations

import datetime as dt

from living_seed import ingest, new_update, record_for, register, write_review
from warehouse import opened
from warehouse.reviews import review_status
from warehouse.screening import record_decision, screening_status, undo_decision

T1 = dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc)


def test_undone_and_superseded_decisions_do_not_count(tmp_path):
    review_dir = write_review(tmp_path / "review")
    wh = tmp_path / "wh.duckdb"
    review_id = register(review_dir, wh)
    uid = new_update(wh, review_id, T1)
    ingest(wh, review_id, uid, [record_for(s) for s in ("Jann2020", "Geerts2021", "Novak2023")], T1)
    with opened(wh) as con:
        ids = []
        for pmid in ("1001", "1002", "1003"):
            ids.append(record_decision(con, review_id=review_id, record_id=f"pubmed:{pmid}", reviewer="AB",
                                       stage="title_abstract", decision="include", reason=None, origin="terminal",
                                       now=T1))
        assert review_status(con, review_id)["decisions"] == 3
        # one record screened twice: a wrong "exclude" undone, then "include" again
        wrong = record_decision(con, review_id=review_id, record_id="pubmed:1003", reviewer="AB",
                                stage="title_abstract", decision="exclude", reason=None, origin="terminal",
                                now=T1 + dt.timedelta(minutes=1))
        undo_decision(con, review_id=review_id, decision_id=wrong, reviewer="AB", now=T1 + dt.timedelta(minutes=2))
        st = review_status(con, review_id)
        assert st["decisions"] == 3 == screening_status(con, review_id)["screened"]
        undo_decision(con, review_id=review_id, decision_id=ids[0], reviewer="AB", now=T1 + dt.timedelta(minutes=3))
        assert review_status(con, review_id)["decisions"] == 2 == screening_status(con, review_id)["screened"]
        # every row is still on record (append-only), only the count of current decisions changed
        assert con.execute("SELECT count(*) FROM screening_decisions WHERE review_id = ?", [review_id]).fetchone()[0] == 4
