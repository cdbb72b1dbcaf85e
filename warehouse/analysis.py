"""Analysis runs, estimates, review versions and diffs in the warehouse.

A run is stored with its estimates and per-study weights in one transaction. A review version links one run
per analysis (`review_version_runs`); `unchanged` runs point to the run whose results still hold
(`reused_run_id`), so a version always links the run that computed its numbers.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import duckdb

from livingmeta.analysis import build_study_rows, input_hash, run_analysis
from livingmeta.config import ReviewConfig
from livingmeta.stats import ENGINE_VERSION, StatsInputError
from warehouse.db import query, rows_as_dicts, safe_text, transaction

_EST_COLS = (
    "measure",
    "method",
    "test",
    "k",
    "participants",
    "estimate",
    "se",
    "ci_lower",
    "ci_upper",
    "pi_lower",
    "pi_upper",
    "estimate_bt",
    "ci_lower_bt",
    "ci_upper_bt",
    "pi_lower_bt",
    "pi_upper_bt",
    "statistic",
    "p_value",
    "tau2",
    "i2",
    "h2",
    "q",
    "q_df",
    "q_p",
)


def analysis_inputs(con: duckdb.DuckDBPyConnection, review_id: str, outcome_id: str) -> list[dict]:
    """Current extraction rows of an outcome for included, non-retracted studies (with the study's year)."""
    cur = con.execute(query("analysis_rows"), {"review_id": review_id, "outcome_id": outcome_id})
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def last_reusable_run(con: duckdb.DuckDBPyConnection, review_id: str, analysis_id: str) -> dict | None:
    """The latest run that computed something (computed or no_data) for an analysis, or None."""
    rows = rows_as_dicts(
        con,
        "SELECT analysis_run_id, input_hash, status FROM analysis_runs WHERE review_id = ? AND analysis_id = ? "
        "AND status IN ('computed', 'no_data') ORDER BY analysis_run_id DESC LIMIT 1",
        [review_id, analysis_id],
    )
    return rows[0] if rows else None


def store_run(
    con: duckdb.DuckDBPyConnection,
    *,
    review_id: str,
    analysis_id: str,
    update_id: int | None,
    input_hash: str,
    engine_version: str,
    settings: dict,
    now: dt.datetime,
    status: str,
    result: dict | None = None,
    reused_run_id: int | None = None,
    error: str | None = None,
) -> int:
    """Store one analysis run (+ estimates and estimate_studies for a computed run) atomically; returns its id."""
    with transaction(con):
        (run_id,) = con.execute(
            "INSERT INTO analysis_runs (review_id, analysis_id, update_id, input_hash, engine_version, settings, "
            "started_at, status, reused_run_id, result, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "RETURNING analysis_run_id",
            [
                review_id,
                analysis_id,
                update_id,
                input_hash,
                engine_version,
                json.dumps(settings),
                now,
                status,
                reused_run_id,
                None if result is None else json.dumps(result),
                safe_text(error),
            ],
        ).fetchone()
        if status == "computed" and result is not None:
            meta = result["meta"]
            tsa = result.get("tsa") or {}
            con.execute(
                "INSERT INTO estimates (analysis_run_id, review_id, analysis_id, "
                + ", ".join(_EST_COLS)
                + ", tsa_status, warnings) VALUES ("
                + ", ".join(["?"] * (3 + len(_EST_COLS) + 2))
                + ")",
                [
                    run_id,
                    review_id,
                    analysis_id,
                    *(meta.get(c) for c in _EST_COLS),
                    tsa.get("status"),
                    json.dumps(meta.get("warnings") or []),
                ],
            )
            studies = [
                (run_id, s["study"], s["yi"], s["vi"], s["weight"], s["ci_lower"], s["ci_upper"])
                for s in meta.get("studies", [])
            ]
            if studies:
                con.executemany("INSERT INTO estimate_studies VALUES (?, ?, ?, ?, ?, ?, ?)", studies)
    return int(run_id)


def runs_for_update(con: duckdb.DuckDBPyConnection, review_id: str, update_id: int) -> dict[str, dict]:
    """analysis_id -> {run_id, status, effective_run_id} of the latest run of each analysis in this update
    (falling back to each analysis' latest run overall when the update did not run it)."""
    rows = rows_as_dicts(
        con,
        """
        SELECT analysis_id, analysis_run_id, status, reused_run_id, update_id FROM (
            SELECT *, row_number() OVER (PARTITION BY analysis_id
                ORDER BY (update_id = ?) DESC NULLS LAST, analysis_run_id DESC) AS rn
            FROM analysis_runs WHERE review_id = ?) WHERE rn = 1""",
        [update_id, review_id],
    )
    out = {}
    for r in rows:
        eff = r["reused_run_id"] if r["status"] == "unchanged" and r["reused_run_id"] else r["analysis_run_id"]
        eff_status = con.execute("SELECT status FROM analysis_runs WHERE analysis_run_id = ?", [eff]).fetchone()[0]
        out[r["analysis_id"]] = {
            "run_id": r["analysis_run_id"],
            "status": r["status"],
            "effective_run_id": eff,
            "effective_status": eff_status,
        }
    return out


def latest_version(con: duckdb.DuckDBPyConnection, review_id: str) -> tuple[int | None, dict[str, int]]:
    """(latest version number or None, analysis_id -> run id it publishes)."""
    row = con.execute("SELECT max(version) FROM review_versions WHERE review_id = ?", [review_id]).fetchone()
    if row[0] is None:
        return None, {}
    v = int(row[0])
    runs = dict(
        con.execute(
            "SELECT analysis_id, analysis_run_id FROM review_version_runs WHERE review_id = ? AND version = ?",
            [review_id, v],
        ).fetchall()
    )
    return v, runs


def run_summary(con: duckdb.DuckDBPyConnection, run_id: int | None) -> dict | None:
    """What a diff compares for one run: its estimate numbers, studies and TSA status (None: no estimate)."""
    if run_id is None:
        return None
    est = rows_as_dicts(con, "SELECT * FROM estimates WHERE analysis_run_id = ?", [run_id])
    if not est:
        return None
    e = est[0]
    studies = rows_as_dicts(
        con, "SELECT study_id, yi, vi FROM estimate_studies WHERE analysis_run_id = ? ORDER BY study_id", [run_id]
    )
    e["studies"] = {s["study_id"]: [s["yi"], s["vi"]] for s in studies}
    e["run_id"] = run_id
    e.pop("warnings", None)
    return e


def retracted_studies(con: duckdb.DuckDBPyConnection, review_id: str) -> set[str]:
    """Included studies with a retracted (or deleted) record: they have left the analyses."""
    return {
        r[0]
        for r in con.execute(
            "SELECT study_id FROM v_included_studies WHERE review_id = ? AND (coalesce(retracted, false) "
            "OR coalesce(deleted, false))",
            [review_id],
        ).fetchall()
    }


def insert_version(
    con: duckdb.DuckDBPyConnection,
    *,
    review_id: str,
    version: int,
    now: dt.datetime,
    as_of: dt.datetime | None,
    update_id: int | None,
    trigger: dict,
    summary: str,
    runs: dict[str, int],
    diffs: list[dict],
) -> None:
    """Write a review version, the runs it publishes and its diffs, inside the caller's transaction
    (`warehouse.versions.record_version` writes the version's alert in the same one)."""
    con.execute(
        "INSERT INTO review_versions VALUES (?, ?, ?, ?, ?, ?, ?)",
        [review_id, version, now, as_of, update_id, json.dumps(trigger), summary],
    )
    for aid, rid in sorted(runs.items()):
        con.execute("INSERT INTO review_version_runs VALUES (?, ?, ?, ?)", [review_id, version, aid, rid])
    for d in diffs:
        con.execute(
            "INSERT INTO estimate_diffs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                review_id,
                d["from_version"],
                version,
                d["analysis_id"],
                json.dumps(d["old"]),
                json.dumps(d["new"]),
                json.dumps(d["changes"]),
                json.dumps(d["studies_added"]),
                json.dumps(d["studies_removed"]),
            ],
        )


