"""Screening tasks (placeholder until screening lands: new records enter the queue unranked)."""

from __future__ import annotations

from prefect import task

from tasks.reviews import utcnow
from warehouse import opened, transaction


@task(name="flag-candidates")
def flag_candidates(review_dir: str, review_id: str, warehouse: str) -> dict:
    """Put new and changed records in the screening queue with their reasons and rank."""
    with opened(warehouse) as con, transaction(con):
        con.execute(
            "INSERT INTO screening_queue (review_id, record_id, record_version, entered_at, label, ranker) "
            "SELECT ?, r.record_id, r.version, ?, 'candidate', 'none' FROM review_records rr JOIN records r USING (record_id) "
            "WHERE rr.review_id = ? ON CONFLICT DO NOTHING", [review_id, utcnow(), review_id])
        (n,) = con.execute("SELECT count(*) FROM v_screening_queue WHERE review_id = ?", [review_id]).fetchone()
    return {"pending": n}
