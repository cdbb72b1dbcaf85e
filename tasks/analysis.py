"""Analysis task: re-run the analyses whose inputs changed, record the others as unchanged."""

from __future__ import annotations

import datetime as dt
import logging
import time

from prefect import task

from tasks.observe import redacts_exceptions

from livingmeta.analysis import build_study_rows, input_hash, run_analysis
from livingmeta.config import load_review
from livingmeta.stats import ENGINE_VERSION, StatsInputError
from tasks import observe, runtime
from warehouse import opened
from warehouse.analysis import analysis_inputs, last_reusable_run, store_run


def analyze_review(review_dir: str, review_id: str, warehouse: str, update_id: int | None,
                   now: dt.datetime | None = None) -> dict:
    """Run every configured analysis whose input hash changed (plain function; the task wraps it)."""
    cfg = load_review(review_dir)
    now = now or dt.datetime.now(dt.timezone.utc)
    kinds = {o.id: o.kind for o in cfg.outcomes}
    out: dict[str, list] = {"computed": [], "unchanged": [], "no_data": [], "failed": []}
    timings: dict[str, float] = {}
    with opened(warehouse) as con:
        for a in cfg.analyses:
            t0 = time.perf_counter()
            kind = kinds[a.outcome]
            settings = {**a.model_dump(mode="json"), "kind": kind}
            rows, notes = build_study_rows(analysis_inputs(con, review_id, a.outcome), kind=kind, arm=a.arm)
            h = input_hash(rows, settings)
            prev = last_reusable_run(con, review_id, a.id)
            common = dict(review_id=review_id, analysis_id=a.id, update_id=update_id, input_hash=h,
                          engine_version=ENGINE_VERSION, settings=settings, now=now)
            if not rows:
                # checked before reuse: an analysis without data stays `no_data` on every update (a reused
                # no_data run reported as `unchanged` would read as if numbers existed); no estimate, no version
                store_run(con, status="no_data", result=None, error="; ".join(notes) or None, **common)
                out["no_data"].append(a.id)
            elif prev is not None and prev["input_hash"] == h:
                store_run(con, status="unchanged", reused_run_id=prev["analysis_run_id"], **common)
                out["unchanged"].append(a.id)
            else:
                try:
                    result = run_analysis(rows, settings, kind)
                except StatsInputError as e:
                    store_run(con, status="failed", error=f"{a.id}: {e}", **common)
                    out["failed"].append({"analysis": a.id, "error": str(e)})
                else:
                    result["notes"] = notes + result.get("notes", [])
                    store_run(con, status="computed", result=result, **common)
                    out["computed"].append(a.id)
            runtime.kill_point("analysis-stored")  # crash tests: this analysis committed, the next not yet
            timings[a.id] = round(time.perf_counter() - t0, 4)
    out["seconds"] = timings
    return out


@task(name="analyze")
@redacts_exceptions  # Prefect makes the FAILED message from the exception text
def analyze(review_dir: str, review_id: str, warehouse: str, update_id: int) -> dict:
    """Re-run every configured analysis whose inputs changed."""
    out = analyze_review(review_dir, review_id, warehouse, update_id)
    names = lambda xs: ", ".join(x["analysis"] if isinstance(x, dict) else str(x) for x in xs) or "none"  # noqa: E731
    observe.log("analyses recomputed: %s; unchanged: %s; no data: %s", names(out["computed"]), names(out["unchanged"]),
                names(out["no_data"]))
    for f in out["failed"]:
        observe.log("analysis %s failed: %s", f["analysis"], f["error"], level=logging.ERROR)
    return out