def version_estimates(con: duckdb.DuckDBPyConnection, review_id: str, version: int | None = None) -> list[dict]:
    """Published estimates of a version (default: the latest), one row per analysis."""
    if version is None:
        version = latest_version(con, review_id)[0]
        if version is None:
            return []
    return rows_as_dicts(
        con,
        "SELECT * FROM v_estimate_history WHERE review_id = ? AND version = ? ORDER BY analysis_id",
        [review_id, version],
    )


def published_estimates(con: duckdb.DuckDBPyConnection, review_id: str, version: int | None = None) -> list[dict]:
    """`livingmeta estimates`: the estimates a version published (default: the latest; [] before the first).

    Raises:
        ValueError: the review has no such version (the message lists the published ones).
    """
    if version is not None:
        have = versions(con, review_id)
        if version not in have:
            raise ValueError(
                f"{review_id} has no version {version}; published versions: {', '.join(map(str, have)) or 'none yet'}"
            )
    return version_estimates(con, review_id, version)


def version_diffs(con: duckdb.DuckDBPyConnection, review_id: str, to_version: int) -> list[dict]:
    """Stored diffs of one version against its predecessor."""
    rows = rows_as_dicts(
        con,
        "SELECT * FROM estimate_diffs WHERE review_id = ? AND to_version = ? ORDER BY analysis_id",
        [review_id, to_version],
    )
    for r in rows:
        for k in ("old", "new", "changes", "studies_added", "studies_removed"):
            if isinstance(r[k], str):
                r[k] = json.loads(r[k])
    return rows


