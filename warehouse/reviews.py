"""Reviews and update runs in the warehouse."""

from __future__ import annotations

import datetime as dt
import json

import duckdb

from livingmeta.config import ReviewConfig
from livingmeta.records import canonical_json, hash_json
from warehouse.db import rows_as_dicts, safe_json, safe_text, transaction


def upsert_review(con: duckdb.DuckDBPyConnection, cfg: ReviewConfig, folder: str, now: dt.datetime) -> None:
    """Store (or refresh) a review's validated configuration."""
    data = cfg.model_dump(mode="json")
    con.execute(
        "INSERT INTO reviews VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (review_id) DO UPDATE SET "
        "title = excluded.title, folder = excluded.folder, config_json = excluded.config_json, "
        "config_hash = excluded.config_hash, updated_at = excluded.updated_at",
        [cfg.id, cfg.title, folder, canonical_json(data), hash_json(data), now, now],
    )


def known_review(con: duckdb.DuckDBPyConnection, review_id: str) -> bool:
    """True when the warehouse holds a review with this id."""
    return con.execute("SELECT 1 FROM reviews WHERE review_id = ?", [review_id]).fetchone() is not None


def stored_config(con: duckdb.DuckDBPyConnection, review_id: str) -> ReviewConfig | None:
    """The review's validated configuration as the last update stored it (None: the review was never stored).

    Commands that name a review by id use this instead of re-reading (and re-validating) review.toml.
    """
    row = con.execute("SELECT config_json FROM reviews WHERE review_id = ?", [review_id]).fetchone()
    if not row:
        return None
    data = row[0]
    return ReviewConfig.model_validate(json.loads(data) if isinstance(data, str) else data)


def start_update(
    con: duckdb.DuckDBPyConnection, review_id: str, now: dt.datetime, as_of: dt.datetime, flow_run_id: str | None
) -> int:
    """Record the start of one update cycle (committed at once) and return its id.

    An older cycle of the same review still `running` belongs to a process that died before finishing
    (one update per review runs at a time): it is marked `interrupted` in the same transaction.
    """
    with transaction(con):
        (uid,) = con.execute(
            "INSERT INTO update_runs (review_id, started_at, status, as_of, flow_run_id) VALUES (?, ?, 'running', ?, ?) "
            "RETURNING update_id",
            [review_id, now, as_of, flow_run_id],
        ).fetchone()
        con.execute(
            "UPDATE update_runs SET status = 'interrupted', finished_at = ?, error = ? "
            "WHERE review_id = ? AND status = 'running' AND update_id < ?",
            [
                now,
                f"interrupted: the process stopped before this update finished (killed, crashed or the machine "
                f"restarted); steps it had committed are kept, the step it was in stored nothing. Update {uid}, "
                f"started {now.isoformat()}, runs the cycle again.",
                review_id,
                uid,
            ],
        )
    return int(uid)


def finish_update(
    con: duckdb.DuckDBPyConnection,
    update_id: int,
    status: str,
    summary: dict,
    now: dt.datetime,
    error: str | None = None,
) -> None:
    """Close an update cycle with its summary (summary and error redacted: they quote sources' errors)."""
    con.execute(
        "UPDATE update_runs SET status = ?, finished_at = ?, summary = ?, error = ? WHERE update_id = ?",
        [status, now, safe_json(summary), safe_text(error), update_id],
    )


def review_status(con: duckdb.DuckDBPyConnection, review_id: str) -> dict:
    """Everything `livingmeta status` shows: last runs per source, counts, queue, latest version, and the
    screening progress and stopping guidance of `warehouse.screening.screening_status` (its keys added)."""
    from warehouse.screening import screening_status  # screening loads pandas and the ranking features

    last_runs = rows_as_dicts(
        con,
        "SELECT * EXCLUDE (rn) FROM (SELECT source, run_id, mode, status, started_at, finished_at, window_start, "
        "window_end, n_found, n_new, n_changed, n_unchanged, n_deleted, n_skipped, n_unrequested, error, "
        "row_number() OVER (PARTITION BY source ORDER BY run_id DESC) rn FROM search_runs WHERE review_id = ?) "
        "WHERE rn = 1 ORDER BY source",
        [review_id],
    )
    watermarks = {
        s: w
        for s, w in con.execute(
            "SELECT source, watermark FROM source_watermarks WHERE review_id = ?", [review_id]
        ).fetchall()
    }
    for r in last_runs:
        r["watermark"] = watermarks.get(r["source"])
    (n_records,) = con.execute("SELECT count(*) FROM review_records WHERE review_id = ?", [review_id]).fetchone()
    (n_studies,) = con.execute(
        "SELECT count(DISTINCT study_id) FROM study_links WHERE review_id = ?", [review_id]
    ).fetchone()
    (queue,) = con.execute("SELECT count(*) FROM v_screening_queue WHERE review_id = ?", [review_id]).fetchone()
    # current decisions only: an undone or superseded decision no longer counts (matches the screened counts)
    (n_decisions,) = con.execute("SELECT count(*) FROM v_current_decisions WHERE review_id = ?", [review_id]).fetchone()
    latest = rows_as_dicts(
        con,
        "SELECT version, created_at, as_of, summary FROM review_versions WHERE review_id = ? ORDER BY version DESC LIMIT 1",
        [review_id],
    )
    last_update = rows_as_dicts(
        con,
        "SELECT update_id, status, started_at, finished_at, as_of, error FROM update_runs WHERE review_id = ? "
        "ORDER BY update_id DESC LIMIT 1",
        [review_id],
    )
    return {
        "review_id": review_id,
        "last_update": last_update[0] if last_update else None,
        "sources": last_runs,
        "records": n_records,
        "studies": n_studies,
        "queue_pending": queue,
        "decisions": n_decisions,
        "latest_version": latest[0] if latest else None,
        **screening_status(con, review_id),
    }
