"""Analysis task (placeholder until the living analysis lands)."""

from __future__ import annotations

from prefect import task


@task(name="analyze")
def analyze(review_dir: str, review_id: str, warehouse: str, update_id: int) -> dict:
    """Re-run every configured analysis whose inputs changed."""
    return {"computed": [], "unchanged": []}
