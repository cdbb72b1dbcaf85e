"""Applying recorded human inputs (screening decisions, extraction) — used by replays and the demo."""

from __future__ import annotations

import csv
from pathlib import Path

from prefect import task

from tasks.observe import redacts_exceptions

from livingmeta.config import ReviewConfig, load_review
from tasks import observe, runtime
from warehouse import opened


def input_kind(path: Path) -> str:
    """'decisions' or 'extraction', from the file's header row."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        header = {h.strip() for h in next(csv.reader(fh), [])}
    if {"record_id", "decision"} <= header:
        return "decisions"
    if {"study", "outcome", "arm"} <= header:
        return "extraction"
    raise ValueError(f"{path}: line 1: cannot tell what this file is; a decisions file has columns record_id and "
                     "decision, an extraction file has columns study, outcome and arm")


@task(name="apply-recorded-inputs")
@redacts_exceptions  # Prefect makes the FAILED message from the exception text
def apply_recorded_inputs(review_dir: str, review_id: str, warehouse: str, files: list[str],
                          cfg: ReviewConfig | None = None) -> dict:
    """Import recorded decision and extraction files as if people had entered them (idempotent)."""
    cfg = cfg or load_review(review_dir)  # the flow passes the cycle's config: review.toml is read once per cycle
    applied = []
    for f in files:
        path = Path(f)
        kind = input_kind(path)
        with opened(warehouse) as con:
            if kind == "decisions":
                from warehouse.screening import import_decisions

                result = import_decisions(con, review_id, path, origin="demo")
            else:
                from warehouse.extraction import import_extraction

                result = import_extraction(con, review_id, path, {o.id: o.kind for o in cfg.outcomes}, origin="demo")
        runtime.kill_point("input-applied")  # crash tests: one file imported, the next not yet
        applied.append({"file": path.name, "kind": kind, **(result if isinstance(result, dict) else {})})
        observe.log("applied recorded %s file %s", kind, path.name)
    return {"applied": applied}
