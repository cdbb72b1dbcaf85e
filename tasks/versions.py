"""Versioning task: a new review version when any estimate changed, with its diff and alerts."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from pathlib import Path

from prefect import task

from tasks.observe import redacts_exceptions

from livingmeta.alerting import registry_event_message, search_failed_message, version_message
from livingmeta.config import load_review
from livingmeta.diff import classify, version_trigger
from tasks import observe, runtime
from tasks.alerts import (announce_cycle_alerts, channel_name, deliver_cycle_alerts, delivery_counts,
                          write_changelog_artifact)
from warehouse import opened, transaction
from warehouse.alerts import add_alert, queue_deliveries, raise_alert, undelivered_search_alerts
from warehouse.screening import freeze_prisma
from warehouse.analysis import (failed_searches, latest_version, retracted_studies, run_summary, runs_for_update,
                                insert_version, update_events)


def record_review_version(review_dir: str, review_id: str, warehouse: str, update_id: int, as_of: dt.datetime | None,
                          *, now: dt.datetime | None = None, environ: Mapping[str, str] | None = None,
                          alerts_dir: str | None = None) -> dict:
    """Compare this update's runs with the latest version; publish version N+1 when any estimate changed;
    raise and deliver alerts (plain function; the task wraps it).

    A file channel's relative path is taken from `alerts_dir` (the review's output folder), else the review folder."""
    cfg = load_review(review_dir)
    now = now or dt.datetime.now(dt.timezone.utc)
    rules = cfg.alerts.rules.model_dump()
    configured = {a.id for a in cfg.analyses}
    new_ids: list[int] = []
    result: dict = {"version": None}
    channels = [c.model_dump() for c in cfg.alerts.channels]
    channel_names = [channel_name(c) for c in channels]
    with opened(warehouse) as con:
        current = {aid: r for aid, r in runs_for_update(con, review_id, update_id).items() if aid in configured}
        prev_version, prev_runs = latest_version(con, review_id)
        retracted = retracted_studies(con, review_id)
        diffs = {}
        for aid in sorted(set(prev_runs) | set(current)):
            new_run = current.get(aid, {}).get("effective_run_id")
            old_sum = run_summary(con, prev_runs.get(aid))
            new_sum = run_summary(con, new_run) if aid in current else None
            diffs[aid] = classify(old_sum, new_sum, relative_change=rules["relative_change"],
                                  ci_width_change=rules["ci_width_change"], retracted=retracted)
        changed = {aid: d for aid, d in diffs.items() if d["changed"]}
        if changed:
            version = (prev_version or 0) + 1
            trigger = version_trigger(changed)
            severity, title, body = version_message(cfg.title, version, changed, trigger, rules)
            runs = {aid: r["effective_run_id"] for aid, r in current.items()}
            rows = [{"analysis_id": aid, "from_version": prev_version, **d} for aid, d in changed.items()]
            # the version, its frozen PRISMA counts, its alert and the alert's queued deliveries: one transaction,
            # so a crash leaves either none of them (the rerun makes the version) or all (the rerun delivers)
            with transaction(con):
                insert_version(con, review_id=review_id, version=version, now=now, as_of=as_of, update_id=update_id,
                               trigger=trigger, summary=body, runs=runs, diffs=rows)
                freeze_prisma(con, review_id, version, now)  # a later merge or split never rewrites these counts
                aid_ = add_alert(con, review_id=review_id, kind="estimate_change", severity=severity, title=title,
                                 body=body, now=now, version=version, dedupe_key=f"version:{version}")
                if aid_:
                    queue_deliveries(con, aid_, channel_names)
                    new_ids.append(aid_)
            runtime.kill_point("version-stored")  # crash tests: version committed, not published yet
            write_changelog_artifact(review_id, body, f"{cfg.title}: what changed in version {version}")
            result = {"version": version, "from_version": prev_version, "trigger": trigger,
                      "changes": {aid: d["changes"] for aid, d in changed.items()}}
        else:
            result = {"version": None, "latest_version": prev_version}
        # events of this update worth telling people about, each alerted once (dedupe key)
        events = [("search_failed", search_failed_message(run), f"search_failed:{run['run_id']}")
                  for run in failed_searches(con, review_id, update_id)]
        if rules["on_registry_events"]:
            events = [("registry_event", registry_event_message(ev), f"registry_event:{ev['event_id']}")
                      for ev in update_events(con, review_id, update_id)] + events
        for kind, (sev, title, body), key in events:
            a = raise_alert(con, channels=channel_names, review_id=review_id, kind=kind, severity=sev, title=title,
                            body=body, now=now, dedupe_key=key)
            if a:
                new_ids.append(a)
        new_ids += undelivered_search_alerts(con, review_id, update_id)  # skipped / unrequested records
        runtime.kill_point("alerts-raised")  # crash tests: alerts and their deliveries queued, none sent
        # every alert not yet delivered, whichever step raised it (screening, linking, here, people's commands),
        # and whatever an interrupted cycle queued but did not deliver (or delivered without recording it)
        deliveries = deliver_cycle_alerts(con, review_id, update_id, channels, alerts_dir or review_dir, now=now,
                                          environ=environ)
        if changed:
            _announce_version(review_id, cfg.title, result, diffs)
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
                   out_dir: str | None = None) -> dict:
    """Create a new review version when any estimate changed, with its diff and alerts."""
    alerts_dir = str(Path(out_dir) / review_id) if out_dir else None
    return record_review_version(review_dir, review_id, warehouse, update_id, as_of, alerts_dir=alerts_dir)
