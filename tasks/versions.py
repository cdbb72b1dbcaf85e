"""Versioning task (placeholder until versions, diffs and alerts land)."""

from __future__ import annotations

import datetime as dt

from prefect import task


@task(name="record-version")
def record_version(review_dir: str, review_id: str, warehouse: str, update_id: int, as_of: dt.datetime) -> dict:
    """Create a new review version when any estimate changed, with its diff and alerts."""
    return {"version": None}
