"""Review versions: the diff of estimates between versions (one function for the flow and `livingmeta diff`)
and recording version N+1 of an update cycle, with its frozen PRISMA counts and its alert, in one transaction.

The rules of what counts as a change are `livingmeta.diff.classify` (pure), with the review's thresholds
(`[alerts.rules]` relative_change / ci_width_change of the validated review.toml); nothing here hard-codes them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import duckdb

from livingmeta.alerting import channel_name, version_message
from livingmeta.config import ReviewConfig
from livingmeta.diff import classify, version_trigger
from warehouse.alerts import add_alert, queue_deliveries
from warehouse.analysis import (
    insert_version,
    latest_version,
    retracted_studies,
    run_summary,
    runs_for_update,
    runs_of_version,
    version_diffs,
    versions,
)
from warehouse.db import transaction
from warehouse.screening import freeze_prisma, review_config


def diff_runs(
    con: duckdb.DuckDBPyConnection,
    review_id: str,
    old_runs: dict[str, int | None],
    new_runs: dict[str, int | None],
    cfg: ReviewConfig,
    *,
    retracted: set[str] | None = None,
) -> dict[str, dict]:
    """analysis_id -> `livingmeta.diff.classify` of the estimates of two sets of runs (a run id per analysis; an
    analysis missing from a side, or whose run has no estimate, has none there), with the review's thresholds."""
    rules = cfg.alerts.rules
    retracted = retracted_studies(con, review_id) if retracted is None else retracted
    out = {}
    for aid in sorted(set(old_runs) | set(new_runs)):
        old = run_summary(con, old_runs.get(aid))
        new = run_summary(con, new_runs.get(aid)) if aid in new_runs else None
        out[aid] = classify(
            old, new, relative_change=rules.relative_change, ci_width_change=rules.ci_width_change, retracted=retracted
        )
    return out


def compare_versions(
    con: duckdb.DuckDBPyConnection, review_id: str, from_version: int | None = None, to_version: int | None = None
) -> dict[str, Any]:
    """What changed per analysis between two published versions (what `livingmeta diff` shows).

    Defaults: `to_version` the latest version, `from_version` the one before it. Between consecutive versions the
    diff stored with the newer version is returned (what its alert said); otherwise the runs of the two versions
    are compared with the review's stored (validated) thresholds.

    Returns:
        {"from_version", "to_version", "rows": [{"review_id", "from_version", "to_version", "analysis_id",
        "old", "new", "changes", "studies_added", ...}]} — one row per analysis whose estimate changed.
    Raises:
        ValueError: no version published yet, an unknown version, or --from not older than --to.
    """
    have = versions(con, review_id)
    if not have:
        raise ValueError(f"{review_id} has no published version yet; run `livingmeta update` first")
    to_v = to_version if to_version is not None else have[-1]
    from_v = from_version if from_version is not None else max((v for v in have if v < to_v), default=None)
    for v in (to_v, from_v):
        if v is not None and v not in have:
            raise ValueError(f"{review_id} has no version {v}; published versions: {', '.join(map(str, have))}")
    if from_v is not None and from_v >= to_v:
        raise ValueError(f"--from {from_v} must be older than --to {to_v}")
    if from_v == max((v for v in have if v < to_v), default=None):
        rows = version_diffs(con, review_id, to_v)  # the stored diff of that version
    else:
        cfg = review_config(con, review_id)
        if cfg is None:
            raise ValueError(f"review {review_id!r} is not registered in this warehouse")
        old_runs = runs_of_version(con, review_id, from_v) if from_v else {}
        diffs = diff_runs(con, review_id, old_runs, runs_of_version(con, review_id, to_v), cfg)
        rows = [
            {"review_id": review_id, "from_version": from_v, "to_version": to_v, "analysis_id": aid, **d}
            for aid, d in diffs.items()
            if d["changed"]
        ]
    return {"from_version": from_v, "to_version": to_v, "rows": rows}


@dataclass
class RecordedVersion:
    """What `record_version` did: `version` None when no estimate changed (then `latest_version` is the
    current one); `diffs` every analysis' diff against the previous version; `alert_id` the version's alert."""

    version: int | None
    from_version: int | None
    latest_version: int | None = None
    trigger: dict = field(default_factory=dict)
    diffs: dict[str, dict] = field(default_factory=dict)
    title: str = ""
    body: str = ""
    alert_id: int | None = None

    @property
    def changed(self) -> dict[str, dict]:
        return {aid: d for aid, d in self.diffs.items() if d["changed"]}

    def summary(self) -> dict:
        """The cycle summary's `version` entry (alerts and deliveries are added by the caller)."""
        if self.version is None:
            return {"version": None, "latest_version": self.latest_version}
        return {
            "version": self.version,
            "from_version": self.from_version,
            "trigger": self.trigger,
            "changes": {aid: d["changes"] for aid, d in self.changed.items()},
        }


def record_version(
    con: duckdb.DuckDBPyConnection, cfg: ReviewConfig, update_id: int, as_of: dt.datetime | None, now: dt.datetime
) -> RecordedVersion:
    """Compare this update's runs with the latest version; when any estimate changed, store version N+1 with
    its diffs, its frozen PRISMA counts, its alert and the alert's queued deliveries (one per configured
    channel) — one transaction, so a crash leaves either none of them (the rerun makes the version) or all
    (the rerun delivers). Only the analyses configured in `cfg` count."""
    review_id = cfg.id
    configured = {a.id for a in cfg.analyses}
    with transaction(con):
        current = {aid: r for aid, r in runs_for_update(con, review_id, update_id).items() if aid in configured}
        prev_version, prev_runs = latest_version(con, review_id)
        diffs = diff_runs(con, review_id, prev_runs, {aid: r["effective_run_id"] for aid, r in current.items()}, cfg)
        out = RecordedVersion(version=None, from_version=prev_version, latest_version=prev_version, diffs=diffs)
        changed = out.changed
        if not changed:
            return out
        version = (prev_version or 0) + 1
        trigger = version_trigger(changed)
        rules = cfg.alerts.rules.model_dump()
        severity, title, body = version_message(cfg.title, version, changed, trigger, rules)
        runs = {aid: r["effective_run_id"] for aid, r in current.items()}
        rows = [{"analysis_id": aid, "from_version": prev_version, **d} for aid, d in changed.items()]
        insert_version(
            con,
            review_id=review_id,
            version=version,
            now=now,
            as_of=as_of,
            update_id=update_id,
            trigger=trigger,
            summary=body,
            runs=runs,
            diffs=rows,
        )
        freeze_prisma(con, review_id, version, now)  # a later merge or split never rewrites these counts
        alert_id = add_alert(
            con,
            review_id=review_id,
            kind="estimate_change",
            severity=severity,
            title=title,
            body=body,
            now=now,
            version=version,
            dedupe_key=f"version:{version}",
        )
        if alert_id:
            queue_deliveries(con, alert_id, [channel_name(c.model_dump()) for c in cfg.alerts.channels])
    out.version, out.latest_version, out.trigger, out.title, out.body, out.alert_id = (
        version,
        version,
        trigger,
        title,
        body,
        alert_id,
    )
    return out
