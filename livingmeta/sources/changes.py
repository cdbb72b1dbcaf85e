"""What counts as a new, changed, unchanged or deleted record: the rule every source run stores by (pure).

A source run hands over what it fetched (`Fetched`: the normalised record and its raw payload, plus bare
deletion notices); the warehouse hands over what it holds of those records (`Stored`: the current version's
hash and data, the latest raw payload hash per source id). `plan_ingest` decides, without any database, what
the run stores; `warehouse.ingest.finish_search_run` loads the state, calls it and writes the plan in one
transaction with the watermark.

The rule:
- Content: a record's content is the canonical JSON (sorted keys, no spaces) of EVERY field of `Record`
  (`record_content`); its sha256 is the content hash. Two sightings with equal hashes are the same record
  for a reviewer.
- Several sightings of one record in one run: the last one wins (DuckDB's upsert would keep the first).
- New: no stored version -> version 1. Changed: the hash differs from the stored current version's -> version
  + 1, with the fields that differ (`changed_fields`). Unchanged: equal hash -> nothing is written but the
  review membership (the run saw it).
- Deleted: a deletion notice (PubMed DeleteCitation) is the record as last known (the newest sighting in this
  run, else the stored current version) with `deleted=True`, its content otherwise kept; a notice for a
  record never stored here marks nothing and is only counted (`deleted_unknown`). A record counts as deleted
  in the run that first stores it deleted; a deleted record that comes back (a later sighting without the
  flag) is a change like any other (`deleted` back to False; it is not counted as deleted again).
- Retracted, status changes, results posted, deleted: registry events between the stored and the new version
  (`livingmeta.sources.events.registry_events`); a new record has no events.
- Raw payloads: a payload is kept whenever its hash differs from the latest stored payload of the same source
  id (so every distinct answer is kept, also when only fields the record leaves out moved, and identical
  re-fetches add nothing), at most once per distinct payload within the run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from livingmeta.records import Record, canonical_json, hash_bytes
from livingmeta.sources.events import registry_events


@dataclass
class Fetched:
    """One record as a source returned it: the normalised record and its raw payload."""

    record: Record
    payload: bytes | str


@dataclass(frozen=True)
class Stored:
    """What the warehouse holds of a record: its current version (hash, number, canonical data) and flag."""

    content_hash: str
    version: int
    data_json: str
    deleted: bool

    def data(self) -> dict[str, Any]:
        return json.loads(self.data_json)


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
    deleted_unknown: int = 0  # deletion notices for records never stored here (not a search_runs column)
    events: list[dict[str, Any]] = field(default_factory=list)  # registry events stored, as registry_events rows

    def as_dict(self) -> dict:
        return {
            "found": self.found,
            "new": self.new,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "skipped": self.skipped,
            "unrequested": self.unrequested,
        }


Kind = Literal["new", "changed", "unchanged"]


@dataclass(slots=True)
class Change:
    """The verdict on one record of a run (what to write for it when it is new or changed)."""

    record: Record
    record_id: str
    kind: Kind
    version: int
    content_hash: str
    data: dict[str, Any]
    data_json: str
    changed_fields: list[str] | None  # None for a new record
    newly_deleted: bool
    events: list[tuple[str, str | None, str | None]]


@dataclass
class IngestPlan:
    """Everything a run stores, decided: raw payloads, new/changed versions, membership and counts."""

    counts: IngestCounts
    payloads: list[tuple[str, str, str]]  # (source_id, payload text, payload hash) to append to raw_records
    changes: list[Change]  # new and changed records only, in the order received
    member_ids: list[str]  # every record the run saw (review membership), unchanged ones included


# Record.to_dict() is dataclasses.asdict, which deep-copies every list and dict: it was most of the load
# time on large runs. A Record holds only JSON values, so a plain field dict is equal to it (same JSON,
# same hash) and nothing here mutates it. tests/test_source_changes.py checks the equality.
_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(Record))
# json.dumps builds a new encoder per call when given options; one encoder with canonical_json's options
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode


def record_dict(rec: Record) -> dict[str, Any]:
    """Every field of the record as a plain dict (equal to `rec.to_dict()`, without its deep copy)."""
    return {name: getattr(rec, name) for name in _RECORD_FIELDS}


def canonical(value: Any) -> str:
    """`livingmeta.records.canonical_json`, faster (one shared encoder)."""
    return _CANONICAL(value)


def record_content(rec: Record) -> tuple[dict[str, Any], str, str]:
    """(field dict, canonical JSON, content hash) of a record: the hash covers every field of `Record`."""
    data = record_dict(rec)
    text = _CANONICAL(data)
    return data, text, hashlib.sha256(text.encode("utf-8")).hexdigest()  # == Record.content_hash()


def changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The fields whose canonical JSON differs between two versions (sorted)."""
    return sorted(k for k in set(old) | set(new) if canonical_json(old.get(k)) != canonical_json(new.get(k)))


