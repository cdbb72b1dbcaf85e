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

Secrets: error texts pass `warehouse.db.safe_text`; records and payloads are checked for registered secrets
(`livingmeta.redaction.redact_known`: a server that echoes the request into an answer must not put the API
key into the warehouse, its snapshot or its Parquet export).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from livingmeta.records import Record, canonical_json, hash_bytes, hash_json
from livingmeta.redaction import contains_known_secret, has_secrets, redact_known
from livingmeta.sources.events import registry_events
from livingmeta.sources.skips import SkippedRecord
from warehouse.alerts import add_alert
from warehouse.db import safe_text, transaction

_RECORD_COLUMNS = [
    "record_id", "source", "source_id", "version", "source_version", "title", "abstract", "authors",
    "journal", "year", "month", "doi", "pmcid", "language", "publication_types", "is_rct", "mesh",
    "keywords", "registry_ids", "deleted", "retracted", "corrections", "extra", "content_hash",
    "first_seen_at", "updated_at", "last_run_id",
]
_JSON_FIELDS = ("authors", "publication_types", "mesh", "keywords", "registry_ids", "corrections", "extra")
_PLAIN_FIELDS = ("source", "source_id", "source_version", "title", "abstract", "journal", "year", "month", "doi",
                 "pmcid", "language", "is_rct", "deleted", "retracted")


@dataclass
class Fetched:
    """One record as a source returned it: the normalised record and its raw payload."""

    record: Record
    payload: bytes | str


@dataclass
class IngestCounts:
    found: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: int = 0
    unrequested: int = 0
    new_ids: list[str] = field(default_factory=list)
    changed_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"found": self.found, "new": self.new, "changed": self.changed, "unchanged": self.unchanged,
                "deleted": self.deleted, "skipped": self.skipped, "unrequested": self.unrequested}


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
        (run_id,) = con.execute(
            "INSERT INTO search_runs (review_id, update_id, source, query, mode, window_start, window_end, "
            "started_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running') RETURNING run_id",
            [review_id, update_id, source, query, mode, window_start, window_end, now],
        ).fetchone()
        con.execute(
            "UPDATE search_runs SET status = 'interrupted', finished_at = ?, error = ? "
            "WHERE review_id = ? AND source = ? AND status = 'running' AND run_id < ?",
            [now, INTERRUPTED_ERROR.format(run_id=run_id, now=now.isoformat()), review_id, source, run_id],
        )
    return int(run_id)


def fail_search_run(con: duckdb.DuckDBPyConnection, run_id: int, error: str, now: dt.datetime, n_requests: int = 0) -> None:
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


def _dedupe(fetched: Iterable[Fetched]) -> list[Fetched]:
    # DuckDB's upsert silently keeps the first of two rows with one key: keep the last sighting ourselves
    last: dict[str, Fetched] = {}
    for f in fetched:
        last.pop(f.record.record_id, None)
        last[f.record.record_id] = f
    return list(last.values())


def _without_secrets(f: Fetched) -> Fetched:
    """The record and payload with every registered secret masked (a cheap test first: almost never needed)."""
    if not has_secrets():
        return f
    payload = f.payload.decode("utf-8", "replace") if isinstance(f.payload, bytes) else f.payload
    if not contains_known_secret(payload) and not contains_known_secret(canonical_json(_record_dict(f.record))):
        return f
    return Fetched(Record(**redact_data_known(_record_dict(f.record))), redact_known(payload))


