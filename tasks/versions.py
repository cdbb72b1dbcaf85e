"""Versioning task: a new review version when any estimate changed, with its diff and alerts."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from pathlib import Path

from prefect import task

from tasks.observe import redacts_exceptions

from livingmeta.config import ReviewConfig, load_review
from tasks import observe, runtime
from tasks.alerts import announce_cycle_alerts, deliver_cycle_alerts, delivery_counts, write_changelog_artifact
from warehouse import opened, versions
from warehouse.alerts import raise_cycle_alerts


def record_review_version(review_dir: str, review_id: str, warehouse: str, update_id: int, as_of: dt.datetime | None,
                          *, now: dt.datetime | None = None, environ: Mapping[str, str] | None = None,
                          alerts_dir: str | None = None, cfg: ReviewConfig | None = None) -> dict:
    """Compare this update's runs with the latest version; publish version N+1 when any estimate changed;
    raise and deliver alerts (plain function; the task wraps it).

    `cfg` is the cycle's validated review.toml (the flow passes it; loaded from `review_dir` when not given).
    A file channel's relative path is taken from `alerts_dir` (the review's output folder), else the review folder."""
    cfg = cfg or load_review(review_dir)
    now = now or dt.datetime.now(dt.timezone.utc)
    channels = [c.model_dump() for c in cfg.alerts.channels]
    with opened(warehouse) as con:
        recorded = versions.record_version(con, cfg, update_id, as_of, now)
        new_ids = [recorded.alert_id] if recorded.alert_id else []
        result = recorded.summary()
        if recorded.version:
            runtime.kill_point("version-stored")  # crash tests: version committed, not published yet
            write_changelog_artifact(review_id, recorded.body,
                                     f"{cfg.title}: what changed in version {recorded.version}")
        new_ids += raise_cycle_alerts(con, cfg, update_id, now)
        runtime.kill_point("alerts-raised")  # crash tests: alerts and their deliveries queued, none sent
        # every alert not yet delivered, whichever step raised it (screening, linking, here, people's commands),
        # and whatever an interrupted cycle queued but did not deliver (or delivered without recording it)
        deliveries = deliver_cycle_alerts(con, review_id, update_id, channels, alerts_dir or review_dir, now=now,
                                          environ=environ)
        if recorded.version:
            _announce_version(review_id, cfg.title, result, recorded.diffs)
        announce_cycle_alerts(con, review_id, update_id, cfg.title)
    result["alerts"] = new_ids
    result["deliveries"] = delivery_counts(deliveries)
    result["delivery_failures"] = [{k: d[k] for k in ("alert_id", "kind", "channel", "error")}
                                   for d in deliveries if d["status"] == "failed"]
    if result["version"]:
        observe.log("published version %s of %s (from version %s): %s", result["version"], review_id,
                    result["from_version"] or "none",
                    "; ".join(f"{aid}: {', '.join(ch) or 'numbers changed'}" for aid, ch in result["changes"].items()))
    else:
        observe.log("no new version of %s: estimates unchanged (%s)", review_id,
                    f"latest is version {result['latest_version']}" if result.get("latest_version")
                    else "none published yet")
    for d in deliveries:
        observe.log("alert %s (%s) to %s: %s%s", d["alert_id"], d["kind"], d["channel"], d["status"],
                    f" after {d['attempts']} attempt(s): {d['error']}" if d["error"] else "",
                    level=logging.WARNING if d["status"] == "failed" else logging.INFO)
    return json.loads(json.dumps(result, default=str))


def _announce_version(review_id: str, title: str, result: dict, diffs: dict) -> None:
    """One `livingmeta.estimate.shifted` event per analysis whose numbers changed in the new version."""
    for aid, ch in result["changes"].items():
        d = diffs[aid]
        observe.emit(observe.ESTIMATE_SHIFTED, review_id,
                     {"review_id": review_id, "analysis_id": aid, "version": result["version"],
                      "from_version": result["from_version"], "changes": ch, "old": d.get("old"), "new": d.get("new"),
                      "studies_added": d.get("studies_added"), "studies_removed": d.get("studies_removed"),
                      "studies_retracted": d.get("studies_retracted")}, title=title)
        observe.log("estimate shifted: %s (%s)", aid, ", ".join(ch) or "numbers changed")


@task(name="record-version")
@redacts_exceptions  # Prefect makes the FAILED message from the exception text
def record_version(review_dir: str, review_id: str, warehouse: str, update_id: int, as_of: dt.datetime,
                   out_dir: str | None = None, cfg: ReviewConfig | None = None) -> dict:
    """Create a new review version when any estimate changed, with its diff and alerts."""
    alerts_dir = str(Path(out_dir) / review_id) if out_dir else None
    return record_review_version(review_dir, review_id, warehouse, update_id, as_of, alerts_dir=alerts_dir, cfg=cfg)
