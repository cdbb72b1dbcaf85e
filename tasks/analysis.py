"""Analysis task: re-run the analyses whose inputs changed, record the others as unchanged."""

from __future__ import annotations

import datetime as dt
import logging

from prefect import task

from tasks.observe import redacts_exceptions

from livingmeta.config import ReviewConfig, load_review
from tasks import observe, runtime
from warehouse import opened
from warehouse.analysis import reanalyse


def analyze_review(review_dir: str, review_id: str, warehouse: str, update_id: int | None,
                   now: dt.datetime | None = None, *, cfg: ReviewConfig | None = None) -> dict:
    """Run every configured analysis whose input hash changed (plain function; the task wraps it).

    `cfg` is the cycle's validated review.toml (the flow passes it; loaded from `review_dir` when not given)."""
    cfg = cfg or load_review(review_dir)
    with opened(warehouse) as con:
        out = reanalyse(con, cfg, update_id, now or dt.datetime.now(dt.timezone.utc))
    runtime.kill_point("analysis-stored")  # crash tests: the analyses committed, no version recorded yet
    return out


@task(name="analyze")
@redacts_exceptions  # Prefect makes the FAILED message from the exception text
def analyze(review_dir: str, review_id: str, warehouse: str, update_id: int, cfg: ReviewConfig | None = None) -> dict:
    """Re-run every configured analysis whose inputs changed."""
    out = analyze_review(review_dir, review_id, warehouse, update_id, cfg=cfg)
    names = lambda xs: ", ".join(x["analysis"] if isinstance(x, dict) else str(x) for x in xs) or "none"  # noqa: E731
    observe.log("analyses recomputed: %s; unchanged: %s; no data: %s", names(out["computed"]), names(out["unchanged"]),
                names(out["no_data"]))
    for f in out["failed"]:
        observe.log("analysis %s failed: %s", f["analysis"], f["error"], level=logging.ERROR)
    return out
