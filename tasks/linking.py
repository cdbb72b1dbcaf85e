"""Linking task: group the review's records into studies and suggest extraction rows from registry results."""

from __future__ import annotations

from prefect import task

from tasks.observe import redacts_exceptions

from tasks import observe, runtime
from tasks.reviews import utcnow
from warehouse import opened
from warehouse.linking import link_review


@task(name="link-studies")
@redacts_exceptions  # Prefect makes the FAILED message from the exception text
def link_studies(review_id: str, warehouse: str) -> dict:
    """Group the review's records into studies (people's decisions win) and suggest rows from registry results."""
    now = utcnow()
    with opened(warehouse) as con:
        summary = link_review(con, review_id, now)
    runtime.kill_point("linking-relinked")  # crash tests: links and suggestions committed, the queue not refreshed
    observe.log("linked %s records into %s studies (%s new, %s merged, %s link conflicts)", summary.get("records"),
                summary.get("studies"), summary.get("new_studies", 0), len(summary.get("merged") or []),
                summary.get("conflicts", 0))
    return summary
