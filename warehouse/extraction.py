"""Storing extraction data: append-only rows, corrections that supersede, registry suggestions accepted.

`extraction_rows` is never updated: re-importing an identical row adds nothing (its content key equals the
current row's `import_key`), a changed row for the same (study, outcome, arm, group_label, subgroup) is a
new row whose `supersedes` names the row it corrects. The rows that count are `v_current_extraction`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from collections.abc import Mapping

import duckdb

from livingmeta.config import ReviewConfig
from livingmeta.extraction import (
    COLUMNS,
    ExtractionError,
    ExtractionRow,
    content_key,
    read_extraction,
    validate_row,
)
from warehouse.db import rows_as_dicts, transaction

_STORED = tuple(c for c in COLUMNS if c not in ("study", "outcome", "arm"))  # stored as given, beside the ids


def _fallback_resolve(con: duckdb.DuckDBPyConnection, review_id: str, identifier: str) -> str | None:
    # used only while warehouse.linking.resolve_study is not available
    ident = identifier.strip()
    hit = con.execute(
        "SELECT study_id FROM studies WHERE review_id = ? AND study_id = ?", [review_id, ident]
    ).fetchone()
    if hit:
        return hit[0]
    low = ident.lower()
    candidates = [ident]
    if low.isdigit():
        candidates.append(f"pubmed:{ident}")
    if low.startswith("pmid:"):
        candidates.append(f"pubmed:{ident[5:].strip()}")
    if low.startswith("nct"):
        candidates.append(f"ctgov:{ident.upper()}")
    for rid in candidates:
        hit = con.execute(
            "SELECT study_id FROM study_links WHERE review_id = ? AND record_id = ?", [review_id, rid]
        ).fetchone()
        if hit:
            return hit[0]
    doi = low.removeprefix("https://doi.org/").removeprefix("doi:")
    if doi.startswith("10."):
        hit = con.execute(
            "SELECT DISTINCT l.study_id FROM study_links l JOIN records r USING (record_id) "
            "WHERE l.review_id = ? AND lower(r.doi) = ?",
            [review_id, doi],
        ).fetchall()
        if len(hit) == 1:
            return hit[0][0]
    return None


def resolve_study_id(con: duckdb.DuckDBPyConnection, review_id: str, identifier: str) -> str | None:
    """The study an identifier (study id, record id, PMID, NCT id, DOI) names in a review, or None."""
    try:
        from warehouse.linking import resolve_study  # the linking area's resolver, when it has landed
    except ImportError:
        return _fallback_resolve(con, review_id, identifier)
    found = resolve_study(con, review_id, identifier)
    if found is None:
        return None
    return found if isinstance(found, str) else getattr(found, "study_id", None) or str(found)


def _current_by_slot(con, review_id: str) -> dict[tuple, dict]:
    rows = rows_as_dicts(con, "SELECT * FROM v_current_extraction WHERE review_id = ?", [review_id])
    return {(r["study_id"], r["outcome_id"], r["arm"], r["group_label"] or "", r["subgroup"] or ""): r for r in rows}


def _insert(
    con,
    review_id: str,
    study_id: str,
    row: ExtractionRow,
    *,
    origin: str,
    key: str,
    supersedes: int | None,
    now: dt.datetime,
    derived_from: int | None = None,
) -> int:
    values = row.values()
    (rid,) = con.execute(
        "INSERT INTO extraction_rows (review_id, study_id, outcome_id, arm, "
        + ", ".join(_STORED)
        + ", origin, status, supersedes, import_key, created_at, derived_from) VALUES ("
        + ", ".join(["?"] * (4 + len(_STORED) + 6))
        + ") RETURNING row_id",
        [
            review_id,
            study_id,
            row.outcome,
            row.arm,
            *(values[c] for c in _STORED),
            origin,
            "active",
            supersedes,
            key,
            now,
            derived_from,
        ],
    ).fetchone()
    return int(rid)


def store_rows(
    con: duckdb.DuckDBPyConnection,
    review_id: str,
    rows: list[tuple[str, ExtractionRow]],
    *,
    origin: str,
    now: dt.datetime,
    derived_from: Mapping[int, int] | None = None,
) -> dict:
    """Store resolved rows in one transaction (identical rows skipped, changed rows supersede).

    Args:
        rows: (study_id, row) pairs, already validated and resolved.
        origin: manual | registry.
        derived_from: row index -> suggestion row id that the row was accepted from.
    Returns:
        {"added": n, "corrected": n, "unchanged": n, "row_ids": [...]}.
    """
    counts = {"added": 0, "corrected": 0, "unchanged": 0, "row_ids": []}
    with transaction(con):
        current = _current_by_slot(con, review_id)
        for i, (study_id, row) in enumerate(rows):
            key = content_key(study_id, row)
            old = current.get(row.slot(study_id))
            if old is not None and old["import_key"] == key:
                counts["unchanged"] += 1
                continue
            rid = _insert(
                con,
                review_id,
                study_id,
                row,
                origin=origin,
                key=key,
                supersedes=old["row_id"] if old else None,
                now=now,
                derived_from=(derived_from or {}).get(i),
            )
            counts["corrected" if old else "added"] += 1
            counts["row_ids"].append(rid)
    return counts


def import_extraction(
    con: duckdb.DuckDBPyConnection,
    review_id: str,
    path: str | Path,
    outcomes: Mapping[str, str],
    *,
    origin: str = "manual",
    now: dt.datetime | None = None,
) -> dict:
    """Validate an extraction CSV, resolve its studies and store it (all or nothing).

    Args:
        con: a writable warehouse connection.
        review_id: the review.
        path: the CSV (columns of livingmeta.extraction.COLUMNS).
        outcomes: outcome id -> kind from review.toml.
        origin: manual | demo | registry (stored on each row).
        now: the import time (default: the current UTC time).
    Returns:
        {"file", "rows", "added", "corrected", "unchanged", "row_ids", "study_ids" (the studies the file names)}.
    Raises:
        ExtractionError: a bad cell or an unknown study, naming file, line and column; nothing is stored.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    rows = read_extraction(path, outcomes)
    resolved: list[tuple[str, ExtractionRow]] = []
    unknown: list[str] = []
    slots: dict[tuple, int] = {}
    for row in rows:
        try:
            sid = resolve_study_id(con, review_id, row.study)
        except ValueError as e:  # StudyLookupError: an identifier naming records of two studies
            unknown.append(f"{path}, line {row.line}, column 'study': {e}")
            continue
        if sid is None:
            unknown.append(
                f"{path}, line {row.line}, column 'study': {row.study!r} is not a study of review "
                f"{review_id} (no study id, record id, PMID, NCT id or DOI matches); check "
                f"`livingmeta studies list {review_id}`"
            )
            continue
        slot = row.slot(sid)
        if slot in slots:
            unknown.append(
                f"{path}, line {row.line}: names study {sid} like line {slots[slot]} (same outcome, arm, "
                f"group_label and subgroup); keep one row"
            )
            continue
        slots[slot] = row.line
        resolved.append((sid, row))
    if unknown:
        raise ExtractionError(f"{path}: nothing was imported; fix these and import again: " + " | ".join(unknown[:25]))
    counts = store_rows(con, review_id, resolved, origin=origin, now=now)
    return {"file": str(path), "rows": len(rows), **counts, "study_ids": sorted({sid for sid, _ in resolved})}


