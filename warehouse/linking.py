"""Studies in the warehouse: relinking a review's records, people's link decisions, registry suggestions.

`relink` rebuilds `study_links` for one review from the records, the previous links (stable study ids) and
people's decisions (`study_link_decisions`, append-only), all in one transaction. `resolve_study` turns any
identifier people use (study id, record id, PMID, NCT id, DOI) into a study id. `write_registry_suggestions`
turns posted ClinicalTrials.gov results into suggested extraction rows (status 'suggested', origin 'registry',
outcome 'unassigned'), which no analysis uses until a person accepts them.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import duckdb

from livingmeta.linking import LinkDecision, LinkRecord, link_records
from livingmeta.records import find_registry_ids, hash_json, normalise_doi, normalise_registry_id
from livingmeta.sources.ctgov import suggest_extraction_rows
from warehouse.alerts import add_alert
from warehouse.db import rows_as_dicts, transaction

UNASSIGNED_OUTCOME = "unassigned"
REGISTRY_EXTRACTOR = "registry"
_LINKABLE_REFERENCE_TYPES = ("RESULT", "DERIVED")  # BACKGROUND references are other work


class StudyLookupError(ValueError):
    """An identifier that names no study, or several; the message says which and what to give instead."""


def _json(value, default):
    if value is None:
        return default
    return json.loads(value) if isinstance(value, str) else value


def load_link_records(con: duckdb.DuckDBPyConnection, review_id: str) -> list[LinkRecord]:
    """The review's records as linking sees them."""
    out = []
    for r in rows_as_dicts(
        con,
        "SELECT r.record_id, r.source, r.title, r.abstract, r.authors, r.year, r.doi, r.registry_ids, r.extra "
        "FROM review_records rr JOIN records r USING (record_id) WHERE rr.review_id = ? ORDER BY r.record_id",
        [review_id],
    ):
        extra = _json(r["extra"], {}) or {}
        refs = tuple(str(x["pmid"]) for x in extra.get("references") or []
                     if x.get("pmid") and x.get("type") in _LINKABLE_REFERENCE_TYPES)
        alt = tuple(t for t in [extra.get("brief_title")] if t and r["source"] == "ctgov")
        hint = (extra.get("acronym") or extra.get("brief_title")) if r["source"] == "ctgov" else None
        ids = list(_json(r["registry_ids"], []) or [])
        if r["source"] != "ctgov":
            # trial ids a publication mentions only in its title or abstract tie it to the trial too
            ids += [x for x in find_registry_ids(f"{r['title'] or ''} {r['abstract'] or ''}") if x not in ids]
        out.append(LinkRecord(
            record_id=r["record_id"], source=r["source"], title=r["title"] or "",
            authors=tuple(_json(r["authors"], []) or []), year=r["year"], doi=normalise_doi(r["doi"]),
            registry_ids=tuple(ids), references=refs, alt_titles=alt, label_hint=hint))
    return out


def _aliases(con: duckdb.DuckDBPyConnection, review_id: str) -> dict[str, str]:
    return dict(con.execute("SELECT alias, study_id FROM study_aliases WHERE review_id = ?", [review_id]).fetchall())


def _follow(aliases: dict[str, str], study_id: str | None) -> str | None:
    seen = set()
    while study_id in aliases and study_id not in seen:
        seen.add(study_id)
        study_id = aliases[study_id]
    return study_id


