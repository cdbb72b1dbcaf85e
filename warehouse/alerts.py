"""Alerts: one table every part of the loop writes to (delivery is a separate step)."""

from __future__ import annotations

import datetime as dt

import duckdb


def add_alert(con: duckdb.DuckDBPyConnection, *, review_id: str, kind: str, severity: str, title: str, body: str,
              now: dt.datetime, version: int | None = None, dedupe_key: str | None = None) -> int | None:
    """Record an alert; returns its id, or None when an alert with the same dedupe_key exists (never twice)."""
    if severity not in ("info", "warning", "critical"):
        raise ValueError(f"alert severity must be info, warning or critical, not {severity!r}")
    if dedupe_key is not None:
        hit = con.execute("SELECT alert_id FROM alerts WHERE review_id = ? AND dedupe_key = ?",
                          [review_id, dedupe_key]).fetchone()
        if hit:
            return None
    (aid,) = con.execute(
        "INSERT INTO alerts (review_id, created_at, kind, severity, version, title, body, dedupe_key) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING alert_id",
        [review_id, now, kind, severity, version, title, body, dedupe_key],
    ).fetchone()
    return int(aid)
