"""Studies in the warehouse: relinking a review's records, people's link decisions, registry suggestions.

`relink` brings `study_links` of one review up to date from the records, the previous links (stable study ids)
and people's decisions (`study_link_decisions`, append-only), all in one transaction; it relinks only what new,
changed, gone or re-decided records can affect (see "incremental linking" below). `resolve_study` turns any
identifier people use (study id, record id, PMID, NCT id, DOI) into a study id. `write_registry_suggestions`
turns posted ClinicalTrials.gov results into suggested extraction rows (status 'suggested', origin 'registry',
outcome 'unassigned'), which no analysis uses until a person accepts them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import inspect
import json
import re

import duckdb
from rapidfuzz import fuzz

from livingmeta.linking import (
    FUZZY_THRESHOLD,
    MIN_TITLE_CHARS,
    REGISTRY_TITLE_THRESHOLD,
    LinkDecision,
    Linking,
    LinkRecord,
    _content_key,
    _similar_titles,
    _sorted_tokens,
    author_surname,
    link_records,
    normalise_title,
)
from livingmeta.records import find_registry_ids, hash_json, normalise_doi, normalise_registry_id
from livingmeta.sources.ctgov import suggest_extraction_rows
from warehouse.alerts import add_alert
from warehouse.db import query, rows_as_dicts, transaction
from warehouse.lazy import pandas as pd  # loads on first use

UNASSIGNED_OUTCOME = "unassigned"
REGISTRY_EXTRACTOR = "registry"
_LINKABLE_REFERENCE_TYPES = ("RESULT", "DERIVED")  # BACKGROUND references are other work


class StudyLookupError(ValueError):
    """An identifier that names no study, or several; the message says which and what to give instead."""


def _json(value, default):
    if value is None:
        return default
    return json.loads(value) if isinstance(value, str) else value


def load_link_records(
    con: duckdb.DuckDBPyConnection, review_id: str, record_ids: list[str] | None = None
) -> list[LinkRecord]:
    """The review's records as linking sees them (only `record_ids` when given), ordered by record id."""
    sql = query("linking_records")
    if record_ids is None:
        return _link_records_of(con, sql.format(join=""), [review_id])
    with _registered(con, "_link_ids", pd.DataFrame({"record_id": list(record_ids)}, dtype=object)):
        return _link_records_of(con, sql.format(join="JOIN _link_ids USING (record_id)"), [review_id])


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list, size: int = 10_000):
    """A query's rows as dicts, read `size` at a time (a first load's 200k rows are never all held as dicts)."""
    cur = con.execute(sql, params)
    cols = [d[0] for d in cur.description]
    while chunk := cur.fetchmany(size):
        for row in chunk:
            yield dict(zip(cols, row))