def redact_data_known(value):
    """`redact_known` on every string inside nested dicts and lists."""
    if isinstance(value, str):
        return redact_known(value)
    if isinstance(value, dict):
        return {k: redact_data_known(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_data_known(v) for v in value]
    return value


def _record_skips(con: duckdb.DuckDBPyConnection, *, run_id: int, review_id: str, source: str, now: dt.datetime,
                  skipped: Sequence[SkippedRecord], unrequested: Sequence[Fetched | str]) -> None:
    """Keep, count and alert what the run received but did not store (inside the caller's transaction)."""
    rows = [(run_id, review_id, source, s.source_id, "malformed", s.field, safe_text(s.problem),
             redact_known(s.payload) if s.payload is not None else None, now) for s in skipped]
    unreq_ids = []
    for u in unrequested:
        sid = u if isinstance(u, str) else u.record.source_id
        payload = None if isinstance(u, str) else redact_known(u.payload)
        unreq_ids.append(sid)
        rows.append((run_id, review_id, source, sid, "unrequested", None,
                     f"{source} sent {sid} although it was not requested; not stored as a record of this review",
                     payload, now))
    if rows:
        con.executemany("INSERT INTO source_record_skips VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    if skipped:
        names = sorted({s.label for s in skipped})
        lines = [f"- {s.label}, field {s.field}: {s.problem}" for s in skipped]
        add_alert(con, review_id=review_id, kind="source_record_skipped", severity="warning", run_id=run_id, now=now,
                  title=f"{source}: {len(skipped)} record(s) could not be read and were skipped (run {run_id}): "
                        f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''}",
                  body="\n".join([f"Search run {run_id} stored every other record; these were left out (kept in "
                                   "source_record_skips with their payload):", *lines]),
                  dedupe_key=f"source_record_skipped:{run_id}")
    if unreq_ids:
        add_alert(con, review_id=review_id, kind="source_record_unrequested", severity="warning", run_id=run_id,
                  now=now, title=f"{source}: {len(unreq_ids)} record(s) sent that were not requested (run {run_id})",
                  body=f"Search run {run_id}: {source} answered with {', '.join(sorted(set(unreq_ids)))}, which no "
                       "request asked for; they were not stored as records of this review.",
                  dedupe_key=f"source_record_unrequested:{run_id}")


# Record.to_dict() is dataclasses.asdict, which deep-copies every list and dict: it was most of the load
# time on large runs. A Record holds only JSON values, so a plain field dict is equal to it (same JSON,
# same hash) and nothing here mutates it. test_warehouse_ingest checks the equality on real records.
_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(Record))
# json.dumps builds a new encoder per call when given options; one encoder with canonical_json's options
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode


def _record_dict(rec: Record) -> dict:
    return {name: getattr(rec, name) for name in _RECORD_FIELDS}


def _changed_fields(old: dict, new: dict) -> list[str]:
    return sorted(k for k in set(old) | set(new) if canonical_json(old.get(k)) != canonical_json(new.get(k)))