def relink(con: duckdb.DuckDBPyConnection, review_id: str, now: dt.datetime, **thresholds: float) -> dict:
    """Rebuild a review's record -> study links (one transaction; safe to re-run).

    Args:
        thresholds: optional `fuzzy_threshold` / `registry_title_threshold` for `livingmeta.linking.link_records`.
    Returns:
        {"records", "studies", "new_studies", "merged", "split", "conflicts", "by_method"}.
    """
    records = load_link_records(con, review_id)
    aliases = _aliases(con, review_id)
    previous = {rid: _follow(aliases, sid) for rid, sid in con.execute(
        "SELECT record_id, study_id FROM study_links WHERE review_id = ?", [review_id]).fetchall()}
    known = [s for (s,) in con.execute(
        "SELECT study_id FROM studies WHERE review_id = ? "
        # created together: a registry study's id (its NCT id) is the one kept when two studies merge
        "ORDER BY created_at, regexp_matches(study_id, '^NCT[0-9]{8}$') DESC, study_id", [review_id]).fetchall()]
    known += sorted(a for a in aliases if a not in known)
    decisions = [LinkDecision(rid, action, _follow(aliases, sid)) for rid, action, sid in con.execute(
        "SELECT record_id, action, study_id FROM study_link_decisions WHERE review_id = ? "
        "ORDER BY decided_at, decision_id", [review_id]).fetchall()]
    result = link_records(records, previous=previous, known_studies=known, decisions=decisions, **thresholds)
    old_links = {r[0]: (r[1], r[2], r[3]) for r in con.execute(
        "SELECT record_id, study_id, method, linked_at FROM study_links WHERE review_id = ?", [review_id]).fetchall()}
    with transaction(con):
        for sid, label in result.new_studies.items():
            con.execute("INSERT INTO studies VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", [review_id, sid, label, now])
        for alias, into, reason in result.merged:
            con.execute("INSERT INTO study_aliases VALUES (?, ?, ?, ?, ?) ON CONFLICT (review_id, alias) DO UPDATE SET "
                        "study_id = excluded.study_id, reason = excluded.reason", [review_id, alias, into, reason, now])
            # suggestions not yet accepted follow their study; accepted data are never moved silently
            con.execute("UPDATE extraction_rows SET study_id = ? WHERE review_id = ? AND study_id = ? "
                        "AND status = 'suggested' AND origin = 'registry'", [into, review_id, alias])
            (n_active,) = con.execute("SELECT count(*) FROM extraction_rows WHERE review_id = ? AND study_id = ? "
                                      "AND status = 'active'", [review_id, alias]).fetchone()
            if n_active:
                add_alert(con, review_id=review_id, kind="study_merged", severity="warning", now=now,
                          title=f"study {alias} was merged into {into}",
                          body=f"New records tie study {alias} to {into} ({reason}). {n_active} extraction row(s) still "
                               f"name {alias}: re-enter them under {into}, or split the records with "
                               f"`livingmeta studies unlink` if the two are different trials.",
                          dedupe_key=f"study_merged:{alias}:{into}")
        con.execute("DELETE FROM study_links WHERE review_id = ?", [review_id])
        con.execute("DELETE FROM study_link_evidence WHERE review_id = ?", [review_id])
        con.execute("DELETE FROM study_link_conflicts WHERE review_id = ?", [review_id])
        rows = []
        for lk in result.links:
            old = old_links.get(lk.record_id)
            linked_at = old[2] if old and old[0] == lk.study_id and old[1] == lk.method else now
            rows.append((review_id, lk.record_id, lk.study_id, lk.method, lk.score, linked_at))
        if rows:
            con.executemany("INSERT INTO study_links VALUES (?, ?, ?, ?, ?, ?)", rows)
            con.executemany("INSERT INTO study_link_evidence VALUES (?, ?, ?)",
                            [(review_id, lk.record_id, lk.evidence) for lk in result.links])
        if result.conflicts:
            con.executemany("INSERT INTO study_link_conflicts VALUES (?, ?, ?, ?, ?, ?)",
                            [(review_id, c.record_id, c.other_record_id, c.method, c.reason, now)
                             for c in result.conflicts])
    by_method: dict[str, int] = {}
    for lk in result.links:
        by_method[lk.method] = by_method.get(lk.method, 0) + 1
    return {
        "records": len(result.links),
        "studies": len({lk.study_id for lk in result.links}),
        "new_studies": len(result.new_studies),
        "merged": [{"study": a, "into": b} for a, b, _ in result.merged],
        "split": [{"study": a, "new_study": b} for a, b in result.split],
        "conflicts": len(result.conflicts),
        "by_method": dict(sorted(by_method.items())),
    }


