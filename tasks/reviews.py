"""Tasks that register a review and open/close an update cycle."""

from __future__ import annotations

import datetime as dt

from prefect import task

from tasks.observe import redacts_exceptions

from livingmeta.config import ReviewConfig, load_review
from tasks import observe, runtime
from warehouse import opened
from warehouse.reviews import finish_update as _finish_update
from warehouse.reviews import start_update as _start_update
from warehouse.reviews import upsert_review


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@task(name="register-review")
@redacts_exceptions  # Prefect makes the FAILED message from the exception text
def register_review(review_dir: str, warehouse: str) -> ReviewConfig:
    """Validate review.toml and store it in the warehouse; returns the validated config.

    The one read of review.toml in an update cycle: every later step gets this config from the flow, so an edit
    of the file while a cycle runs takes effect in the next cycle, never halfway through this one."""
    cfg = load_review(review_dir)
    with opened(warehouse) as con:
        upsert_review(con, cfg, review_dir, utcnow())
    runtime.kill_point("review-registered")  # tests: review.toml read and stored, nothing searched yet
    return cfg


@task(name="start-update")
@redacts_exceptions  # Prefect makes the FAILED message from the exception text
def start_update(review_id: str, warehouse: str, as_of: dt.datetime, flow_run_id: str | None = None) -> int:
    """Open one update cycle in the warehouse."""
    with opened(warehouse) as con:
        update_id = _start_update(con, review_id, utcnow(), as_of, flow_run_id)
    observe.log("update %s of %s started, searching up to %s", update_id, review_id, as_of.isoformat())
    return update_id


@task(name="finish-update")
@redacts_exceptions  # Prefect makes the FAILED message from the exception text
def finish_update(update_id: int, warehouse: str, status: str, summary: dict, error: str | None = None) -> None:
    """Close an update cycle with what it did."""
    with opened(warehouse) as con:
        _finish_update(con, update_id, status, summary, utcnow(), error)