def payload_text(payload: bytes | str) -> str:
    """A raw payload as stored (text; bytes decoded as UTF-8, undecodable bytes replaced)."""
    return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload


def last_sightings(fetched: Iterable[Fetched]) -> list[Fetched]:
    """One entry per record id, the last sighting, in the order of those last sightings."""
    last: dict[str, Fetched] = {}
    for f in fetched:
        rid = f.record.record_id
        last.pop(rid, None)
        last[rid] = f
    return list(last.values())


def mark_deleted(base: Record) -> Record:
    """The record as last known, withdrawn by its source: every field kept, `deleted` set."""
    d = base.to_dict()
    d["deleted"] = True
    return Record.from_dict(d)


def apply_deletions(
    fetched: Sequence[Fetched], deletions: Sequence[Fetched], stored: Mapping[str, Stored]
) -> tuple[list[Fetched], int]:
    """Turn deletion notices into the record they withdraw, marked deleted (see the module's rule).

    Args:
        fetched: the records of the run (last sighting wins as the base of a deletion).
        deletions: deletion notices (the record part gives the id; the payload is the notice as received).
        stored: the warehouse's current versions by record id.
    Returns:
        (fetched followed by the deleted records, so a deletion wins over a sighting of the same run; the
        number of notices for records never stored here, which are dropped).
    """
    out = list(fetched)
    if not deletions:
        return out, 0
    latest = {f.record.record_id: f.record for f in fetched}
    unknown = 0
    for notice in deletions:
        rid = notice.record.record_id
        base = latest.get(rid)
        if base is None and rid in stored:
            base = Record.from_dict(stored[rid].data())
        if base is None:
            # never seen here: nothing to mark, and a bare id would only clutter the screening queue
            unknown += 1
            continue
        out.append(Fetched(mark_deleted(base), notice.payload))
    return out, unknown


def classify(rec: Record, stored: Stored | None) -> Change:
    """New, changed or unchanged against the stored current version (the record's content hash decides)."""
    data, text, h = record_content(rec)
    if stored is not None and stored.content_hash == h:
        return Change(rec, rec.record_id, "unchanged", stored.version, h, data, text, [], False, [])
    return _new_or_changed(rec, rec.record_id, data, text, h, stored)


def _new_or_changed(rec: Record, rid: str, data: dict[str, Any], text: str, h: str, stored: Stored | None) -> Change:
    old = stored.data() if stored is not None else None
    newly_deleted = bool(rec.deleted) and (stored is None or not stored.deleted)
    events = registry_events(old, data)
    if old is None or stored is None:
        return Change(rec, rid, "new", 1, h, data, text, None, newly_deleted, events)
    return Change(
        rec, rid, "changed", stored.version + 1, h, data, text, changed_fields(old, data), newly_deleted, events
    )


def plan_ingest(
    fetched: Sequence[Fetched],
    stored: Mapping[str, Stored],
    latest_payload: Mapping[str, str],
    *,
    n_found: int | None = None,
) -> IngestPlan:
    """Decide what a run stores: `fetched` are the run's records after deletions were applied (duplicates
    allowed), `stored` the warehouse's current versions and `latest_payload` the newest raw payload hash per
    source id. Pure: the same inputs always give the same plan."""
    batch = last_sightings(fetched)
    counts = IngestCounts(found=n_found if n_found is not None else len(batch))
    payloads: list[tuple[str, str, str]] = []
    changes: list[Change] = []
    member_ids: list[str] = []
    for f in batch:
        rec = f.record
        rid = rec.record_id
        member_ids.append(rid)
        text = payload_text(f.payload)
        payload_hash = hash_bytes(text.encode("utf-8"))
        if latest_payload.get(rec.source_id) != payload_hash:
            payloads.append((rec.source_id, text, payload_hash))
        # classify(), with the unchanged case (most records of a nightly run) decided on the hash alone
        data, text_json, h = record_content(rec)
        old = stored.get(rid)
        if old is not None and old.content_hash == h:
            counts.unchanged += 1
            continue
        change = _new_or_changed(rec, rid, data, text_json, h, old)
        if change.kind == "new":
            counts.new += 1
            counts.new_ids.append(rid)
        else:
            counts.changed += 1
            counts.changed_ids.append(rid)
        if change.newly_deleted:
            counts.deleted += 1
        counts.events.extend(
            {"record_id": rid, "kind": kind, "old_value": before, "new_value": after}
            for kind, before, after in change.events
        )
        changes.append(change)
    return IngestPlan(counts, payloads, changes, member_ids)