def import_extraction_file(
    con: duckdb.DuckDBPyConnection,
    cfg: ReviewConfig,
    path: str | Path,
    *,
    origin: str = "manual",
    now: dt.datetime | None = None,
) -> dict:
    """`livingmeta extract import`: an extraction CSV validated against the review's outcomes and stored all or
    nothing (`import_extraction`), and the studies it names that no analysis uses yet — not included at full
    text, or retracted — so that is said, never silent (their rows are stored and count once included).

    Returns:
        `import_extraction`'s counts plus "not_included" (study ids, sorted).
    """
    res = import_extraction(con, cfg.id, path, cfg.outcome_kinds(), origin=origin, now=now)
    res["not_included"] = studies_not_included(con, cfg.id, res["study_ids"])
    return res


def list_suggestions(con: duckdb.DuckDBPyConnection, review_id: str) -> list[dict]:
    """Registry-derived rows waiting for a person (status 'suggested'), not yet accepted."""
    return rows_as_dicts(
        con,
        "SELECT s.* FROM extraction_rows s WHERE s.review_id = ? AND s.status = 'suggested' "
        "AND NOT EXISTS (SELECT 1 FROM extraction_rows a WHERE a.derived_from = s.row_id) "
        "ORDER BY s.study_id, s.outcome_id, s.row_id",
        [review_id],
    )


