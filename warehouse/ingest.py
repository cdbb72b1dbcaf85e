"""Storing what a source returned: search runs, raw payloads, records, versions and watermarks.

The contract every source follows (PubMed, ClinicalTrials.gov, live or replayed):

1. `start_search_run(...)` commits a `running` row, so a failed or killed run is visible.
2. The source fetches and parses; nothing is written meanwhile.
3. `finish_search_run(...)` writes raw payloads, records, record versions, review membership,
   registry events, the run's counts and the new watermark in ONE transaction. A crash before
   COMMIT leaves the warehouse exactly as it was, so the next run starts from the last committed
   watermark and creates no duplicates.
4. On error, `fail_search_run(...)` marks the run failed with a message; the watermark stays.
5. A run whose process died stays `running` until the next `start_search_run` of the same review and
   source marks it `interrupted` (with a message saying nothing from it was stored).
6. Nothing is lost or added silently: records the source sent but that could not be read (`skipped`) or
   that were not asked for (`unrequested`) are written to `source_record_skips`, counted on the run
   (`n_skipped`, `n_unrequested`) and alerted, in the same transaction as the records.

What counts as new, changed, unchanged or deleted is decided by the pure
`livingmeta.sources.changes.plan_ingest` (tested without DuckDB); `finish_search_run` loads what it needs
(`_load_stored`), has the plan made and writes it (`_write_*`), then the run's counts and the watermark.

Secrets: error texts pass `warehouse.db.safe_text`; records and payloads are checked for registered secrets
(`livingmeta.redaction.redact_known`: a server that echoes the request into an answer must not put the API
key into the warehouse, its snapshot or its Parquet export).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterable, Sequence

import duckdb

from livingmeta.records import Record, canonical_json, hash_json
from livingmeta.redaction import contains_known_secret, has_secrets, redact_known
from livingmeta.sources.changes import (
    Change,
    Fetched,
    IngestCounts,
    Stored,
    apply_deletions,
    canonical,
    payload_text,
    plan_ingest,
    record_dict,
)
from livingmeta.sources.skips import SkippedRecord
from livingmeta.sources.spool import FetchedSpool
from warehouse.alerts import add_alert
from warehouse.db import safe_text, transaction
from warehouse.lazy import pandas as pd  # loads on first use

STORE_BATCH = 5_000  # last sightings planned and written at a time (memory: one batch, not the run)
_RECORD_COLUMNS = [
    "record_id",
    "source",
    "source_id",
    "version",
    "source_version",
    "title",
    "abstract",
    "authors",
    "journal",
    "year",
    "month",
    "doi",
    "pmcid",
    "language",
    "publication_types",
    "is_rct",
    "mesh",
    "keywords",
    "registry_ids",
    "deleted",
    "retracted",
    "corrections",
    "extra",
    "content_hash",
    "first_seen_at",
    "updated_at",
    "last_run_id",
]
_JSON_FIELDS = ("authors", "publication_types", "mesh", "keywords", "registry_ids", "corrections", "extra")
_PLAIN_FIELDS = (
    "source",
    "source_id",
    "source_version",
    "title",
    "abstract",
    "journal",
    "year",
    "month",
    "doi",
    "pmcid",
    "language",
    "is_rct",
    "deleted",
    "retracted",
)


INTERRUPTED_ERROR = (
    "interrupted: the process stopped before this run committed (killed, crashed or the machine restarted); "
    "nothing from it was stored and the watermark did not move. Run {run_id}, started {now}, searches again "
    "from the last committed watermark."
)


def start_search_run(
    con: duckdb.DuckDBPyConnection,
    *,
    review_id: str,
    source: str,
    query: str,
    mode: str,
    window_start: dt.datetime | None,
    window_end: dt.datetime | None,
    now: dt.datetime,
    update_id: int | None = None,
    earliest_date: dt.date | None = None,
) -> int:
    """Record that a search run started (committed at once) and return its run_id.

    Older runs of the same review and source still marked `running` can only belong to a process that
    died before its COMMIT (a deployment runs one update per review at a time), so they are marked
    `interrupted` with a message in the same transaction: nothing of theirs was stored.
    """
    with transaction(con):
        qh = hash_json(query)
        con.execute(
            "INSERT INTO search_definitions VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [review_id, source, query, qh, earliest_date, now],
        )
        row = con.execute(
            "INSERT INTO search_runs (review_id, update_id, source, query, mode, window_start, window_end, "
            "started_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running') RETURNING run_id",
            [review_id, update_id, source, query, mode, window_start, window_end, now],
        ).fetchone()
        assert row is not None  # RETURNING gives the inserted row
        (run_id,) = row
        con.execute(
            "UPDATE search_runs SET status = 'interrupted', finished_at = ?, error = ? "
            "WHERE review_id = ? AND source = ? AND status = 'running' AND run_id < ?",
            [now, INTERRUPTED_ERROR.format(run_id=run_id, now=now.isoformat()), review_id, source, run_id],
        )
    return int(run_id)


def fail_search_run(
    con: duckdb.DuckDBPyConnection, run_id: int, error: str, now: dt.datetime, n_requests: int = 0
) -> None:
    """Mark a run failed with a message for people (redacted); its watermark does not move."""
    con.execute(
        "UPDATE search_runs SET status = 'failed', finished_at = ?, error = ?, n_requests = ? WHERE run_id = ?",
        [now, safe_text(error), n_requests, run_id],
    )


def get_watermark(con: duckdb.DuckDBPyConnection, review_id: str, source: str) -> dt.datetime | None:
    """The last committed watermark of a review's source (None before the first successful run)."""
    row = con.execute(
        "SELECT watermark FROM source_watermarks WHERE review_id = ? AND source = ?", [review_id, source]
    ).fetchone()
    return row[0] if row else None


