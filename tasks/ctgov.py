"""ClinicalTrials.gov search task (placeholder until the registry source lands: records an empty replay run)."""

from __future__ import annotations

import datetime as dt

from prefect import task

from livingmeta.config import load_review
from tasks.reviews import utcnow
from warehouse import opened
from warehouse.ingest import finish_search_run, start_search_run


@task(name="search-ctgov")
def search_ctgov(review_dir: str, warehouse: str, update_id: int | None, as_of: dt.datetime,
                  replay_dir: str | None = None) -> dict:
    """Search ClinicalTrials.gov for the review's condition and intervention and store new and changed records."""
    cfg = load_review(review_dir)
    src = cfg.sources.ctgov
    if src is None or not src.enabled:
        return {"source": "ctgov", "status": "skipped"}
    with opened(warehouse) as con:
        run_id = start_search_run(con, review_id=cfg.id, source="ctgov", query=src.condition, mode="replay",
                                  window_start=None, window_end=as_of, now=utcnow(), update_id=update_id)
        counts = finish_search_run(con, run_id=run_id, review_id=cfg.id, source="ctgov", fetched=[],
                                   watermark=as_of, now=utcnow())
    return {"source": "ctgov", "status": "succeeded", "run_id": run_id, **counts.as_dict()}