def versions(con: duckdb.DuckDBPyConnection, review_id: str) -> list[int]:
    """All version numbers of a review, ascending."""
    return [
        r[0]
        for r in con.execute(
            "SELECT version FROM review_versions WHERE review_id = ? ORDER BY version", [review_id]
        ).fetchall()
    ]


def runs_of_version(con: duckdb.DuckDBPyConnection, review_id: str, version: int) -> dict[str, int]:
    """analysis_id -> run id that a version publishes."""
    return dict(
        con.execute(
            "SELECT analysis_id, analysis_run_id FROM review_version_runs WHERE review_id = ? AND version = ?",
            [review_id, version],
        ).fetchall()
    )


def update_events(con: duckdb.DuckDBPyConnection, review_id: str, update_id: int) -> list[dict[str, Any]]:
    """Registry events recorded for records of this review by this update's search runs, and by those of any
    update since the last succeeded one (an update killed after its search committed: its events were stored but
    never alerted, and this update finds those records unchanged). Alerts dedupe on the event id."""
    return rows_as_dicts(
        con,
        """
        SELECT e.event_id, e.record_id, e.kind, e.old_value, e.new_value, e.occurred_at, r.title
        FROM registry_events e JOIN search_runs s ON s.run_id = e.run_id
        JOIN review_records rr ON rr.review_id = s.review_id AND rr.record_id = e.record_id
        LEFT JOIN records r ON r.record_id = e.record_id
        WHERE s.review_id = ? AND (s.update_id = ? OR s.update_id > (
            SELECT coalesce(max(update_id), 0) FROM update_runs WHERE review_id = ? AND status = 'succeeded'
            AND update_id < ?) AND s.update_id < ?)
        ORDER BY e.event_id""",
        [review_id, update_id, review_id, update_id, update_id],
    )


def failed_searches(con: duckdb.DuckDBPyConnection, review_id: str, update_id: int) -> list[dict]:
    """Search runs of this update that failed."""
    return rows_as_dicts(
        con,
        "SELECT run_id, source, error FROM search_runs WHERE review_id = ? AND update_id = ? "
        "AND status = 'failed' ORDER BY run_id",
        [review_id, update_id],
    )


def reanalyse(con: duckdb.DuckDBPyConnection, cfg: ReviewConfig, update_id: int | None, now: dt.datetime) -> dict:
    """Run every analysis of `cfg` whose input hash changed and record the others (one transaction).

    Per analysis: no included study with data -> a `no_data` run (checked before reuse: an analysis without data
    stays `no_data` on every update; a reused no_data run reported as `unchanged` would read as if numbers existed);
    same input hash as its last computed run -> an `unchanged` run pointing at it; else computed (or `failed`
    with the statistics' message when the data cannot be pooled).

    Returns:
        {"computed": [ids], "unchanged": [ids], "no_data": [ids], "failed": [{"analysis", "error"}],
         "seconds": {id: seconds}}.
    """
    review_id = cfg.id
    kinds = {o.id: o.kind for o in cfg.outcomes}
    out: dict[str, Any] = {"computed": [], "unchanged": [], "no_data": [], "failed": []}
    timings: dict[str, float] = {}
    with transaction(con):
        for a in cfg.analyses:
            t0 = time.perf_counter()
            kind = kinds[a.outcome]
            settings = {**a.model_dump(mode="json"), "kind": kind}
            rows, notes = build_study_rows(analysis_inputs(con, review_id, a.outcome), kind=kind, arm=a.arm)
            h = input_hash(rows, settings)
            prev = last_reusable_run(con, review_id, a.id)
            common = dict(
                review_id=review_id,
                analysis_id=a.id,
                update_id=update_id,
                input_hash=h,
                engine_version=ENGINE_VERSION,
                settings=settings,
                now=now,
            )
            if not rows:
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
            timings[a.id] = round(time.perf_counter() - t0, 4)
    out["seconds"] = timings
    return out
