"""Screening tasks: new and changed records reach people, ranked, with an alert."""

from __future__ import annotations

from prefect import task

from tasks.observe import redacts_exceptions

from livingmeta.config import ReviewConfig, load_review
from tasks import observe, runtime
from tasks.reviews import utcnow
from warehouse import opened
from warehouse.screening import flag_candidates as _flag_candidates


@task(name="flag-candidates")
@redacts_exceptions  # Prefect makes the FAILED message from the exception text
def flag_candidates(review_dir: str, review_id: str, warehouse: str, cfg: ReviewConfig | None = None) -> dict:
    """Put new and changed records in the screening queue with their reasons and rank."""
    cfg = cfg or load_review(review_dir)  # the flow passes the cycle's config: review.toml is read once per cycle
    with opened(warehouse) as con:
        queue = _flag_candidates(con, review_id, cfg, utcnow())
    observe.log("queued %s new record(s) for screening (%s set aside as duplicates, %s changed since screened, "
                "%s restored); %s wait for screening%s", queue.get("new", 0), queue.get("duplicates", 0),
                queue.get("changed", 0), queue.get("restored", 0), queue.get("pending", 0),
                f" (ranked by {queue['ranker']})" if queue.get("ranker") else "")
    runtime.kill_point("screening-flagged")  # crash tests: queue committed, nothing analysed yet
    return queue