def _link_records_of(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> list[LinkRecord]:
    out = []
    for r in _rows(con, sql, params):
        extra = _json(r["extra"], {}) or {}
        refs = tuple(
            str(x["pmid"])
            for x in extra.get("references") or []
            if x.get("pmid") and x.get("type") in _LINKABLE_REFERENCE_TYPES
        )
        alt = tuple(t for t in [extra.get("brief_title")] if t and r["source"] == "ctgov")
        hint = (extra.get("acronym") or extra.get("brief_title")) if r["source"] == "ctgov" else None
        ids = list(_json(r["registry_ids"], []) or [])
        if r["may_name_trials"]:  # the query reads the abstract only then (otherwise no id can be found)
            # trial ids a publication mentions only in its title or abstract tie it to the trial too
            ids += [x for x in find_registry_ids(f"{r['title'] or ''} {r['abstract'] or ''}") if x not in ids]
        out.append(
            LinkRecord(
                record_id=r["record_id"],
                source=r["source"],
                title=r["title"] or "",
                authors=tuple(_json(r["authors"], []) or []),
                year=r["year"],
                doi=normalise_doi(r["doi"]),
                registry_ids=tuple(ids),
                references=refs,
                alt_titles=alt,
                label_hint=hint,
            )
        )
    return out


@contextlib.contextmanager
def _registered(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame):
    """A DataFrame visible to SQL under `name` for the duration (set-based statements scan it directly)."""
    con.complete()  # a result some helper left half-read (fetchone) would refuse the registration
    con.register(name, frame)
    try:
        yield name
    finally:
        con.unregister(name)


def _aliases(con: duckdb.DuckDBPyConnection, review_id: str) -> dict[str, str]:
    return dict(con.execute("SELECT alias, study_id FROM study_aliases WHERE review_id = ?", [review_id]).fetchall())


def _follow(aliases: dict[str, str], study_id: str | None) -> str | None:
    seen = set()
    while study_id in aliases and study_id not in seen:
        seen.add(study_id)
        study_id = aliases[study_id]
    return study_id


# ------------------------------------------------------------------------------ incremental linking
#
# `link_records` is a whole-review algorithm, but its outcome for a record depends only on the records it is
# tied to by a candidate edge (a shared trial id, DOI, listed PMID, or a title match), transitively, and on the
# other records of the studies they were in. So a run relinks the records that are new, changed, gone or named
# by a new decision, closed under "can be tied to" and "was in the same study as", by calling `link_records` on
# that subset with the whole review's study ids and decisions: the result for the subset is the one relinking
# everything would give, and every other record keeps its link (proved against full relinking cycle by cycle
# in tests/test_incremental_linking.py). The keys that find "can be tied to" are necessary conditions of the
# rules (same first author for publication titles, a title similarity at least BLOCK_MARGIN below the threshold or
# the same content words),
# so they never miss a tie the rules would make; a change in the rules' code or thresholds relinks everything.

KEYS_VERSION = "2"
BLOCK_MARGIN = 5.0  # title similarity (0-100) below the thresholds that still counts as "could be tied"


def _rules_fingerprint(thresholds: dict) -> str:
    import livingmeta.linking as rules

    src = inspect.getsource(rules) + inspect.getsource(load_link_records) + KEYS_VERSION
    return hash_json({"code": hashlib.sha256(src.encode()).hexdigest(), "thresholds": sorted(thresholds.items())})


def _link_keys(records: list[LinkRecord]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """study_link_inputs and study_link_keys rows (without review/version) of some records."""
    inputs: dict[str, list] = {"record_id": [], "source": [], "surname": [], "year": [], "title_key": [], "lonely": []}
    keys: dict[str, list] = {"record_id": [], "kind": [], "key": []}

    def key(rid: str, kind: str, value: str) -> None:
        keys["record_id"].append(rid)
        keys["kind"].append(kind)
        keys["key"].append(value)

    for r in records:
        pub = r.source != "ctgov"
        ids = set(r.registry_ids)
        if not pub:
            ids.add(r.record_id.split(":", 1)[1])
        for x in sorted(ids):
            key(r.record_id, "reg", x)
        if r.doi:
            key(r.record_id, "doi", r.doi.lower())
        comparable = len(normalise_title(r.title)) >= MIN_TITLE_CHARS
        if pub:
            key(r.record_id, "ref", r.record_id)
        else:
            for pmid in r.references:
                key(r.record_id, "ref", f"pubmed:{pmid}")
            for t in sorted(
                {_sorted_tokens(t) for t in (r.title, *r.alt_titles) if len(normalise_title(t)) >= MIN_TITLE_CHARS}
            ):
                key(r.record_id, "rtitle", t)
        surname = author_surname(r.authors[0]).lower() if pub and comparable and r.authors else None
        content = _content_key(r.title) if surname else ()
        if len(content) >= 4:  # the rules also compare same-author titles with the same content words
            key(r.record_id, "content", surname + "\x1f" + " ".join(content))
        inputs["record_id"].append(r.record_id)
        inputs["source"].append(r.source)
        inputs["surname"].append(surname or None)
        inputs["year"].append(r.year)
        inputs["title_key"].append(_sorted_tokens(r.title) if pub and comparable else None)
        inputs["lonely"].append(bool(pub and comparable and not any(x.startswith("NCT") for x in r.registry_ids)))
    inp = pd.DataFrame(inputs)
    inp["year"] = inp["year"].astype("Int64")
    return inp, pd.DataFrame(keys, dtype=object)


def _store_keys(
    con: duckdb.DuckDBPyConnection, review_id: str, records: list[LinkRecord], gone: list[str], full: bool
) -> None:
    """Replace the inputs and keys of these records (all of the review's when `full`); drop those of gone ones."""
    inp, keys = _link_keys(records)
    if full:
        con.execute("DELETE FROM study_link_inputs WHERE review_id = ?", [review_id])
        con.execute("DELETE FROM study_link_keys WHERE review_id = ?", [review_id])
    else:
        ids = pd.DataFrame({"record_id": [r.record_id for r in records] + list(gone)}, dtype=object)
        with _registered(con, "_link_touched", ids):
            con.execute(
                "DELETE FROM study_link_inputs WHERE review_id = ? AND record_id IN "
                "(SELECT record_id FROM _link_touched)",
                [review_id],
            )
            con.execute(
                "DELETE FROM study_link_keys WHERE review_id = ? AND record_id IN "
                "(SELECT record_id FROM _link_touched)",
                [review_id],
            )
    with _registered(con, "_link_inputs", inp), _registered(con, "_link_keys", keys):
        con.execute(query("linking_store_inputs"), [review_id])
        con.execute("INSERT INTO study_link_keys SELECT ?, record_id, kind, key FROM _link_keys", [review_id])


def _dirty(con: duckdb.DuckDBPyConnection, review_id: str, last_decision_id: int | None) -> tuple[list[str], list[str]]:
    """(records new, changed or named by a decision since the last run; records no longer in the review)."""
    rows = con.execute(query("linking_dirty"), [review_id, review_id, review_id, last_decision_id or 0]).fetchall()
    present = sorted({rid for rid, gone in rows if not gone})
    gone = sorted({rid for rid, g in rows if g} - set(present))
    return present, gone


def _neighbours(
    con: duckdb.DuckDBPyConnection, review_id: str, frontier: list[str], cutoffs: tuple[float, float]
) -> set[str]:
    """Records that can be tied to a frontier record (shared key, similar title) or share a study with one."""
    fuzzy_cut, registry_cut = cutoffs
    out: set[str] = set()
    with _registered(con, "_link_frontier", pd.DataFrame({"record_id": frontier}, dtype=object)):
        out.update(r for (r,) in con.execute(query("linking_neighbours"), [review_id, review_id]).fetchall())
        # same first author, years at most 1 apart: compare the titles as the rules do
        for _a, b, ta, tb in con.execute(query("linking_same_author"), [review_id]).fetchall():
            if fuzz.ratio(ta, tb, score_cutoff=fuzzy_cut):
                out.add(b)
        lonely = con.execute(query("linking_frontier_titles"), [review_id]).fetchall()
        reg_titles = con.execute(query("linking_frontier_registry_titles"), [review_id]).fetchall()
    if lonely:  # a publication naming no trial id vs every registry title of the review
        cand = con.execute(
            "SELECT record_id, key FROM study_link_keys WHERE review_id = ? AND kind = 'rtitle'", [review_id]
        ).fetchall()
        out.update(_title_hits([t for _, t in lonely], cand, registry_cut))
    if reg_titles:  # a registry entry vs every publication naming no trial id
        cand = con.execute(
            "SELECT record_id, title_key FROM study_link_inputs WHERE review_id = ? AND lonely", [review_id]
        ).fetchall()
        out.update(_title_hits([t for _, t in reg_titles], cand, registry_cut))
    return out


def _title_hits(titles: list[str], candidates: list[tuple[str, str]], cutoff: float) -> set[str]:
    # compared by length band (a pair whose lengths alone rule out the cutoff is never scored): the candidates
    # are every registry title or publication of the review, so this is the part of a nightly that grows
    if not titles or not candidates:
        return set()
    return {candidates[j][0] for _, j, _ in _similar_titles(titles, [t for _, t in candidates], cutoff)}


def _closure(
    con: duckdb.DuckDBPyConnection, review_id: str, seeds: list[str], cutoffs: tuple[float, float]
) -> set[str]:
    subset, frontier = set(seeds), sorted(seeds)
    while frontier:
        found = _neighbours(con, review_id, frontier, cutoffs) - subset
        subset |= found
        frontier = sorted(found)
    return subset


def relink(
    con: duckdb.DuckDBPyConnection, review_id: str, now: dt.datetime, *, full: bool = False, **thresholds: float
) -> dict:
    """Bring a review's record -> study links up to date (one transaction; safe to re-run).

    Only the records that are new, changed, gone or named by a new link decision are relinked, together with
    the records they can be tied to and the other records of their studies (see the notes above); the result
    is the one relinking every record gives. The whole review is relinked on the first run, when the linking
    rules or thresholds changed, or when `full` is true.

    Args:
        full: relink every record of the review.
        thresholds: optional `fuzzy_threshold` / `registry_title_threshold` for `livingmeta.linking.link_records`.
    Returns:
        {"records", "studies", "new_studies", "merged", "split", "conflicts", "by_method", "relinked", "mode"}.
    """
    rules = _rules_fingerprint(thresholds)
    state = next(
        iter(
            con.execute(
                "SELECT rules, last_decision_id FROM study_link_state WHERE review_id = ?", [review_id]
            ).fetchall()
        ),
        None,
    )
    full = full or state is None or state[0] != rules
    ((last_decision,),) = con.execute(
        "SELECT max(decision_id) FROM study_link_decisions WHERE review_id = ?", [review_id]
    ).fetchall()
    with transaction(con):
        if full:
            records = load_link_records(con, review_id)
            subset = None
            _store_keys(con, review_id, records, [], full=True)
        else:
            dirty, gone = _dirty(con, review_id, state[1])
            if not dirty and not gone:
                con.execute(
                    "UPDATE study_link_state SET last_decision_id = ?, linked_at = ? WHERE review_id = ?",
                    [last_decision, now, review_id],
                )
                return _summary(con, review_id, Linking(), 0, "incremental")
            cutoffs = (
                thresholds.get("fuzzy_threshold", FUZZY_THRESHOLD) - BLOCK_MARGIN,
                thresholds.get("registry_title_threshold", REGISTRY_TITLE_THRESHOLD) - BLOCK_MARGIN,
            )
            # ties the changed records had before they changed count too: those records may now link differently
            seeds = set(dirty) | set(gone) | _neighbours(con, review_id, dirty + gone, cutoffs)
            changed = load_link_records(con, review_id, dirty)
            _store_keys(con, review_id, changed, gone, full=False)
            subset = _closure(con, review_id, sorted(seeds), cutoffs)
            records = load_link_records(con, review_id, sorted(subset))
        result = _link(con, review_id, records, thresholds)
        _write(con, review_id, now, result, subset)
        con.execute(query("linking_state_upsert"), [review_id, rules, last_decision, now])
    return _summary(con, review_id, result, len(records), "full" if full else "incremental")


def link_review(con: duckdb.DuckDBPyConnection, review_id: str, now: dt.datetime) -> dict:
    """The cycle's linking step in one transaction: `relink` (people's decisions win), then the suggested
    extraction rows of the registry records' posted results (`write_registry_suggestions`).

    Returns:
        `relink`'s summary with the suggestions' summary under "suggestions".
    """
    with transaction(con):
        summary = relink(con, review_id, now)
        summary["suggestions"] = write_registry_suggestions(con, review_id, now)
    return summary


def _link(con: duckdb.DuckDBPyConnection, review_id: str, records: list[LinkRecord], thresholds: dict) -> Linking:
    """`link_records` over these records with the review's previous links, study ids and decisions."""
    aliases = _aliases(con, review_id)
    previous = {
        rid: _follow(aliases, sid)
        for rid, sid in con.execute(
            "SELECT record_id, study_id FROM study_links WHERE review_id = ?", [review_id]
        ).fetchall()
    }
    known = [s for (s,) in con.execute(query("linking_studies_in_order"), [review_id]).fetchall()]
    known += sorted(a for a in aliases if a not in set(known))
    decisions = [
        LinkDecision(rid, action, _follow(aliases, sid))
        for rid, action, sid in con.execute(
            "SELECT record_id, action, study_id FROM study_link_decisions WHERE review_id = ? "
            "ORDER BY decided_at, decision_id",
            [review_id],
        ).fetchall()
    ]
    result = link_records(records, previous=previous, known_studies=known, decisions=decisions, **thresholds)
    # A study left empty because a person split its only records off was not merged into the study they got:
    # recording it as an alias would make the person's "not in <study>" follow the alias to the new study and split
    # the records off again on every run (a new study each time).
    latest = {d.record_id: d for d in decisions}
    moved: dict[tuple[str, str], list[str]] = {}
    for lk in result.links:
        p = previous.get(lk.record_id)
        if p and p != lk.study_id:
            moved.setdefault((p, lk.study_id), []).append(lk.record_id)
    result.merged = [
        (old, into, why)
        for old, into, why in result.merged
        if not all(
            latest.get(m) is not None and latest[m].action == "unlink" and latest[m].study_id == old
            for m in moved.get((old, into), [None])
        )
    ]
    return result


def _write(
    con: duckdb.DuckDBPyConnection, review_id: str, now: dt.datetime, result: Linking, subset: set[str] | None
) -> None:
    """Store a linking result: every row of the review (subset None) or those of the relinked records."""
    if result.new_studies:
        studies = pd.DataFrame(
            {"study_id": list(result.new_studies), "label": list(result.new_studies.values())}, dtype=object
        )
        with _registered(con, "_link_studies", studies):
            con.execute(
                "INSERT INTO studies SELECT ?, study_id, label, ? FROM _link_studies ON CONFLICT DO NOTHING",
                [review_id, now],
            )
    for alias, into, reason in result.merged:
        con.execute(query("linking_alias_upsert"), [review_id, alias, into, reason, now])
        # suggestions not yet accepted follow their study; accepted data are never moved silently
        con.execute(query("linking_move_suggestions"), [into, review_id, alias])
        ((n_active,),) = con.execute(
            "SELECT count(*) FROM extraction_rows WHERE review_id = ? AND study_id = ? AND status = 'active'",
            [review_id, alias],
        ).fetchall()
        if n_active:
            add_alert(
                con,
                review_id=review_id,
                kind="study_merged",
                severity="warning",
                now=now,
                title=f"study {alias} was merged into {into}",
                body=f"New records tie study {alias} to {into} ({reason}). {n_active} extraction row(s) still "
                f"name {alias}: re-enter them under {into}, or split the records with "
                f"`livingmeta studies unlink` if the two are different trials.",
                dedupe_key=f"study_merged:{alias}:{into}",
            )
    links = pd.DataFrame(
        {
            "record_id": [lk.record_id for lk in result.links],
            "study_id": [lk.study_id for lk in result.links],
            "method": [lk.method for lk in result.links],
            "score": pd.array([lk.score for lk in result.links], dtype="Float64"),
            "evidence": [lk.evidence for lk in result.links],
        }
    )
    links = links.astype({"record_id": object, "study_id": object, "method": object, "evidence": object})
    conflicts = pd.DataFrame(
        {
            "record_id": [c.record_id for c in result.conflicts],
            "other_record_id": [c.other_record_id for c in result.conflicts],
            "method": [c.method for c in result.conflicts],
            "reason": [c.reason for c in result.conflicts],
        },
        dtype=object,
    )
    touched = pd.DataFrame({"record_id": sorted(subset) if subset is not None else []}, dtype=object)
    with (
        _registered(con, "_link_new", links),
        _registered(con, "_link_conflicts", conflicts),
        _registered(con, "_link_touched", touched),
    ):
        # one set-based statement per table: the kept linked_at of unchanged links comes from the old rows
        links_sql, conflicts_sql = query("linking_write").split("\n;\n")
        con.execute(links_sql, [review_id, now, review_id])
        con.execute(conflicts_sql, [review_id, now, review_id])
        scope = "" if subset is None else " AND record_id IN (SELECT record_id FROM _link_touched)"
        con.execute("DELETE FROM study_links WHERE review_id = ?" + scope, [review_id])
        con.execute("DELETE FROM study_link_evidence WHERE review_id = ?" + scope, [review_id])
        con.execute(
            "DELETE FROM study_link_conflicts WHERE review_id = ?"
            + (
                ""
                if subset is None
                else " AND (record_id IN (SELECT record_id FROM _link_touched) "
                "OR other_record_id IN (SELECT record_id FROM _link_touched))"
            ),
            [review_id],
        )
        con.execute(
            "INSERT INTO study_links SELECT review_id, record_id, study_id, method, score, linked_at FROM _link_rows"
        )
        con.execute("INSERT INTO study_link_evidence SELECT ?, record_id, evidence FROM _link_new", [review_id])
        con.execute("INSERT INTO study_link_conflicts SELECT * FROM _link_conflict_rows")
        con.execute("DROP TABLE _link_rows")
        con.execute("DROP TABLE _link_conflict_rows")


def _summary(con: duckdb.DuckDBPyConnection, review_id: str, result: Linking, relinked: int, mode: str) -> dict:
    ((records, studies),) = con.execute(
        "SELECT count(*), count(DISTINCT study_id) FROM study_links WHERE review_id = ?", [review_id]
    ).fetchall()
    ((conflicts,),) = con.execute(
        "SELECT count(*) FROM study_link_conflicts WHERE review_id = ?", [review_id]
    ).fetchall()
    by_method = dict(
        con.execute(
            "SELECT method, count(*) FROM study_links WHERE review_id = ? GROUP BY method ORDER BY method", [review_id]
        ).fetchall()
    )
    return {
        "records": int(records),
        "studies": int(studies),
        "new_studies": len(result.new_studies),
        "merged": [{"study": a, "into": b} for a, b, _ in result.merged],
        "split": [{"study": a, "new_study": b} for a, b in result.split],
        "conflicts": int(conflicts),
        "by_method": {k: int(v) for k, v in by_method.items()},
        "relinked": relinked,
        "mode": mode,
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
    hit = con.execute(
        "SELECT study_id FROM studies WHERE review_id = ? AND study_id = ?", [review_id, ident]
    ).fetchone()
    if hit:
        return hit[0]
    hits = con.execute(
        "SELECT study_id FROM studies WHERE review_id = ? AND lower(study_id) = lower(?)", [review_id, ident]
    ).fetchall()
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
        studies |= {
            s
            for (s,) in con.execute(
                "SELECT study_id FROM study_links WHERE review_id = ? AND record_id = ?", [review_id, record_ids[0]]
            ).fetchall()
        }
    else:
        reg = normalise_registry_id(ident)
        doi = normalise_doi(ident) if not reg else None
        if reg:
            for sid, rid, ids in con.execute(
                "SELECT l.study_id, l.record_id, r.registry_ids FROM study_links l JOIN records r USING (record_id) "
                "WHERE l.review_id = ?",
                [review_id],
            ).fetchall():
                if reg in (_json(ids, []) or []) or rid == f"ctgov:{reg}":
                    studies.add(sid)
        elif doi:
            studies |= {s for (s,) in con.execute(query("linking_studies_by_doi"), [review_id, doi]).fetchall()}
    if len(studies) > 1:
        raise StudyLookupError(
            f"{ident!r} names records of {len(studies)} studies in review {review_id} "
            f"({', '.join(sorted(studies))}); give the study id instead"
        )
    return next(iter(studies), None)


def record_link_decision(
    con: duckdb.DuckDBPyConnection,
    review_id: str,
    record_id: str,
    action: str,
    study_id: str | None,
    decided_by: str,
    now: dt.datetime,
    note: str | None = None,
) -> int:
    """Store a person's link/unlink decision (append-only) and return its id; `relink` applies it."""
    if action not in ("link", "unlink"):
        raise ValueError(f"a link decision is 'link' or 'unlink', not {action!r}")
    (did,) = con.execute(
        query("linking_decision_insert"), [review_id, record_id, action, study_id, decided_by, now, note]
    ).fetchone()
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
    raise StudyLookupError(
        f"record {identifier!r} is not among the records of review {review_id}; "
        "give a record id such as pubmed:33766992 or ctgov:NCT02637700 (see `livingmeta studies list`)"
    )


def merge_studies(
    con: duckdb.DuckDBPyConnection, review_id: str, keep: str, other: str, decided_by: str, now: dt.datetime
) -> list[str]:
    """A person's merge: every record of `other` is linked to `keep` (stored as link decisions); returns them."""
    if keep == other:
        raise StudyLookupError(f"{keep} and {other} are the same study; nothing to merge")
    moved = [
        r
        for (r,) in con.execute(
            "SELECT record_id FROM study_links WHERE review_id = ? AND study_id = ? ORDER BY record_id",
            [review_id, other],
        ).fetchall()
    ]
    with transaction(con):
        for rid in moved:
            record_link_decision(con, review_id, rid, "link", keep, decided_by, now, note=f"merge {other} into {keep}")
        con.execute(query("linking_alias_upsert"), [review_id, other, keep, f"merged into {keep} by {decided_by}", now])
        con.execute(query("linking_move_suggestions"), [keep, review_id, other])
    return moved


def list_studies(con: duckdb.DuckDBPyConnection, review_id: str) -> list[dict]:
    """Each study of a review with its records, how each was linked and why."""
    rows = rows_as_dicts(con, query("linking_list_studies"), [review_id])
    out: dict[str, dict] = {}
    for r in rows:
        st = out.setdefault(
            r["study_id"], {"study_id": r["study_id"], "label": r["label"] or r["study_id"], "records": []}
        )
        st["records"].append({k: r[k] for k in ("record_id", "source", "year", "title", "method", "score", "evidence")})
    return list(out.values())


def link_conflicts(con: duckdb.DuckDBPyConnection, review_id: str) -> list[dict]:
    """Links the last linking run refused, for a person to check."""
    return rows_as_dicts(con, query("linking_conflicts"), [review_id])


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
    targets = con.execute(query("linking_registry_results_records"), [review_id]).fetchall()
    summary = {
        "records_with_results": len(targets),
        "records_read": 0,
        "suggested": 0,
        "retired": 0,
        "accepted_changed": 0,
        "problems": 0,
        "problem_lines": [],
    }
    with transaction(con):
        for record_id, study_id, source_id, version in targets:
            # suggestions follow the study their record is linked to now
            con.execute(
                query("linking_suggestions_follow_study"), [study_id, review_id, study_id, review_id, record_id]
            )
            done = con.execute(
                "SELECT 1 FROM registry_results_reads WHERE review_id = ? AND record_id = ? AND record_version = ?",
                [review_id, record_id, version],
            ).fetchone()
            if done:
                continue
            raw = con.execute(
                "SELECT payload FROM raw_records WHERE source = 'ctgov' AND source_id = ? "
                "ORDER BY fetched_at DESC, raw_id DESC LIMIT 1",
                [source_id],
            ).fetchone()
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
                if con.execute(
                    "SELECT 1 FROM extraction_rows WHERE review_id = ? AND import_key = ? LIMIT 1", [review_id, key]
                ).fetchone():
                    continue
                (row_id,) = con.execute(
                    query("linking_suggestion_row_insert"),
                    [
                        review_id,
                        study_id,
                        UNASSIGNED_OUTCOME,
                        row["arm"],
                        row.get("group_label"),
                        row.get("events"),
                        row.get("total"),
                        row.get("mean"),
                        row.get("sd"),
                        row.get("n"),
                        row.get("estimate"),
                        row.get("se"),
                        row.get("ci_lower"),
                        row.get("ci_upper"),
                        row.get("scale"),
                        REGISTRY_EXTRACTOR,
                        now.date(),
                        row.get("source_ref"),
                        key,
                        row.get("notes"),
                        now,
                    ],
                ).fetchone()
                con.execute(
                    query("linking_suggestion_insert"),
                    [
                        row_id,
                        review_id,
                        record_id,
                        version,
                        details["outcome_title"],
                        details["outcome_type"],
                        details["time_frame"],
                        details["units"],
                        details["param_type"],
                        details["group_id"],
                        details["group_title"],
                        details["ci_level"],
                        json.dumps(details["problems"]),
                        now,
                    ],
                )
                summary["suggested"] += 1
                added += 1
            if rows or not problems:
                # a payload we could not read at all retires nothing: its old numbers may still hold
                retired = _retire_stale_suggestions(con, review_id, record_id, version, current_keys, now)
                summary["retired"] += retired["retired"]
                summary["accepted_changed"] += retired["accepted_changed"]
            con.execute(
                "INSERT INTO registry_results_reads VALUES (?, ?, ?, ?, ?, ?)",
                [review_id, record_id, version, now, added, json.dumps(problems)],
            )
    return summary


def _retire_stale_suggestions(
    con: duckdb.DuckDBPyConnection,
    review_id: str,
    record_id: str,
    version: int,
    current_keys: list[str],
    now: dt.datetime,
) -> dict:
    """Suggestions from earlier versions of a registry record whose numbers the new version no longer carries.

    Waiting ones become 'superseded' (so nobody accepts numbers the registry has replaced); ones a person
    already accepted stay as they are, and people get one warning alert naming them, since only a person may
    change accepted data.
    """
    stale = con.execute(query("linking_stale_suggestions"), [review_id, record_id, version, current_keys]).fetchall()
    if not stale:
        return {"retired": 0, "accepted_changed": 0}
    ids = [r[0] for r in stale]
    con.execute(
        "UPDATE registry_suggestions SET retired_at = ?, retired_by_version = ? "
        "WHERE review_id = ? AND list_contains(?, row_id)",
        [now, version, review_id, ids],
    )
    waiting = [rid for rid, status, accepted in stale if status == "suggested" and not accepted]
    if waiting:
        con.execute(
            "UPDATE extraction_rows SET status = 'superseded' WHERE review_id = ? AND list_contains(?, row_id)",
            [review_id, waiting],
        )
    accepted = [rid for rid, _, acc in stale if acc]
    if accepted:
        add_alert(
            con,
            review_id=review_id,
            kind="registry_results_changed",
            severity="warning",
            title=f"{record_id}: registry results changed for accepted rows",
            body=(
                f"Version {version} of {record_id} no longer reports the numbers of registry suggestion row(s) "
                f"{', '.join(map(str, accepted))}, which were accepted into the extraction data. Check the "
                "registry record and correct the accepted rows if needed (`livingmeta extract suggestions`)."
            ),
            now=now,
            dedupe_key=f"registry_results_changed:{review_id}:{record_id}:{version}",
        )
    return {"retired": len(waiting), "accepted_changed": len(accepted)}


# People's corrections (`livingmeta studies link|unlink|merge`): each resolves what it was given, stores the
# decision and relinks the review, in one transaction, so its effect is visible at once and a refused or failed
# correction leaves nothing behind. People's decisions win over automatic linking on every later run.


def study_of(con: duckdb.DuckDBPyConnection, review_id: str, record_id: str) -> str | None:
    """The study a record of the review is linked to now (None: not linked yet)."""
    row = con.execute(
        "SELECT study_id FROM study_links WHERE review_id = ? AND record_id = ?", [review_id, record_id]
    ).fetchone()
    return row[0] if row else None


def review_studies(con: duckdb.DuckDBPyConnection, review_id: str) -> dict:
    """`livingmeta studies list`: {"studies": `list_studies`, "conflicts": `link_conflicts`}."""
    return {"studies": list_studies(con, review_id), "conflicts": link_conflicts(con, review_id)}


def link_record(
    con: duckdb.DuckDBPyConnection,
    review_id: str,
    record: str,
    study: str,
    decided_by: str,
    now: dt.datetime,
    note: str | None = None,
) -> dict:
    """A person puts a record in a study: automatic linking never moves it again (one transaction).

    Args:
        record: record id, PMID or NCT id (`review_record_id`).
        study: the study (study id or any identifier of it, `resolve_study`).
    Returns:
        {"record_id", "study_id", "studies": number of studies after relinking}.
    Raises:
        StudyLookupError: the record is not in the review, or no (or more than one) study matches.
    """
    with transaction(con):
        rid = review_record_id(con, review_id, record)
        sid = resolve_study(con, review_id, study)
        if sid is None:
            raise StudyLookupError(
                f"no study {study!r} in review {review_id}; see `livingmeta studies list {review_id}`"
            )
        record_link_decision(con, review_id, rid, "link", sid, decided_by, now, note)
        summary = relink(con, review_id, now)
    return {"record_id": rid, "study_id": sid, "studies": summary["studies"]}


def unlink_record(
    con: duckdb.DuckDBPyConnection,
    review_id: str,
    record: str,
    decided_by: str,
    now: dt.datetime,
    note: str | None = None,
) -> dict:
    """A person splits a record off into its own study; it never rejoins the study it left automatically
    (one transaction).

    Returns:
        {"record_id", "left": the study it left, "study_id": the study it is in now}.
    Raises:
        StudyLookupError: the record is not in the review, not linked yet, or the only record of its study.
    """
    with transaction(con):
        rid = review_record_id(con, review_id, record)
        left = study_of(con, review_id, rid)
        if left is None:
            raise StudyLookupError(
                f"{rid} is not linked to a study yet; run `livingmeta update` for review {review_id} first"
            )
        (others,) = con.execute(
            "SELECT count(*) FROM study_links WHERE review_id = ? AND study_id = ? AND record_id <> ?",
            [review_id, left, rid],
        ).fetchone()
        if others == 0:
            raise StudyLookupError(f"{rid} is the only record of study {left}; there is nothing to split it from")
        record_link_decision(con, review_id, rid, "unlink", left, decided_by, now, note)
        relink(con, review_id, now)
        return {"record_id": rid, "left": left, "study_id": study_of(con, review_id, rid)}


def merge_into(
    con: duckdb.DuckDBPyConnection, review_id: str, keep: str, other: str, decided_by: str, now: dt.datetime
) -> dict:
    """A person merges two studies that are one trial: every record of `other` joins `keep`, whose id stays
    (`other` becomes an alias); one transaction.

    Args:
        keep, other: the studies (study ids or any identifier of them, `resolve_study`).
    Returns:
        {"keep": study id, "other": study id, "moved": the record ids that joined `keep`}.
    Raises:
        StudyLookupError: a study that is not in the review, or the same study twice.
    """
    with transaction(con):
        a, b = resolve_study(con, review_id, keep), resolve_study(con, review_id, other)
        for given, found in ((keep, a), (other, b)):
            if found is None:
                raise StudyLookupError(
                    f"no study {given!r} in review {review_id}; see `livingmeta studies list {review_id}`"
                )
        moved = merge_studies(con, review_id, a, b, decided_by, now)
        relink(con, review_id, now)
    return {"keep": a, "other": b, "moved": moved}