def accept_suggestions(
    con: duckdb.DuckDBPyConnection,
    review_id: str,
    row_ids: list[int],
    *,
    outcome: str,
    outcomes: Mapping[str, str],
    extractor: str,
    arm: str | None = None,
    now: dt.datetime | None = None,
) -> dict:
    """Turn suggested registry rows into active rows that cite them (`derived_from`), all or nothing.

    Args:
        row_ids: suggestion row ids (from `extract suggestions`).
        outcome: the review outcome the rows belong to.
        outcomes: outcome id -> kind from review.toml.
        extractor: the person accepting them.
        arm: overrides the suggested arm (e.g. `single` for a proportion outcome).
    Returns:
        {"accepted": n, "unchanged": n, "row_ids": [...]}.
    Raises:
        ExtractionError: an unknown or non-suggested row id, or a row that fails validation.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    problems: list[str] = []
    rows: list[tuple[str, ExtractionRow]] = []
    derived: dict[int, int] = {}
    for rid in row_ids:
        found = rows_as_dicts(con, "SELECT * FROM extraction_rows WHERE review_id = ? AND row_id = ?", [review_id, rid])
        if not found:
            problems.append(f"row {rid}: no extraction row with this id in review {review_id}")
            continue
        s = found[0]
        if s["status"] != "suggested":
            problems.append(
                f"row {rid}: status is {s['status']!r}, not 'suggested'; only registry suggestions can be accepted"
            )
            continue
        raw = {c: s.get(c) for c in _STORED}
        raw.update(
            study=s["study_id"],
            outcome=outcome,
            arm=arm or s["arm"],
            extractor=extractor,
            extracted_on=now.date().isoformat(),
            source_ref=f"registry suggestion row {rid}" + (f": {s['source_ref']}" if s.get("source_ref") else ""),
        )
        try:
            row = validate_row(
                {k: ("" if v is None else v) for k, v in raw.items()}, outcomes, where=f"suggestion row {rid}"
            )
        except ExtractionError as e:
            problems.append(str(e))
            continue
        derived[len(rows)] = int(rid)
        rows.append((s["study_id"], row))
    if problems:
        raise ExtractionError("nothing was accepted: " + " | ".join(problems))
    counts = store_rows(con, review_id, rows, origin="registry", now=now, derived_from=derived)
    return {
        "accepted": counts["added"] + counts["corrected"],
        "unchanged": counts["unchanged"],
        "row_ids": counts["row_ids"],
    }


def included_study_ids(con: duckdb.DuckDBPyConnection, review_id: str) -> list[str]:
    """Studies that enter the analyses (included, not retracted or deleted), sorted."""
    return [
        r[0]
        for r in con.execute(
            "SELECT study_id FROM v_included_studies WHERE review_id = ? AND NOT coalesce(retracted, false) "
            "AND NOT coalesce(deleted, false) ORDER BY study_id",
            [review_id],
        ).fetchall()
    ]


def studies_not_included(con: duckdb.DuckDBPyConnection, review_id: str, study_ids: list[str]) -> list[str]:
    """Those of these studies that no analysis uses yet (not included at full text, or retracted), sorted."""
    return sorted(set(study_ids) - set(included_study_ids(con, review_id)))


def extraction_counts(con: duckdb.DuckDBPyConnection, review_id: str) -> dict[tuple[str, str], int]:
    """How many current extraction rows each (study, outcome) has."""
    return {
        (s, o): int(n)
        for s, o, n in con.execute(
            "SELECT study_id, outcome_id, count(*) FROM v_current_extraction WHERE review_id = ? GROUP BY ALL",
            [review_id],
        ).fetchall()
    }


def current_arms(con: duckdb.DuckDBPyConnection, review_id: str, study_id: str, outcome_id: str) -> dict[str, dict]:
    """The current rows of one study and outcome (whole population), by arm: what a form is prefilled with."""
    return {
        r["arm"]: r
        for r in rows_as_dicts(
            con,
            "SELECT * FROM v_current_extraction WHERE review_id = ? AND study_id = ? AND outcome_id = ? "
            "AND subgroup IS NULL",
            [review_id, study_id, outcome_id],
        )
    }
