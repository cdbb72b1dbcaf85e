"""Linking task (placeholder until study linking lands: every record is its own study)."""

from __future__ import annotations

from prefect import task

from tasks.reviews import utcnow
from warehouse import opened, transaction


@task(name="link-studies")
def link_studies(review_id: str, warehouse: str) -> dict:
    """Group the review's records into studies."""
    now = utcnow()
    with opened(warehouse) as con, transaction(con):
        con.execute(
            "INSERT INTO studies SELECT ?, rr.record_id, coalesce(r.title, rr.record_id), ? FROM review_records rr "
            "JOIN records r USING (record_id) WHERE rr.review_id = ? ON CONFLICT DO NOTHING", [review_id, now, review_id])
        con.execute(
            "INSERT INTO study_links SELECT ?, record_id, record_id, 'singleton', NULL, ? FROM review_records "
            "WHERE review_id = ? ON CONFLICT DO NOTHING", [review_id, now, review_id])
        (n,) = con.execute("SELECT count(DISTINCT study_id) FROM study_links WHERE review_id = ?", [review_id]).fetchone()
    return {"studies": n}