def _without_secrets(f: Fetched) -> Fetched:
    """The record and payload with every registered secret masked (a cheap test first: almost never needed)."""
    if not has_secrets():
        return f
    payload = payload_text(f.payload)
    if not contains_known_secret(payload) and not contains_known_secret(canonical_json(record_dict(f.record))):
        return f
    return Fetched(Record(**redact_data_known(record_dict(f.record))), str(redact_known(payload)))


def redact_data_known(value):
    """`redact_known` on every string inside nested dicts and lists."""
    if isinstance(value, str):
        return redact_known(value)
    if isinstance(value, dict):
        return {k: redact_data_known(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_data_known(v) for v in value]
    return value


def _record_skips(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: int,
    review_id: str,
    source: str,
    now: dt.datetime,
    skipped: Sequence[SkippedRecord],
    unrequested: Sequence[Fetched | str],
) -> None:
    """Keep, count and alert what the run received but did not store (inside the caller's transaction)."""
    rows: list[tuple] = [
        (
            run_id,
            review_id,
            source,
            s.source_id,
            "malformed",
            s.field,
            safe_text(s.problem),
            redact_known(s.payload) if s.payload is not None else None,
            now,
        )
        for s in skipped
    ]
    unreq_ids = []
    for u in unrequested:
        sid = u if isinstance(u, str) else u.record.source_id
        payload = None if isinstance(u, str) else redact_known(u.payload)
        unreq_ids.append(sid)
        rows.append(
            (
                run_id,
                review_id,
                source,
                sid,
                "unrequested",
                None,
                f"{source} sent {sid} although it was not requested; not stored as a record of this review",
                payload,
                now,
            )
        )
    if rows:
        con.executemany("INSERT INTO source_record_skips VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    if skipped:
        names = sorted({s.label for s in skipped})
        lines = [f"- {s.label}, field {s.field}: {s.problem}" for s in skipped]
        add_alert(
            con,
            review_id=review_id,
            kind="source_record_skipped",
            severity="warning",
            run_id=run_id,
            now=now,
            title=f"{source}: {len(skipped)} record(s) could not be read and were skipped (run {run_id}): "
            f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''}",
            body="\n".join(
                [
                    f"Search run {run_id} stored every other record; these were left out (kept in "
                    "source_record_skips with their payload):",
                    *lines,
                ]
            ),
            dedupe_key=f"source_record_skipped:{run_id}",
        )
    if unreq_ids:
        add_alert(
            con,
            review_id=review_id,
            kind="source_record_unrequested",
            severity="warning",
            run_id=run_id,
            now=now,
            title=f"{source}: {len(unreq_ids)} record(s) sent that were not requested (run {run_id})",
            body=f"Search run {run_id}: {source} answered with {', '.join(sorted(set(unreq_ids)))}, which no "
            "request asked for; they were not stored as records of this review.",
            dedupe_key=f"source_record_unrequested:{run_id}",
        )


def finish_search_run(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: int,
    review_id: str,
    source: str,
    fetched: Iterable[Fetched],
    watermark: dt.datetime | None,
    now: dt.datetime,
    n_found: int | None = None,
    n_requests: int = 0,
    skipped: Sequence[SkippedRecord] = (),
    unrequested: Sequence[Fetched | str] = (),
    deletions: Sequence[Fetched] = (),
    batch_size: int = STORE_BATCH,
) -> IngestCounts:
    """Store a run's records and move its watermark, all in one transaction.

    What is new, changed, unchanged or deleted, and which raw payloads are kept, is decided by
    `livingmeta.sources.changes.plan_ingest` (the rule is written down there); this function loads the stored
    state it needs, writes the plan, the skips, the run's counts and the watermark.

    Args:
        fetched: every record the run fetched (duplicates allowed; the last one wins): a list or a
            `FetchedSpool` (read twice at most: for the deletion notices' records, then to store).
        watermark: the new watermark (None keeps the old one).
        n_found: ids the source reported for the window(s); defaults to the number of distinct records.
        skipped: records received that could not be read (stored in source_record_skips, counted, alerted).
        unrequested: records (or ids) received that no request asked for: never stored as records; kept in
            source_record_skips, counted and alerted.
        deletions: deletion notices (PubMed DeleteCitation): the record last known, marked deleted; a notice
            for a record never stored is counted in `deleted_unknown` only.
        batch_size: records planned and written at a time (the result does not depend on it).
    Returns:
        counts of new / changed / unchanged / deleted records, and the ids of new and changed ones.
    """
    with transaction(con):
        # Stored in batches of last sightings (issue 15): a first load of 200k records held the whole plan, its
        # frames and DuckDB's copies at once. Each record id occurs once among the last sightings, so a batch
        # reads and writes only its own records and the result is the one storing everything at once gives
        # (same rows, same order of raw_id and event ids); tests/test_warehouse_ingest_batches.py compares the two.
        deleted, unknown = _deleted_records(con, source, fetched, deletions)
        ids = _record_ids(fetched) + [f.record.record_id for f in deleted]
        last = {rid: i for i, rid in enumerate(ids)}  # the position of each record's last sighting
        counts = IngestCounts(found=n_found if n_found is not None else len(last))
        held = _stored_before(con, source, list(last))
        batch: list[Fetched] = []
        for i, f in enumerate(itertools.chain(fetched, deleted)):
            if last[f.record.record_id] == i:
                batch.append(f)
            if len(batch) == batch_size:
                _store_batch(
                    con, source=source, review_id=review_id, run_id=run_id, now=now, batch=batch, held=held, into=counts
                )
                batch = []
        _store_batch(
            con, source=source, review_id=review_id, run_id=run_id, now=now, batch=batch, held=held, into=counts
        )
        counts.skipped, counts.unrequested, counts.deleted_unknown = len(skipped), len(unrequested), unknown
        _record_skips(
            con, run_id=run_id, review_id=review_id, source=source, now=now, skipped=skipped, unrequested=unrequested
        )
        _mark_succeeded(con, run_id=run_id, now=now, counts=counts, n_requests=n_requests)
        if watermark is not None:
            _move_watermark(con, review_id=review_id, source=source, watermark=watermark, run_id=run_id, now=now)
    return counts


def _record_ids(fetched: Iterable[Fetched]) -> list[str]:
    """The record id of each fetched record, in order (a spool lists them without reading its file)."""
    if isinstance(fetched, FetchedSpool):
        return fetched.record_ids
    return [f.record.record_id for f in fetched]


def _deleted_records(
    con: duckdb.DuckDBPyConnection, source: str, fetched: Iterable[Fetched], deletions: Sequence[Fetched]
) -> tuple[list[Fetched], int]:
    """The records the deletion notices withdraw, marked deleted (`apply_deletions` on the records they name)."""
    if not deletions:
        return [], 0
    named = {d.record.record_id: d.record.source_id for d in deletions}
    sighted = [f for f in fetched if f.record.record_id in named]
    stored, _ = _load_stored(con, source, list(named), list(dict.fromkeys(named.values())))
    out, unknown = apply_deletions(sighted, deletions, stored)
    return out[len(sighted) :], unknown


def _store_batch(
    con: duckdb.DuckDBPyConnection,
    *,
    source: str,
    review_id: str,
    run_id: int,
    now: dt.datetime,
    batch: list[Fetched],
    held: tuple[set, set],
    into: IngestCounts,
) -> None:
    """Plan and write one batch of last sightings (distinct record ids), adding its counts to `into`; `held` is
    `_stored_before` of the run's records (a batch never reads what an earlier batch wrote: other records)."""
    if not batch:
        return
    seen = {f.record.record_id: f.record.source_id for f in batch}
    stored, latest_payload = _load_stored(
        con,
        source,
        [rid for rid in seen if rid in held[0]],
        [sid for sid in dict.fromkeys(seen.values()) if sid in held[1]],
    )
    # plan_ingest keeps the last sighting of each record: redacting the others too changes nothing
    plan = plan_ingest([_without_secrets(f) for f in batch], stored, latest_payload, n_found=0)
    c = plan.counts
    into.new, into.changed, into.unchanged, into.deleted = (
        into.new + c.new,
        into.changed + c.changed,
        into.unchanged + c.unchanged,
        into.deleted + c.deleted,
    )
    into.new_ids += c.new_ids
    into.changed_ids += c.changed_ids
    into.events += c.events
    _write_payloads(con, source=source, run_id=run_id, now=now, payloads=plan.payloads)
    _write_records(con, run_id=run_id, now=now, changes=plan.changes)
    _write_membership(con, review_id=review_id, run_id=run_id, now=now, record_ids=plan.member_ids)
    _write_events(con, run_id=run_id, now=now, changes=plan.changes)


def _load_stored(
    con: duckdb.DuckDBPyConnection, source: str, record_ids: Sequence[str], source_ids: Sequence[str]
) -> tuple[dict[str, Stored], dict[str, str]]:
    """The current stored version of each record, and the latest raw payload hash of each source id."""
    stored: dict[str, Stored] = {}
    latest: dict[str, str] = {}
    if record_ids:
        ids_df = pd.DataFrame({"record_id": record_ids})  # noqa: F841 (DuckDB scans it by name)
        stored = {
            rid: Stored(h, ver, data, deleted)
            for rid, h, ver, data, deleted in con.execute(
                "SELECT r.record_id, r.content_hash, r.version, v.data, r.deleted FROM records r "
                "JOIN ids_df USING (record_id) "
                "JOIN record_versions v ON v.record_id = r.record_id AND v.version = r.version"
            ).fetchall()
        }
    if source_ids:
        sids_df = pd.DataFrame({"source_id": source_ids})  # noqa: F841
        latest = dict(
            con.execute(
                "SELECT w.source_id, arg_max(w.payload_hash, w.raw_id) FROM raw_records w "
                "JOIN sids_df USING (source_id) WHERE w.source = ? GROUP BY w.source_id",
                [source],
            ).fetchall()
        )
    return stored, latest


def _stored_before(con: duckdb.DuckDBPyConnection, source: str, record_ids: Sequence[str]) -> tuple[set, set]:
    """Which of these records the warehouse holds, and which of their source ids have a raw payload, before the run
    writes anything: the batches look up only those (on a first load: nothing, instead of ever larger tables)."""
    if not record_ids:
        return set(), set()
    ids_df = pd.DataFrame({"record_id": list(record_ids)})  # noqa: F841 (DuckDB scans it by name)
    held = {rid for (rid,) in con.execute("SELECT record_id FROM records JOIN ids_df USING (record_id)").fetchall()}
    sids_df = pd.DataFrame({"source_id": [rid.split(":", 1)[1] for rid in record_ids]})  # noqa: F841
    paid = {
        sid
        for (sid,) in con.execute(
            "SELECT DISTINCT source_id FROM raw_records JOIN sids_df USING (source_id) WHERE source = ?", [source]
        ).fetchall()
    }
    return held, paid


def _write_payloads(
    con: duckdb.DuckDBPyConnection,
    *,
    source: str,
    run_id: int,
    now: dt.datetime,
    payloads: Sequence[tuple[str, str, str]],
) -> None:
    if not payloads:
        return
    raw_df = pd.DataFrame(  # noqa: F841 (read by name in the SQL below)
        {
            "source_id": [p[0] for p in payloads],
            "payload": [p[1] for p in payloads],
            "payload_hash": [p[2] for p in payloads],
        }
    )
    con.execute(
        "INSERT INTO raw_records (source, source_id, run_id, fetched_at, payload, payload_hash) "
        "SELECT ?, source_id, ?, ?, payload, payload_hash FROM raw_df",
        [source, run_id, now],
    )


def _write_records(con: duckdb.DuckDBPyConnection, *, run_id: int, now: dt.datetime, changes: Sequence[Change]) -> None:
    """Upsert the new and changed records (keeping first_seen_at of records already stored) and add their
    versions."""
    if not changes:
        return
    rec_cols: dict[str, list] = {c: [] for c in _RECORD_COLUMNS}
    for ch in changes:
        for c, v in (
            ("record_id", ch.record_id),
            ("version", ch.version),
            ("content_hash", ch.content_hash),
            ("first_seen_at", now if ch.kind == "new" else None),
        ):
            rec_cols[c].append(v)
        for c in _PLAIN_FIELDS:
            rec_cols[c].append(ch.data[c])
        for c in _JSON_FIELDS:
            rec_cols[c].append(canonical(ch.data[c]))
    rec_cols["updated_at"] = [now] * len(changes)
    rec_cols["last_run_id"] = [run_id] * len(changes)
    rec_df = pd.DataFrame(rec_cols, columns=_RECORD_COLUMNS)
    rec_df["year"] = rec_df["year"].astype("Int64")
    rec_df["month"] = rec_df["month"].astype("Int64")
    rec_df["first_seen_at"] = pd.to_datetime(rec_df["first_seen_at"], utc=True)
    con.execute(
        "INSERT INTO records SELECT d.* REPLACE (coalesce(r.first_seen_at, d.first_seen_at) AS first_seen_at) "
        "FROM rec_df d LEFT JOIN records r USING (record_id) "
        "ON CONFLICT (record_id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in _RECORD_COLUMNS if c not in ("record_id", "first_seen_at"))
    )
    ver_df = pd.DataFrame(  # noqa: F841 (read by name in the SQL below)
        {
            "record_id": [ch.record_id for ch in changes],
            "version": [ch.version for ch in changes],
            "content_hash": [ch.content_hash for ch in changes],
            "data": [ch.data_json for ch in changes],
            "changed_fields": [
                json.dumps(ch.changed_fields) if ch.changed_fields is not None else None for ch in changes
            ],
        }
    )
    con.execute(
        "INSERT INTO record_versions SELECT record_id, version, content_hash, data, changed_fields, ?, ? FROM ver_df",
        [run_id, now],
    )


def _write_membership(
    con: duckdb.DuckDBPyConnection, *, review_id: str, run_id: int, now: dt.datetime, record_ids: Sequence[str]
) -> None:
    """Every record the run saw belongs to the review (first sighting kept, last run updated)."""
    if not record_ids:
        return
    mem_df = pd.DataFrame({"record_id": list(record_ids)})  # noqa: F841
    con.execute(
        "INSERT INTO review_records (review_id, record_id, first_run_id, first_seen_at, last_run_id) "
        "SELECT ?, record_id, ?, ?, ? FROM mem_df "
        "ON CONFLICT (review_id, record_id) DO UPDATE SET last_run_id = excluded.last_run_id",
        [review_id, run_id, now, run_id],
    )


def _write_events(con: duckdb.DuckDBPyConnection, *, run_id: int, now: dt.datetime, changes: Sequence[Change]) -> None:
    events = [(ch.record_id, run_id, kind, before, after, now) for ch in changes for kind, before, after in ch.events]
    if events:
        con.executemany(
            "INSERT INTO registry_events (record_id, run_id, kind, old_value, new_value, occurred_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            events,
        )


def _mark_succeeded(
    con: duckdb.DuckDBPyConnection, *, run_id: int, now: dt.datetime, counts: IngestCounts, n_requests: int
) -> None:
    con.execute(
        "UPDATE search_runs SET status = 'succeeded', finished_at = ?, n_found = ?, n_new = ?, n_changed = ?, "
        "n_unchanged = ?, n_deleted = ?, n_requests = ?, n_skipped = ?, n_unrequested = ?, error = NULL "
        "WHERE run_id = ?",
        [
            now,
            counts.found,
            counts.new,
            counts.changed,
            counts.unchanged,
            counts.deleted,
            n_requests,
            counts.skipped,
            counts.unrequested,
            run_id,
        ],
    )


def _move_watermark(
    con: duckdb.DuckDBPyConnection,
    *,
    review_id: str,
    source: str,
    watermark: dt.datetime,
    run_id: int,
    now: dt.datetime,
) -> None:
    con.execute(
        "INSERT INTO source_watermarks VALUES (?, ?, ?, ?, ?) ON CONFLICT (review_id, source) DO UPDATE SET "
        "watermark = excluded.watermark, run_id = excluded.run_id, updated_at = excluded.updated_at",
        [review_id, source, watermark, run_id, now],
    )


def watermark_query(con: duckdb.DuckDBPyConnection, review_id: str, source: str) -> str | None:
    """The query text of the run that set a review's source watermark (None before the first success)."""
    row = con.execute(
        "SELECT r.query FROM source_watermarks w JOIN search_runs r USING (run_id) WHERE w.review_id = ? "
        "AND w.source = ?",
        [review_id, source],
    ).fetchone()
    return row[0] if row else None
