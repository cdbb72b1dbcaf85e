"""Applying recorded human inputs (screening decisions, extraction) — used by replays and the demo."""

from __future__ import annotations

from prefect import task


@task(name="apply-recorded-inputs")
def apply_recorded_inputs(review_dir: str, review_id: str, warehouse: str, files: list[str]) -> dict:
    """Import recorded decision and extraction files as if people had entered them."""
    return {"applied": []}