def resolve_study(con: duckdb.DuckDBPyConnection, review_id: str, identifier: str) -> str | None:
    """The study an identifier names in a review.

    Args:
        identifier: a study id (or a former id merged into another study), a record id ("pubmed:…", "ctgov:…"),
            a PMID, an NCT / ISRCTN / EudraCT id, or a DOI.
    Returns:
        the study id, or None when nothing in the review matches.
    Raises:
        StudyLookupError: the identifier names records of more than one study.
    """
    ident = (identifier or "").strip()
    if not ident:
        return None
    aliases = _aliases(con, review_id)
    if ident in aliases:  # a study merged into another: its records and data now live there
        return _follow(aliases, ident)
    hit = con.execute("SELECT study_id FROM studies WHERE review_id = ? AND study_id = ?", [review_id, ident]).fetchone()
    if hit:
        return hit[0]
    hits = con.execute("SELECT study_id FROM studies WHERE review_id = ? AND lower(study_id) = lower(?)",
                       [review_id, ident]).fetchall()
    if len(hits) == 1:
        return hits[0][0]
    record_ids: list[str] = []
    low = ident.lower()
    if low.startswith(("pubmed:", "ctgov:")):
        src, sid = ident.split(":", 1)
        record_ids = [f"{src.lower()}:{sid.strip().upper() if src.lower() == 'ctgov' else sid.strip()}"]
    elif re.fullmatch(r"(?:pmid:?\s*)?\d{1,9}", low):
        record_ids = ["pubmed:" + re.sub(r"\D", "", ident)]
    studies: set[str] = set()
    if record_ids:
        studies |= {s for (s,) in con.execute(
            "SELECT study_id FROM study_links WHERE review_id = ? AND record_id = ?", [review_id, record_ids[0]]).fetchall()}
    else:
        reg = normalise_registry_id(ident)
        doi = normalise_doi(ident) if not reg else None
        if reg:
            for sid, rid, ids in con.execute(
                "SELECT l.study_id, l.record_id, r.registry_ids FROM study_links l JOIN records r USING (record_id) "
                "WHERE l.review_id = ?", [review_id]).fetchall():
                if reg in (_json(ids, []) or []) or rid == f"ctgov:{reg}":
                    studies.add(sid)
        elif doi:
            studies |= {s for (s,) in con.execute(
                "SELECT DISTINCT l.study_id FROM study_links l JOIN records r USING (record_id) "
                "WHERE l.review_id = ? AND lower(r.doi) = ?", [review_id, doi]).fetchall()}
    if len(studies) > 1:
        raise StudyLookupError(f"{ident!r} names records of {len(studies)} studies in review {review_id} "
                               f"({', '.join(sorted(studies))}); give the study id instead")
    return next(iter(studies), None)


def record_link_decision(con: duckdb.DuckDBPyConnection, review_id: str, record_id: str, action: str,
                         study_id: str | None, decided_by: str, now: dt.datetime, note: str | None = None) -> int:
    """Store a person's link/unlink decision (append-only) and return its id; `relink` applies it."""
    if action not in ("link", "unlink"):
        raise ValueError(f"a link decision is 'link' or 'unlink', not {action!r}")
    (did,) = con.execute(
        "INSERT INTO study_link_decisions (review_id, record_id, action, study_id, decided_by, decided_at, note) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING decision_id",
        [review_id, record_id, action, study_id, decided_by, now, note]).fetchone()
    return int(did)


def review_record_id(con: duckdb.DuckDBPyConnection, review_id: str, identifier: str) -> str:
    """A record of the review named by record id, PMID or NCT id (StudyLookupError when it is not in the review)."""
    ident = identifier.strip()
    if re.fullmatch(r"\d{1,9}", ident):
        candidates = [f"pubmed:{ident}"]
    elif re.fullmatch(r"(?i)nct\d{8}", ident):
        candidates = [f"ctgov:{ident.upper()}"]
    elif ":" in ident:
        src, sid = ident.split(":", 1)
        candidates = [f"{src.lower()}:{sid.upper() if src.lower() == 'ctgov' else sid}"]
    else:
        candidates = [ident]
    for c in candidates:
        if con.execute("SELECT 1 FROM review_records WHERE review_id = ? AND record_id = ?", [review_id, c]).fetchone():
            return c
    raise StudyLookupError(f"record {identifier!r} is not among the records of review {review_id}; "
                           "give a record id such as pubmed:33766992 or ctgov:NCT02637700 (see `livingmeta studies list`)")


def merge_studies(con: duckdb.DuckDBPyConnection, review_id: str, keep: str, other: str, decided_by: str,
                  now: dt.datetime) -> list[str]:
    """A person's merge: every record of `other` is linked to `keep` (stored as link decisions); returns them."""
    if keep == other:
        raise StudyLookupError(f"{keep} and {other} are the same study; nothing to merge")
    moved = [r for (r,) in con.execute(
        "SELECT record_id FROM study_links WHERE review_id = ? AND study_id = ? ORDER BY record_id",
        [review_id, other]).fetchall()]
    with transaction(con):
        for rid in moved:
            record_link_decision(con, review_id, rid, "link", keep, decided_by, now, note=f"merge {other} into {keep}")
        con.execute("INSERT INTO study_aliases VALUES (?, ?, ?, ?, ?) ON CONFLICT (review_id, alias) DO UPDATE SET "
                    "study_id = excluded.study_id, reason = excluded.reason",
                    [review_id, other, keep, f"merged into {keep} by {decided_by}", now])
        con.execute("UPDATE extraction_rows SET study_id = ? WHERE review_id = ? AND study_id = ? "
                    "AND status = 'suggested' AND origin = 'registry'", [keep, review_id, other])
    return moved


