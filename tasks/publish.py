"""Publishing task (placeholder until reports and snapshots land)."""

from __future__ import annotations

from prefect import task


@task(name="publish")
def publish(review_dir: str, review_id: str, warehouse: str, out_dir: str) -> dict:
    """Write the report for the latest version and publish a read-only warehouse snapshot."""
    return {"report": None, "snapshot": None}