def finish_search_run(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: int,
    review_id: str,
    source: str,
    fetched: Sequence[Fetched],
    watermark: dt.datetime | None,
    now: dt.datetime,
    n_found: int | None = None,
    n_requests: int = 0,
    skipped: Sequence[SkippedRecord] = (),
    unrequested: Sequence[Fetched | str] = (),
) -> IngestCounts:
    """Store a run's records and move its watermark, all in one transaction.

    Raw payloads: a payload is stored whenever its hash differs from the latest stored payload of the
    same source id, so every distinct answer is kept (also when only fields the record leaves out, such
    as PubMed's DateRevised, moved) and identical re-fetches add nothing.

    Args:
        fetched: every record the run fetched (duplicates allowed; the last one wins).
        watermark: the new watermark (None keeps the old one).
        n_found: ids the source reported for the window(s); defaults to the number of distinct records.
        skipped: records received that could not be read (stored in source_record_skips, counted, alerted).
        unrequested: records (or ids) received that no request asked for: never stored as records; kept in
            source_record_skips, counted and alerted.
    Returns:
        counts of new / changed / unchanged / deleted records, and the ids of new and changed ones.
    """
    batch = [_without_secrets(f) for f in _dedupe(fetched)]
    counts = IngestCounts(found=n_found if n_found is not None else len(batch))
    counts.skipped, counts.unrequested = len(skipped), len(unrequested)
    ids = [f.record.record_id for f in batch]
    with transaction(con):
        existing: dict[str, tuple[str, int, str, bool]] = {}
        latest_raw: dict[str, str] = {}
        if ids:
            ids_df = pd.DataFrame({"record_id": ids, "source_id": [f.record.source_id for f in batch]})  # noqa: F841
            con.execute("CREATE OR REPLACE TEMP TABLE _ids AS SELECT record_id, source_id FROM ids_df")
            for rid, h, ver, data, deleted in con.execute(
                "SELECT r.record_id, r.content_hash, r.version, v.data, r.deleted FROM records r "
                "JOIN _ids USING (record_id) "
                "JOIN record_versions v ON v.record_id = r.record_id AND v.version = r.version"
            ).fetchall():
                existing[rid] = (h, ver, data, deleted)
            latest_raw = dict(con.execute(
                "SELECT w.source_id, arg_max(w.payload_hash, w.raw_id) FROM raw_records w "
                "JOIN _ids USING (source_id) WHERE w.source = ? GROUP BY w.source_id", [source]).fetchall())
            con.execute("DROP TABLE _ids")
        raw_cols: dict[str, list] = {"source_id": [], "payload": [], "payload_hash": []}
        rec_cols: dict[str, list] = {c: [] for c in _RECORD_COLUMNS}
        ver_cols: dict[str, list] = {"record_id": [], "version": [], "content_hash": [], "data": [], "changed_fields": []}
        events = []
        for f in batch:
            rec = f.record
            rid = rec.record_id
            payload = f.payload.decode("utf-8", "replace") if isinstance(f.payload, bytes) else f.payload
            payload_hash = hash_bytes(payload.encode("utf-8"))
            if latest_raw.get(rec.source_id) != payload_hash:
                raw_cols["source_id"].append(rec.source_id)
                raw_cols["payload"].append(payload)
                raw_cols["payload_hash"].append(payload_hash)
            data = _record_dict(rec)
            data_json = _CANONICAL(data)
            h = hashlib.sha256(data_json.encode("utf-8")).hexdigest()  # == hash_json(data), computed once
            old = existing.get(rid)
            if old is not None and old[0] == h:
                counts.unchanged += 1
                continue
            old_data = json.loads(old[2]) if old is not None else None
            if old is None:
                version, changed, first_seen = 1, None, now
                counts.new += 1
                counts.new_ids.append(rid)
            else:
                version, changed, first_seen = old[1] + 1, _changed_fields(old_data, data), None
                counts.changed += 1
                counts.changed_ids.append(rid)
            if rec.deleted and (old is None or not old[3]):
                counts.deleted += 1
            for kind, before, after in registry_events(old_data, data):
                events.append((rid, run_id, kind, before, after, now))
            for c, v in (("record_id", rid), ("version", version), ("content_hash", h), ("first_seen_at", first_seen)):
                rec_cols[c].append(v)
            for c in _PLAIN_FIELDS:
                rec_cols[c].append(data[c])
            for c in _JSON_FIELDS:
                rec_cols[c].append(_CANONICAL(data[c]))
            ver_cols["record_id"].append(rid)
            ver_cols["version"].append(version)
            ver_cols["content_hash"].append(h)
            ver_cols["data"].append(data_json)
            ver_cols["changed_fields"].append(json.dumps(changed) if changed is not None else None)
        if raw_cols["payload"]:
            raw_df = pd.DataFrame(raw_cols)  # noqa: F841 (DuckDB scans it by name)
            con.execute("INSERT INTO raw_records (source, source_id, run_id, fetched_at, payload, payload_hash) "
                        "SELECT ?, source_id, ?, ?, payload, payload_hash FROM raw_df", [source, run_id, now])
        if rec_cols["record_id"]:
            rec_cols["updated_at"] = [now] * len(rec_cols["record_id"])
            rec_cols["last_run_id"] = [run_id] * len(rec_cols["record_id"])
            rec_df = pd.DataFrame(rec_cols, columns=_RECORD_COLUMNS)
            rec_df["year"] = rec_df["year"].astype("Int64")
            rec_df["month"] = rec_df["month"].astype("Int64")
            rec_df["first_seen_at"] = pd.to_datetime(rec_df["first_seen_at"], utc=True)
            # keep first_seen_at of records we already had
            con.execute(
                "INSERT INTO records SELECT d.* REPLACE (coalesce(r.first_seen_at, d.first_seen_at) AS first_seen_at) "
                "FROM rec_df d LEFT JOIN records r USING (record_id) "
                "ON CONFLICT (record_id) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in _RECORD_COLUMNS if c not in ("record_id", "first_seen_at"))
            )
            ver_df = pd.DataFrame(ver_cols)  # noqa: F841
            con.execute("INSERT INTO record_versions SELECT record_id, version, content_hash, data, changed_fields, ?, ? "
                        "FROM ver_df", [run_id, now])
        if ids:
            mem_df = pd.DataFrame({"record_id": ids})  # noqa: F841
            con.execute(
                "INSERT INTO review_records (review_id, record_id, first_run_id, first_seen_at, last_run_id) "
                "SELECT ?, record_id, ?, ?, ? FROM mem_df "
                "ON CONFLICT (review_id, record_id) DO UPDATE SET last_run_id = excluded.last_run_id",
                [review_id, run_id, now, run_id],
            )
        if events:
            con.executemany(
                "INSERT INTO registry_events (record_id, run_id, kind, old_value, new_value, occurred_at) VALUES (?, ?, ?, ?, ?, ?)",
                events,
            )
        _record_skips(con, run_id=run_id, review_id=review_id, source=source, now=now, skipped=skipped,
                      unrequested=unrequested)
        con.execute(
            "UPDATE search_runs SET status = 'succeeded', finished_at = ?, n_found = ?, n_new = ?, n_changed = ?, "
            "n_unchanged = ?, n_deleted = ?, n_requests = ?, n_skipped = ?, n_unrequested = ?, error = NULL "
            "WHERE run_id = ?",
            [now, counts.found, counts.new, counts.changed, counts.unchanged, counts.deleted, n_requests,
             counts.skipped, counts.unrequested, run_id],
        )
        if watermark is not None:
            con.execute(
                "INSERT INTO source_watermarks VALUES (?, ?, ?, ?, ?) ON CONFLICT (review_id, source) DO UPDATE SET "
                "watermark = excluded.watermark, run_id = excluded.run_id, updated_at = excluded.updated_at",
                [review_id, source, watermark, run_id, now],
            )
    return counts


def watermark_query(con: duckdb.DuckDBPyConnection, review_id: str, source: str) -> str | None:
    """The query text of the search run that set a source's watermark (None before the first success)."""
    row = con.execute("SELECT r.query FROM source_watermarks w JOIN search_runs r USING (run_id) "
                      "WHERE w.review_id = ? AND w.source = ?", [review_id, source]).fetchone()
    return row[0] if row else None


def run_registry_events(con: duckdb.DuckDBPyConnection, run_id: int) -> list[dict]:
    """The registry events (status changes, results posted, ...) one search run stored, in order."""
    from warehouse.db import rows_as_dicts

    return rows_as_dicts(con, "SELECT record_id, kind, old_value, new_value FROM registry_events "
                              "WHERE run_id = ? ORDER BY event_id", [run_id])


def current_record_data(con: duckdb.DuckDBPyConnection, record_id: str) -> dict | None:
    """The stored current version of a record (`Record.to_dict()` shape), or None when never stored."""
    row = con.execute("SELECT v.data FROM records r JOIN record_versions v ON v.record_id = r.record_id "
                      "AND v.version = r.version WHERE r.record_id = ?", [record_id]).fetchone()
    return json.loads(row[0]) if row else None
