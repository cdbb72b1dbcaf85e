"""Reading screening decision files: the native CSV and ASReview LAB's export.

Native CSV (one decision per row)::

    record_id,reviewer,stage,decision,reason,decided_at
    pubmed:33766992,ana,title_abstract,include,,2024-03-01
    NCT02915263,ana,full_text,exclude,wrong comparator,2024-03-04T10:00:00Z

`record_id` is "pubmed:<pmid>" / "ctgov:<NCT id>"; bare PMIDs and NCT ids are accepted. `stage` is
title_abstract | full_text (blank: the stage given on the command line, else title_abstract);
`decision` include | exclude | maybe; `reason` is required for full-text excludes; `decided_at` is an
ISO date or date-time (blank: the time of import).

ASReview LAB export (what LAB writes after screening a file made by `livingmeta screen export`): the
exported columns come back with a label column. LAB 1.x writes its labels into the column the file came
with (`included`: 1 / 0 / blank = not screened) and adds `asreview_ranking` and `exported_notes_1`…; LAB 2.x
writes `asreview_label` (plus `asreview_time`, `asreview_note`) and may keep the original `included` column,
which then holds the labels we exported, not the reviewer's: `asreview_label` therefore wins over `included`,
which wins over `label_included`. A note (`asreview_note`, else the first non-empty `exported_notes_*`) is
kept as the decision's reason. Rows are mapped back to records through the `livingmeta_id` column we export
(else `record_id` when it is one of ours, else the DOI). ASReview knows no reviewer, so the reviewer must be
given.

Parsing is all-or-nothing: the first bad row raises `DecisionFileError` naming file, line and column,
so a file is either imported whole or not at all.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from livingmeta.records import hash_json, normalise_doi

DECISIONS = ("include", "exclude", "maybe")
STAGES = ("title_abstract", "full_text")
NATIVE_COLUMNS = ("record_id", "reviewer", "stage", "decision", "reason", "decided_at")
# in order of preference (see the module docstring)
ASREVIEW_LABEL_COLUMNS = ("asreview_label", "included", "label_included")
ASREVIEW_NOTE_COLUMNS = ("asreview_note", "exported_notes")


class DecisionFileError(ValueError):
    """A decision file that cannot be imported; the message names file, line and column and how to fix it."""


@dataclass(frozen=True)
class DecisionRow:
    """One decision read from a file.

    Attributes:
        record_id: the warehouse record id.
        reviewer, stage, decision, reason: as in `screening_decisions`.
        decided_at: when the person decided (None: use the import time).
        line: the file line it came from (1 = header).
        import_key: hash of the row's content, so importing the same file twice adds nothing.
    """

    record_id: str
    reviewer: str
    stage: str
    decision: str
    reason: str | None
    decided_at: dt.datetime | None
    line: int
    import_key: str


def canonical_record_id(value: str) -> str:
    """Our record id for what people write: "pubmed:123", "123" (a PMID), "NCT01234567" or "ctgov:NCT…".

    Args:
        value: the id as written.
    Returns:
        "pubmed:<pmid>" / "ctgov:<NCT id>", or the stripped value unchanged when it matches no pattern.
    """
    v = (value or "").strip()
    if re.fullmatch(r"\d{1,9}", v):
        return f"pubmed:{int(v)}"
    m = re.fullmatch(r"(?i)(?:ctgov:)?(NCT\d{8})", v)
    if m:
        return f"ctgov:{m.group(1).upper()}"
    m = re.fullmatch(r"(?i)(?:pubmed|pmid):\s*(\d{1,9})", v)
    if m:
        return f"pubmed:{int(m.group(1))}"
    return v


def parse_decided_at(value: str) -> dt.datetime | None:
    """An ISO date or date-time as an aware UTC datetime (a date means midnight UTC); None when blank.

    Raises:
        ValueError: when the text is not an ISO date or date-time.
    """
    v = (value or "").strip()
    if not v:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
        d = dt.date.fromisoformat(v)
        return dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc)
    t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    return t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t.astimezone(dt.timezone.utc)


def _error(source: str, line: int, column: str | None, message: str) -> DecisionFileError:
    where = f"{source}, line {line}" + (f", column {column!r}" if column else "")
    return DecisionFileError(f"{where}: {message}. Nothing was imported; fix the row and import the file again.")


def _read_rows(text: str, source: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise DecisionFileError(f"{source}: the file is empty; expected a header line such as "
                                f"{','.join(NATIVE_COLUMNS)}")
    reader.fieldnames = header
    rows = []
    for row in reader:
        # csv counts physical lines, so quoted multi-line abstracts still give the right line number
        rows.append((reader.line_num, {k: (v if isinstance(v, str) else "") for k, v in row.items() if k is not None}))
    return header, rows


def detect_format(header: list[str]) -> str:
    """ "native" or "asreview" from a header line (ASReview exports carry a label column and no `decision`)."""
    cols = {h.lower() for h in header}
    if "decision" in cols:
        return "native"
    if cols & set(ASREVIEW_LABEL_COLUMNS):
        return "asreview"
    return "unknown"


def parse_decision_file(
    text: str,
    *,
    source: str,
    is_known: Callable[[str], bool],
    reviewer: str | None = None,
    stage: str | None = None,
    doi_to_record: Mapping[str, str] | None = None,
) -> tuple[str, list[DecisionRow]]:
    """Validate a whole decision file (native CSV or ASReview LAB export).

    Args:
        text: the file's text.
        source: the file name used in messages.
        is_known: tells whether a record id belongs to the review.
        reviewer: who decided (required for ASReview files; fills blank reviewer cells in native files).
        stage: the stage for rows that give none (default title_abstract).
        doi_to_record: DOI -> record id, to map ASReview rows that lost our id columns.
    Returns:
        (format, rows): "native" or "asreview", and every decision in file order (ASReview rows left
        unlabelled are skipped: they are not decisions).
    Raises:
        DecisionFileError: on the first bad row, naming file, line and column.
    """
    if stage is not None and stage not in STAGES:
        raise DecisionFileError(f"stage {stage!r} is not allowed; use one of: {', '.join(STAGES)}")
    header, rows = _read_rows(text, source)
    fmt = detect_format(header)
    if fmt == "unknown":
        raise DecisionFileError(
            f"{source}, line 1: not a decision file: expected the columns {','.join(NATIVE_COLUMNS)} (native) "
            f"or an ASReview LAB export with an 'included' column; found {','.join(header)}")
    if fmt == "asreview" and not (reviewer or "").strip():
        raise DecisionFileError(
            f"{source}: an ASReview LAB export does not say who screened; give the reviewer with --reviewer NAME")
    cols = {h.lower(): h for h in header}
    out: list[DecisionRow] = []
    for line, row in rows:
        get = {k.lower(): (v or "").strip() for k, v in row.items()}
        if not any(get.values()):
            continue
        if fmt == "native":
            parsed = _native_row(get, line, source, is_known, reviewer, stage, cols)
        else:
            parsed = _asreview_row(get, line, source, is_known, reviewer, stage, doi_to_record or {})
        if parsed is not None:
            out.append(parsed)
    return fmt, out


def _key(source_format: str, record_id: str, reviewer: str, stage: str, decision: str, reason: str | None,
         decided_at: str) -> str:
    return hash_json([source_format, record_id, reviewer, stage, decision, reason or "", decided_at])


def _native_row(get: dict[str, str], line: int, source: str, is_known: Callable[[str], bool],
                reviewer: str | None, stage: str | None, cols: dict[str, str]) -> DecisionRow:
    for needed in ("record_id", "decision"):
        if needed not in cols:
            raise _error(source, 1, needed, f"column {needed!r} is missing; the header must include "
                         f"{','.join(NATIVE_COLUMNS)}")
    raw_id = get.get("record_id", "")
    if not raw_id:
        raise _error(source, line, "record_id", "record_id is empty")
    rid = canonical_record_id(raw_id)
    if not is_known(rid):
        raise _error(source, line, "record_id", f"unknown record {raw_id!r}: this review has no such record "
                     "(check the id, or run an update that finds it first)")
    who = get.get("reviewer") or (reviewer or "").strip()
    if not who:
        raise _error(source, line, "reviewer", "no reviewer: fill the reviewer column or give --reviewer NAME")
    st = (get.get("stage") or stage or "title_abstract").lower()
    if st not in STAGES:
        raise _error(source, line, "stage", f"stage {get.get('stage')!r} is not allowed; use one of: {', '.join(STAGES)}")
    decision = get.get("decision", "").lower()
    if decision not in DECISIONS:
        raise _error(source, line, "decision",
                     f"decision {get.get('decision')!r} is not allowed; use one of: {', '.join(DECISIONS)}")
    reason = get.get("reason") or None
    if st == "full_text" and decision == "exclude" and not reason:
        raise _error(source, line, "reason", "a full-text exclusion needs a reason (PRISMA reports them)")
    try:
        when = parse_decided_at(get.get("decided_at", ""))
    except ValueError:
        raise _error(source, line, "decided_at", f"{get.get('decided_at')!r} is not an ISO date or date-time "
                     "(e.g. 2024-03-01 or 2024-03-01T10:00:00Z)") from None
    return DecisionRow(rid, who, st, decision, reason, when, line,
                       _key("native", rid, who, st, decision, reason, get.get("decided_at", "")))


def _asreview_row(get: dict[str, str], line: int, source: str, is_known: Callable[[str], bool],
                  reviewer: str | None, stage: str | None, doi_to_record: Mapping[str, str]) -> DecisionRow | None:
    label_col = next(c for c in ASREVIEW_LABEL_COLUMNS if c in get)
    label = get[label_col]
    if label in ("", "-1", "nan", "NaN", "None"):
        return None  # not screened in ASReview
    if label not in ("0", "1", "0.0", "1.0"):
        raise _error(source, line, label_col, f"label {label!r} is not allowed; ASReview labels are 1 (relevant), "
                     "0 (irrelevant) or blank (not screened)")
    rid = None
    for col in ("livingmeta_id", "record_id"):
        value = get.get(col, "")
        # ASReview numbers rows 1..n in record_id: a bare number there is a row number, never a PMID
        if col == "record_id" and value.isdigit():
            continue
        cand = canonical_record_id(value)
        if cand and is_known(cand):
            rid = cand
            break
    if rid is None and get.get("doi"):
        rid = doi_to_record.get(normalise_doi(get["doi"]) or "")
    if rid is None:
        shown = get.get("livingmeta_id") or get.get("record_id") or get.get("title", "")[:60]
        raise _error(source, line, "livingmeta_id", f"cannot map row {shown!r} to a record of this review; "
                     "keep the livingmeta_id column that `livingmeta screen export` writes")
    decision = "include" if label.startswith("1") else "exclude"
    st = stage or "title_abstract"
    reason = _asreview_note(get)
    if st == "full_text" and decision == "exclude" and not reason:
        raise _error(source, line, label_col, "this full-text exclusion has no reason (PRISMA reports them): write it "
                     "as the record's note in ASReview, import ASReview labels at title_abstract, or use the native "
                     "CSV with a reason column")
    who = (reviewer or "").strip()
    return DecisionRow(rid, who, st, decision, reason, None, line,
                       _key("asreview", rid, who, st, decision, reason, ""))


def _asreview_note(get: Mapping[str, str]) -> str | None:
    """The reviewer's note on an ASReview row (2.x `asreview_note`, 1.x `exported_notes_1`, `_2`, …)."""
    for col in ASREVIEW_NOTE_COLUMNS:
        for name in sorted((k for k in get if k == col or k.startswith(col + "_")),
                           key=lambda k: (len(k), k)):
            if get[name] and get[name].lower() not in ("nan", "none"):
                return get[name]
    return None