def list_studies(con: duckdb.DuckDBPyConnection, review_id: str) -> list[dict]:
    """Each study of a review with its records, how each was linked and why."""
    rows = rows_as_dicts(
        con,
        "SELECT l.study_id, s.label, l.record_id, r.source, r.year, r.title, l.method, l.score, e.evidence "
        "FROM study_links l JOIN records r USING (record_id) "
        "LEFT JOIN studies s ON s.review_id = l.review_id AND s.study_id = l.study_id "
        "LEFT JOIN study_link_evidence e ON e.review_id = l.review_id AND e.record_id = l.record_id "
        "WHERE l.review_id = ? ORDER BY l.study_id, r.source DESC, l.record_id", [review_id])
    out: dict[str, dict] = {}
    for r in rows:
        st = out.setdefault(r["study_id"], {"study_id": r["study_id"], "label": r["label"] or r["study_id"], "records": []})
        st["records"].append({k: r[k] for k in ("record_id", "source", "year", "title", "method", "score", "evidence")})
    return list(out.values())


def link_conflicts(con: duckdb.DuckDBPyConnection, review_id: str) -> list[dict]:
    """Links the last linking run refused, for a person to check."""
    return rows_as_dicts(con, "SELECT record_id, other_record_id, method, reason FROM study_link_conflicts "
                              "WHERE review_id = ? ORDER BY record_id, other_record_id", [review_id])


def write_registry_suggestions(con: duckdb.DuckDBPyConnection, review_id: str, now: dt.datetime) -> dict:
    """Suggested extraction rows from the posted results of the review's registry records (idempotent).

    Each registry record version is read once: its latest raw payload is parsed by
    `livingmeta.sources.ctgov.suggest_extraction_rows`; rows already suggested (same content) are not added again.
    When a later version re-posts or corrects results, waiting suggestions of earlier versions whose numbers it no
    longer carries become 'superseded' (accepted ones stay, with a warning alert).
    Returns:
        {"records_with_results", "records_read", "suggested", "retired", "accepted_changed", "problems" (count),
         "problem_lines" (first 20)}.
    """
    targets = con.execute(
        "SELECT l.record_id, l.study_id, r.source_id, r.version FROM study_links l JOIN records r USING (record_id) "
        "WHERE l.review_id = ? AND r.source = 'ctgov' AND coalesce(json_extract(r.extra, '$.has_results')::BOOLEAN, false) "
        "ORDER BY l.record_id", [review_id]).fetchall()
    summary = {"records_with_results": len(targets), "records_read": 0, "suggested": 0, "retired": 0,
               "accepted_changed": 0, "problems": 0, "problem_lines": []}
    with transaction(con):
        for record_id, study_id, source_id, version in targets:
            # suggestions follow the study their record is linked to now
            con.execute(
                "UPDATE extraction_rows SET study_id = ? WHERE review_id = ? AND status = 'suggested' AND origin = 'registry' "
                "AND study_id <> ? AND row_id IN (SELECT row_id FROM registry_suggestions WHERE review_id = ? AND record_id = ?)",
                [study_id, review_id, study_id, review_id, record_id])
            done = con.execute("SELECT 1 FROM registry_results_reads WHERE review_id = ? AND record_id = ? "
                               "AND record_version = ?", [review_id, record_id, version]).fetchone()
            if done:
                continue
            raw = con.execute("SELECT payload FROM raw_records WHERE source = 'ctgov' AND source_id = ? "
                              "ORDER BY fetched_at DESC, raw_id DESC LIMIT 1", [source_id]).fetchone()
            if not raw:
                continue
            summary["records_read"] += 1
            try:
                rows, problems = suggest_extraction_rows(json.loads(raw[0]))
            except (ValueError, TypeError, AttributeError) as e:
                rows, problems = [], [f"{record_id}: stored registry payload could not be read for results ({e})"]
            summary["problems"] += len(problems)
            summary["problem_lines"].extend(problems[: max(0, 20 - len(summary["problem_lines"]))])
            added = 0
            current_keys = []
            for row in rows:
                details = row.pop("registry")
                key = hash_json({"review": review_id, "record": record_id, "row": row})
                current_keys.append(key)
                if con.execute("SELECT 1 FROM extraction_rows WHERE review_id = ? AND import_key = ? LIMIT 1",
                               [review_id, key]).fetchone():
                    continue
                (row_id,) = con.execute(
                    "INSERT INTO extraction_rows (review_id, study_id, outcome_id, arm, group_label, events, total, mean, "
                    "sd, n, estimate, se, ci_lower, ci_upper, scale, extractor, extracted_on, source_ref, origin, status, "
                    "import_key, notes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                    "'registry', 'suggested', ?, ?, ?) RETURNING row_id",
                    [review_id, study_id, UNASSIGNED_OUTCOME, row["arm"], row.get("group_label"), row.get("events"),
                     row.get("total"), row.get("mean"), row.get("sd"), row.get("n"), row.get("estimate"), row.get("se"),
                     row.get("ci_lower"), row.get("ci_upper"), row.get("scale"), REGISTRY_EXTRACTOR, now.date(),
                     row.get("source_ref"), key, row.get("notes"), now]).fetchone()
                con.execute(
                    "INSERT INTO registry_suggestions (row_id, review_id, record_id, record_version, outcome_title, "
                    "outcome_type, time_frame, units, param_type, group_id, group_title, ci_level, problems, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [row_id, review_id, record_id, version, details["outcome_title"], details["outcome_type"],
                     details["time_frame"], details["units"], details["param_type"], details["group_id"],
                     details["group_title"], details["ci_level"], json.dumps(details["problems"]), now])
                summary["suggested"] += 1
                added += 1
            if rows or not problems:
                # a payload we could not read at all retires nothing: its old numbers may still hold
                retired = _retire_stale_suggestions(con, review_id, record_id, version, current_keys, now)
                summary["retired"] += retired["retired"]
                summary["accepted_changed"] += retired["accepted_changed"]
            con.execute("INSERT INTO registry_results_reads VALUES (?, ?, ?, ?, ?, ?)",
                        [review_id, record_id, version, now, added, json.dumps(problems)])
    return summary


