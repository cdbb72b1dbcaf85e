"""Alerts: one table every part of the loop writes to (delivery is a separate step).

Every text written here passes `warehouse.db.safe_text` (the redaction point): alert titles and bodies quote
sources' errors and delivery errors quote webhook URLs.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from livingmeta.alerting import channel_name, registry_event_message, search_failed_message
from livingmeta.config import ReviewConfig
from warehouse.analysis import failed_searches, update_events
from warehouse.db import rows_as_dicts, safe_text, transaction


def add_alert(
    con: duckdb.DuckDBPyConnection,
    *,
    review_id: str,
    kind: str,
    severity: str,
    title: str,
    body: str,
    now: dt.datetime,
    version: int | None = None,
    dedupe_key: str | None = None,
    run_id: int | None = None,
) -> int | None:
    """Record an alert; returns its id, or None when an alert with the same dedupe_key exists (never twice).

    `run_id` names the search run that raised it (alerts about one run's records), so the update that ran the
    search delivers it (`undelivered_search_alerts`)."""
    if severity not in ("info", "warning", "critical"):
        raise ValueError(f"alert severity must be info, warning or critical, not {severity!r}")
    dedupe_key = safe_text(dedupe_key)
    if dedupe_key is not None:
        hit = con.execute(
            "SELECT alert_id FROM alerts WHERE review_id = ? AND dedupe_key = ?", [review_id, dedupe_key]
        ).fetchone()
        if hit:
            return None
    (aid,) = con.execute(
        "INSERT INTO alerts (review_id, created_at, kind, severity, version, title, body, dedupe_key, run_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING alert_id",
        [review_id, now, kind, severity, version, safe_text(title), safe_text(body), dedupe_key, run_id],
    ).fetchone()
    return int(aid)


def record_delivery(
    con: duckdb.DuckDBPyConnection,
    *,
    alert_id: int,
    channel: str,
    attempts: int,
    delivered: bool,
    error: str | None,
    now: dt.datetime,
) -> None:
    """Record the outcome of delivering one alert to one channel (the error redacted: it may quote the URL)."""
    con.execute(
        "INSERT OR REPLACE INTO alert_deliveries VALUES (?, ?, ?, ?, ?, ?)",
        [
            alert_id,
            safe_text(channel),
            attempts,
            "delivered" if delivered else "failed",
            safe_text(error),
            now if delivered else None,
        ],
    )


def undelivered_search_alerts(con: duckdb.DuckDBPyConnection, review_id: str, update_id: int) -> list[int]:
    """Alerts raised by the search runs of one update (skipped or unrequested records) not yet delivered, and by
    those of updates since the last succeeded one (killed after their search committed, before delivering)."""
    return [
        int(a)
        for (a,) in con.execute(
            "SELECT a.alert_id FROM alerts a JOIN search_runs r ON r.run_id = a.run_id WHERE a.review_id = ? "
            "AND (r.update_id = ? OR r.update_id > (SELECT coalesce(max(update_id), 0) FROM update_runs "
            "WHERE review_id = ? AND status = 'succeeded' AND update_id < ?) AND r.update_id < ?) "
            "AND NOT EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = a.alert_id) "
            "ORDER BY a.alert_id",
            [review_id, update_id, review_id, update_id, update_id],
        ).fetchall()
    ]


def cycle_start(con: duckdb.DuckDBPyConnection, review_id: str, update_id: int | None) -> dt.datetime | None:
    """When update cycle `update_id` of the review started (None when unknown)."""
    if update_id is None:
        return None
    row = con.execute(
        "SELECT started_at FROM update_runs WHERE review_id = ? AND update_id = ?", [review_id, update_id]
    ).fetchone()
    return row[0] if row else None


def previous_cycle_start(con: duckdb.DuckDBPyConnection, review_id: str, update_id: int | None) -> dt.datetime | None:
    """When the review's update cycle before `update_id` started (None for the first cycle or no cycle)."""
    if update_id is None:
        return None
    (started,) = con.execute(
        "SELECT max(started_at) FROM update_runs WHERE review_id = ? AND update_id < ?", [review_id, update_id]
    ).fetchone()
    return started


def alerts_since(con: duckdb.DuckDBPyConnection, review_id: str, since: dt.datetime | None) -> list[int]:
    """Ids of the review's alerts raised at or after `since` (all of them when None), oldest first."""
    return [
        int(a)
        for (a,) in con.execute(
            "SELECT alert_id FROM alerts WHERE review_id = ? AND (CAST(? AS TIMESTAMPTZ) IS NULL OR created_at >= ?) "
            "ORDER BY alert_id",
            [review_id, since, since],
        ).fetchall()
    ]


def delivered_pairs(con: duckdb.DuckDBPyConnection, alert_ids: list[int]) -> set[tuple[int, str]]:
    """(alert id, channel) pairs among `alert_ids` already delivered: never sent again."""
    if not alert_ids:
        return set()
    return {
        (int(a), c)
        for a, c in con.execute(
            "SELECT alert_id, channel FROM alert_deliveries WHERE status = 'delivered' AND alert_id IN (SELECT unnest(?))",
            [alert_ids],
        ).fetchall()
    }


def delivery_window_start(con: duckdb.DuckDBPyConnection, review_id: str, update_id: int | None) -> dt.datetime | None:
    """When the latest cycle before `update_id` that reached its delivery step started (None: all alerts).

    Normally the previous cycle (`previous_cycle_start`); a cycle killed part-way (`interrupted`, or still
    `running`) delivered nothing, so the window reaches back over it to the one before."""
    if update_id is None:
        return None
    (started,) = con.execute(
        "SELECT max(started_at) FROM update_runs WHERE review_id = ? AND update_id < ? "
        "AND status IN ('succeeded', 'failed')",
        [review_id, update_id],
    ).fetchone()
    return started


# --------------------------------------------------------------------------------- delivery (an outbox)
# An alert that goes to the review's channels gets one `pending` alert_deliveries row per channel IN THE SAME
# TRANSACTION that raises it, so a cycle killed after raising an alert still delivers it on the next run.
# Each delivery is marked `sending` (committed) before the channel is called and `delivered`/`failed` after:
# a row still `sending` means a process died between the two, and the channel may or may not have it.


def queue_deliveries(con: duckdb.DuckDBPyConnection, alert_id: int, channels: list[str]) -> None:
    """Queue one alert for each channel name (`pending`); call it inside the transaction that raised the alert."""
    for ch in channels:
        con.execute(
            "INSERT INTO alert_deliveries VALUES (?, ?, 0, 'pending', NULL, NULL) ON CONFLICT DO NOTHING",
            [alert_id, safe_text(ch)],
        )  # the name record_delivery stores


def raise_alert(con: duckdb.DuckDBPyConnection, *, channels: list[str], **alert) -> int | None:
    """`add_alert` and `queue_deliveries` in one transaction; None when the alert existed (nothing queued)."""
    with transaction(con):
        aid = add_alert(con, **alert)
        if aid is not None:
            queue_deliveries(con, aid, channels)
    return aid


def undelivered_alerts(con: duckdb.DuckDBPyConnection, review_id: str) -> list[int]:
    """Alerts of a review with a delivery still `pending` or `sending` (left by an interrupted cycle)."""
    return [
        int(a)
        for (a,) in con.execute(
            "SELECT DISTINCT d.alert_id FROM alert_deliveries d JOIN alerts a USING (alert_id) WHERE a.review_id = ? "
            "AND d.status IN ('pending', 'sending') ORDER BY 1",
            [review_id],
        ).fetchall()
    ]


def open_deliveries(con: duckdb.DuckDBPyConnection, alert_ids: list[int]) -> list[dict]:
    """The deliveries of these alerts not yet delivered (`pending`, `sending` or `failed`: tried again), with the
    alert's fields, in alert and channel order."""
    cur = con.execute(
        "SELECT a.alert_id, a.review_id, a.created_at, a.kind, a.severity, a.version, a.title, a.body, d.channel, "
        "d.status AS delivery_status, d.attempts AS delivery_attempts FROM alert_deliveries d JOIN alerts a "
        "USING (alert_id) WHERE d.alert_id IN (SELECT unnest(?)) AND d.status IN ('pending', 'sending', 'failed') "
        "ORDER BY a.alert_id, d.channel",
        [alert_ids],
    )
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def mark_sending(con: duckdb.DuckDBPyConnection, alert_id: int, channel: str) -> None:
    """Commit that a channel is about to be called for this alert (before the call, never after)."""
    # attempts restart: a retry after a failure replaces the row; tries of an interrupted send count from here
    con.execute(
        "UPDATE alert_deliveries SET status = 'sending', attempts = 0 WHERE alert_id = ? AND channel = ?",
        [alert_id, channel],
    )


def raise_cycle_alerts(
    con: duckdb.DuckDBPyConnection, cfg: ReviewConfig, update_id: int, now: dt.datetime
) -> list[int]:
    """Alert the events of this update worth telling people about (registry events when the review's rules
    ask for them, failed searches), each once (dedupe key), with their deliveries queued — one transaction.

    Returns:
        the ids of the alerts raised now plus the update's search alerts still undelivered (skipped or
        unrequested records, raised by the searches).
    """
    review_id = cfg.id
    channels = [channel_name(c.model_dump()) for c in cfg.alerts.channels]
    new_ids: list[int] = []
    with transaction(con):
        events = [
            ("search_failed", search_failed_message(run), f"search_failed:{run['run_id']}")
            for run in failed_searches(con, review_id, update_id)
        ]
        if cfg.alerts.rules.on_registry_events:
            events = [
                ("registry_event", registry_event_message(ev), f"registry_event:{ev['event_id']}")
                for ev in update_events(con, review_id, update_id)
            ] + events
        for kind, (sev, title, body), key in events:
            a = raise_alert(
                con,
                channels=channels,
                review_id=review_id,
                kind=kind,
                severity=sev,
                title=title,
                body=body,
                now=now,
                dedupe_key=key,
            )
            if a:
                new_ids.append(a)
        new_ids += undelivered_search_alerts(con, review_id, update_id)  # skipped / unrequested records
    return new_ids


def cycle_alert_rows(con: duckdb.DuckDBPyConnection, alert_ids: list[int]) -> list[dict]:
    """The alerts with these ids (id, created_at, kind, severity, version, title, body), oldest first."""
    return rows_as_dicts(
        con,
        "SELECT alert_id, created_at, kind, severity, version, title, body FROM alerts "
        "WHERE alert_id IN (SELECT unnest(?)) ORDER BY alert_id",
        [alert_ids],
    )
