"""What the web app's dashboard shows, read from the published snapshot (never the live warehouse).

`dashboard(con, review_id)` takes a read-only connection to `<out>/snapshot/warehouse.duckdb`; each part is a
dashboard view or table documented in warehouse/README.md. A snapshot published by an older livingmeta may
lack a view: that part comes back empty and the others still show.
"""

from __future__ import annotations

import json

import duckdb

from warehouse.db import query, rows_as_dicts


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> list[dict]:
    try:
        return rows_as_dicts(con, sql, params)
    except duckdb.CatalogException:
        return []


def dashboard(con: duckdb.DuckDBPyConnection, review_id: str) -> dict:
    """{"estimates", "history", "diffs" (of the latest version), "runs" (last 30, with per-source counts),
    "alerts" (last 30), "progress" (decisions per day, last 60 days)}."""
    p = [review_id]
    history = _rows(con, "SELECT * FROM v_estimate_history WHERE review_id = ? ORDER BY analysis_id, version", p)
    last = max((h["version"] for h in history), default=None)
    diffs = (
        _rows(
            con,
            "SELECT * FROM v_estimate_diffs WHERE review_id = ? AND to_version = ? ORDER BY analysis_id",
            [review_id, last],
        )
        if last is not None
        else []
    )
    runs = _rows(con, query("dashboard_runs"), p)
    for r in runs:
        if isinstance(r.get("sources"), str):
            r["sources"] = json.loads(r["sources"])
    return {
        "estimates": _rows(con, "SELECT * FROM v_current_estimates WHERE review_id = ? ORDER BY analysis_id", p),
        "history": history,
        "diffs": diffs,
        "runs": runs,
        "alerts": _rows(
            con,
            "SELECT created_at, kind, severity, version, title, body FROM v_alerts "
            "WHERE review_id = ? ORDER BY created_at DESC LIMIT 30",
            p,
        ),
        "progress": _rows(con, query("dashboard_progress"), p),
    }


def review_titles(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Every registered review's title by id."""
    return dict(con.execute("SELECT review_id, title FROM reviews").fetchall())