def _retire_stale_suggestions(con: duckdb.DuckDBPyConnection, review_id: str, record_id: str, version: int,
                              current_keys: list[str], now: dt.datetime) -> dict:
    """Suggestions from earlier versions of a registry record whose numbers the new version no longer carries.

    Waiting ones become 'superseded' (so nobody accepts numbers the registry has replaced); ones a person
    already accepted stay as they are, and people get one warning alert naming them, since only a person may
    change accepted data.
    """
    stale = con.execute(
        "SELECT e.row_id, e.status, EXISTS (SELECT 1 FROM extraction_rows a WHERE a.derived_from = e.row_id) AS accepted "
        "FROM registry_suggestions s JOIN extraction_rows e USING (row_id) "
        "WHERE s.review_id = ? AND s.record_id = ? AND s.record_version < ? AND s.retired_at IS NULL "
        "AND NOT list_contains(?, e.import_key) ORDER BY e.row_id",
        [review_id, record_id, version, current_keys]).fetchall()
    if not stale:
        return {"retired": 0, "accepted_changed": 0}
    ids = [r[0] for r in stale]
    con.execute("UPDATE registry_suggestions SET retired_at = ?, retired_by_version = ? "
                "WHERE review_id = ? AND list_contains(?, row_id)", [now, version, review_id, ids])
    waiting = [rid for rid, status, accepted in stale if status == "suggested" and not accepted]
    if waiting:
        con.execute("UPDATE extraction_rows SET status = 'superseded' WHERE review_id = ? AND list_contains(?, row_id)",
                    [review_id, waiting])
    accepted = [rid for rid, _, acc in stale if acc]
    if accepted:
        add_alert(con, review_id=review_id, kind="registry_results_changed", severity="warning",
                  title=f"{record_id}: registry results changed for accepted rows",
                  body=(f"Version {version} of {record_id} no longer reports the numbers of registry suggestion row(s) "
                        f"{', '.join(map(str, accepted))}, which were accepted into the extraction data. Check the "
                        "registry record and correct the accepted rows if needed (`livingmeta extract suggestions`)."),
                  now=now, dedupe_key=f"registry_results_changed:{review_id}:{record_id}:{version}")
    return {"retired": len(waiting), "accepted_changed": len(accepted)}
