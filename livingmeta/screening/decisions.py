"""Reading screening decision files: the native CSV and ASReview LAB's export, and the rules every decision obeys.

Native CSV (one decision per row)::

    record_id,reviewer,stage,decision,reason,decided_at
    pubmed:33766992,ana,title_abstract,include,,2024-03-01
    NCT02915263,ana,full_text,exclude,wrong comparator,2024-03-04T10:00:00Z

`record_id` is "pubmed:<pmid>" / "ctgov:<NCT id>"; bare PMIDs and NCT ids are accepted. `stage` is
title_abstract | full_text (blank: the stage given on the command line, else title_abstract);
`decision` include | exclude | maybe; `reason` is required for full-text excludes; `decided_at` is an
ISO date or date-time (blank: the time of import; a date means midnight UTC, a date-time without a zone UTC).

ASReview LAB export (what LAB writes after screening a file made by `livingmeta screen export`): the
exported columns come back with a label column. LAB 1.x writes its labels into the column the file came
with (`included`: 1 / 0 / blank = not screened) and adds `asreview_ranking` and `exported_notes_1`…; LAB 2.x
writes `asreview_label` (plus `asreview_time`, `asreview_note`) and may keep the original `included` column,
which then holds the labels we exported, not the reviewer's: `asreview_label` therefore wins over `included`,
which wins over `label_included`. A note (`asreview_note`, else the first non-empty `exported_notes_*`) is
kept as the decision's reason. Rows are mapped back to records through the `livingmeta_id` column we export
(else `record_id` when it is one of ours, else the DOI). ASReview LAB's RIS export is read too
(`livingmeta.screening.ris.read_asreview_ris`: the label from the N1 note, the other columns from its
"asreview_<column>: value" notes) and follows the same rules.

Only labels made in ASReview are imported. ASReview takes the labels of the file it was given as prior
knowledge and writes them back in its export like the reviewer's own; such a label is not a decision of the
person who screened in ASReview. Each row is compared with what livingmeta exported: the export named by the
row's `livingmeta_export` (column, or RIS note; `export_labels` gives that export's labels), else, in an
export of LAB 2.x/3.x that kept our `included` column beside `asreview_label`, that column. A label equal to
the exported one is skipped (counted in `DecisionFile.priors`); a label the reviewer changed in ASReview is
their decision. An export never carries "maybe" as a label (`warehouse.screening.export_records` leaves it
unlabelled), so a maybe cannot come back as an include.

Who and when: `asreview_user_name` (LAB with accounts) names the reviewer of a row, else `reviewer` (required
when a labelled row names nobody); `asreview_time` is when they labelled it, which LAB writes as
"YYYY-MM-DD HH:MM:SS" in UTC (pandas `to_datetime(time.time(), unit="s")`), kept as the decision's
decided_at; without it the import time is used.

Validation is all-or-nothing and complete: every row is checked and every problem is collected (line,
record id, column, what to do), and a file with any problem is refused whole (`DecisionFileError`, whose
message lists the first `MAX_LISTED_PROBLEMS` and says how many more). What is refused:

- a row that is not a decision: unknown record id (or one that belongs to another review, which is named),
  empty reviewer, unknown stage / decision / ASReview label, a full-text exclusion without a reason, a
  `decided_at` that is not an ISO date, or one in the future (more than `MAX_CLOCK_SKEW` after `now`:
  a day of slack, because a date is read as midnight UTC and a reviewer east of Greenwich writes
  "today" up to 14 hours before UTC reaches it);
- contradictions inside the file: two rows for the same record, stage and reviewer with different
  decisions (even on different dates: a file says what each person decided, once; import a change of mind
  as its own later file). The same decision twice is a harmless duplicate: it is stored once (the earliest
  dated row is kept) and counted as a duplicate; two full-text exclusions of one record by one reviewer
  with different reasons are a contradiction (PRISMA counts reasons);
- contradictions with what is stored (`plan_against_stored`): a decision dated at or before the
  reviewer's current stored decision for that record and stage but saying something else. The latest
  decision by date is current, so such a row could never take effect; storing it would only rewrite the
  history (and kappa, which reads each reviewer's first decision). An older row that repeats the stored
  decision adds nothing and is skipped. In a two-reviewer review, also a third person's decision dated before
  the second screener's: the first two people to decide are a record's screeners, so it would displace one
  of them in hindsight and change (or unmake) their agreed result instead of resolving it.
The same rules apply to one decision made in the terminal (`check_decision`, `plan_against_stored`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from livingmeta.records import hash_json, normalise_doi

DECISIONS = ("include", "exclude", "maybe")
STAGES = ("title_abstract", "full_text")
NATIVE_COLUMNS = ("record_id", "reviewer", "stage", "decision", "reason", "decided_at")
# in order of preference (see the module docstring)
ASREVIEW_LABEL_COLUMNS = ("asreview_label", "included", "label_included")
ASREVIEW_NOTE_COLUMNS = ("asreview_note", "exported_notes")
# how far after `now` a decided_at may lie: time zones, not clocks (see the module docstring)
MAX_CLOCK_SKEW = dt.timedelta(days=1)
MAX_LISTED_PROBLEMS = 20


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a decision file.

    Attributes:
        line: the file line (1 = header; 0 = the file as a whole).
        column: the column at fault (None: the row or file as a whole).
        record_id: the record the row is about, as written or as mapped (None when unknown).
        message: what is wrong and how to fix it.
    """

    line: int
    column: str | None
    record_id: str | None
    message: str

    def describe(self, source: str) -> str:
        """ "<source>, line N, column 'c', record 'r': message"."""
        where = source + (f", line {self.line}" if self.line else "")
        where += f", column {self.column!r}" if self.column else ""
        where += f", record {self.record_id!r}" if self.record_id else ""
        return f"{where}: {self.message}"


class DecisionFileError(ValueError):
    """A decision file (or one decision) that cannot be stored; the message lists every problem, where and how to fix.

    Attributes:
        problems: every Problem found (the message lists the first MAX_LISTED_PROBLEMS).
    """

    def __init__(self, message: str, problems: Sequence[Problem] = ()):
        super().__init__(message)
        self.problems = list(problems)


def refuse(source: str, problems: Sequence[Problem], head: str | None = None) -> DecisionFileError:
    """One error for a whole refused file: a summary line, then one line per problem (first 20, then "… and N more").

    Args:
        source: the file name used in messages.
        problems: every problem found, in file order.
        head: the summary line (default: nothing was imported, fix and import again).
    Returns:
        the DecisionFileError to raise.
    """
    problems = sorted(problems, key=lambda p: (p.line, p.column or "", p.message))
    head = head or (
        f"{source}: Nothing was imported: {len(problems)} problem(s); fix them and import the file again"
        if len(problems) != 1
        else f"{source}: Nothing was imported; fix the row and import the file again"
    )
    lines = [head] + [p.describe(source) for p in problems[:MAX_LISTED_PROBLEMS]]
    if len(problems) > MAX_LISTED_PROBLEMS:
        lines.append(f"… and {len(problems) - MAX_LISTED_PROBLEMS} more")
    return DecisionFileError("\n".join(lines), problems)


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


@dataclass(frozen=True)
class StoredDecision:
    """A reviewer's current stored decision for one record and stage (what `plan_against_stored` compares with)."""

    record_id: str
    stage: str
    reviewer: str
    decision: str
    reason: str | None
    decided_at: dt.datetime
    decision_id: int


@dataclass
class DecisionFile:
    """A validated decision file.

    Attributes:
        format: "native", "asreview" (CSV) or "asreview-ris".
        rows: the decisions to store, in file order (duplicates removed).
        read: how many decision rows the file holds (duplicates included; unlabelled ASReview rows are not
            decisions and are not counted).
        duplicates: (line, line it repeats) for rows that repeat another row's decision.
        priors: lines of ASReview rows whose label only repeats what livingmeta exported (not imported).
    """

    format: str
    rows: list[DecisionRow]
    read: int
    duplicates: list[tuple[int, int]] = field(default_factory=list)
    priors: list[int] = field(default_factory=list)


@dataclass
class ImportPlan:
    """What storing validated decisions will do.

    Attributes:
        add: rows to insert.
        unchanged: rows older than the reviewer's stored decision that repeat it (skipped).
        replaces: (row, stored decision) for rows that change a reviewer's earlier stored decision.
    """

    add: list[DecisionRow] = field(default_factory=list)
    unchanged: list[DecisionRow] = field(default_factory=list)
    replaces: list[tuple[DecisionRow, StoredDecision]] = field(default_factory=list)


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
    if not re.match(r"\d{4}-\d{2}-\d{2}[T ]", v):
        raise ValueError(v)  # fromisoformat also takes "20240301" and week dates: not what people mean here
    t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    return t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t.astimezone(dt.timezone.utc)


def _when(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _read_rows(text: str, source: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise DecisionFileError(
            f"{source}: the file is empty; expected a header line such as {','.join(NATIVE_COLUMNS)}"
        )
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


def _key(
    source_format: str, record_id: str, reviewer: str, stage: str, decision: str, reason: str | None, decided_at: str
) -> str:
    return hash_json([source_format, record_id, reviewer, stage, decision, reason or "", decided_at])


def check_decision(
    *,
    record_id: str,
    reviewer: str,
    stage: str,
    decision: str,
    reason: str | None,
    decided_at: dt.datetime | None,
    now: dt.datetime,
    is_known: Callable[[str], bool],
    line: int = 0,
) -> list[Problem]:
    """The rules one decision obeys, wherever it comes from (file row or terminal).

    Args:
        record_id: the canonical record id.
        reviewer, stage, decision, reason: as they would be stored.
        decided_at: when the person decided (None: now).
        now: the time of recording; decided_at may be at most MAX_CLOCK_SKEW after it.
        is_known: tells whether a record id belongs to the review.
        line: the file line, for the problems (0: not from a file).
    Returns:
        the problems found (empty: the decision may be stored, subject to `plan_against_stored`).
    """
    out: list[Problem] = []
    rid = record_id or None
    if not record_id:
        out.append(Problem(line, "record_id", None, "record_id is empty"))
    elif not is_known(record_id):
        out.append(
            Problem(
                line,
                "record_id",
                rid,
                "unknown record: this review has no such record (check the id, or run an update that finds it first)",
            )
        )
    if not (reviewer or "").strip():
        out.append(Problem(line, "reviewer", rid, "no reviewer: fill the reviewer column or give --reviewer NAME"))
    if stage not in STAGES:
        out.append(Problem(line, "stage", rid, f"stage {stage!r} is not allowed; use one of: {', '.join(STAGES)}"))
    if decision not in DECISIONS:
        out.append(
            Problem(line, "decision", rid, f"decision {decision!r} is not allowed; use one of: {', '.join(DECISIONS)}")
        )
    if stage == "full_text" and decision == "exclude" and not (reason or "").strip():
        out.append(Problem(line, "reason", rid, "a full-text exclusion needs a reason (PRISMA reports them)"))
    if decided_at is not None and decided_at > now + MAX_CLOCK_SKEW:
        out.append(
            Problem(
                line,
                "decided_at",
                rid,
                f"decided_at {_when(decided_at)} is in the future (now is {_when(now)}; at most "
                f"{MAX_CLOCK_SKEW.days} day ahead is accepted, for time zones): give the date the "
                "decision was made, or leave it blank for the import time",
            )
        )
    return out


def validate_decision_file(
    text: str,
    *,
    source: str,
    is_known: Callable[[str], bool],
    now: dt.datetime,
    reviewer: str | None = None,
    stage: str | None = None,
    doi_to_record: Mapping[str, str] | None = None,
    elsewhere: Callable[[list[str]], Mapping[str, Sequence[str]]] | None = None,
    export_labels: Callable[[int], Mapping[str, int] | None] | None = None,
) -> DecisionFile:
    """Validate a whole decision file (native CSV or ASReview LAB export); every problem is collected.

    Args:
        text: the file's text.
        source: the file name used in messages.
        is_known: tells whether a record id belongs to the review.
        now: the import time (a decided_at more than MAX_CLOCK_SKEW after it is refused).
        reviewer: who decided (required for ASReview files; fills blank reviewer cells in native files).
        stage: the stage for rows that give none (default title_abstract).
        doi_to_record: DOI -> record id, to map ASReview rows that lost our id columns.
        elsewhere: given the unknown record ids, the other reviews holding each (to name them in messages).
        export_labels: given an export id, the labels that export of this review carried (record id -> 1/0),
            or None when the review has no such export.
    Returns:
        a DecisionFile: the rows to store in file order (duplicates removed), how many were read, duplicates,
        the lines of ASReview labels that only repeat an exported prior.
    Raises:
        DecisionFileError: listing every problem (file, line, column, record id); nothing may be stored.
    """
    if stage is not None and stage not in STAGES:
        raise DecisionFileError(f"stage {stage!r} is not allowed; use one of: {', '.join(STAGES)}")
    ris = _looks_like_ris(text)
    header, raw = _read_ris_rows(text, source) if ris else _read_rows(text, source)
    fmt = "asreview-ris" if ris else detect_format(header)
    if fmt == "unknown":
        raise DecisionFileError(
            f"{source}, line 1: not a decision file: expected the columns {','.join(NATIVE_COLUMNS)} (native) "
            f"or an ASReview LAB export with an 'included' column; found {','.join(header)}"
        )
    if (
        fmt.startswith("asreview")
        and not (reviewer or "").strip()
        and "asreview_user_name" not in {h.lower() for h in header}
    ):
        raise DecisionFileError(
            f"{source}: an ASReview LAB export does not say who screened; give the reviewer with --reviewer NAME"
        )
    cols = {h.lower() for h in header}
    if fmt == "native":
        missing = [c for c in ("record_id", "decision") if c not in cols]
        if missing:
            raise refuse(
                source,
                [
                    Problem(1, c, None, f"column {c!r} is missing; the header must include {','.join(NATIVE_COLUMNS)}")
                    for c in missing
                ],
            )
    problems: list[Problem] = []
    rows: list[DecisionRow] = []
    priors: list[int] = []
    exports = _ExportLookup(export_labels)
    for line, row in raw:
        get = {k.lower(): (v or "").strip() for k, v in row.items()}
        if not any(get.values()):
            continue
        if fmt == "native":
            parsed = _native_row(get, line, is_known, reviewer, stage, now, problems)
        else:
            parsed = _asreview_row(
                get, line, is_known, reviewer, stage, now, doi_to_record or {}, problems, exports, priors
            )
        if parsed is not None:
            rows.append(parsed)
    kept, duplicates = _collapse(rows, problems)
    if problems:
        raise refuse(source, _name_other_reviews(problems, elsewhere))
    return DecisionFile(fmt, kept, len(rows), duplicates, priors)


def _looks_like_ris(text: str) -> bool:
    for line in text.lstrip("\ufeff").splitlines():
        if line.strip() and not re.fullmatch(r"\s*\d+\.\s*", line):  # rispy may number records "1."
            return line.startswith("TY  - ")
    return False


def _read_ris_rows(text: str, source: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    from livingmeta.screening.ris import read_asreview_ris

    try:
        rows = read_asreview_ris(text.lstrip("\ufeff"))
    except Exception as e:  # rispy's own errors name no line: say what the file should be
        raise DecisionFileError(
            f"{source}: not a readable RIS file ({e}); import the RIS file ASReview LAB exported, or its CSV export"
        ) from None
    header = sorted({k for _, r in rows for k in r} | {"livingmeta_id", "asreview_label"})
    return header, rows


class _ExportLookup:
    """Labels of livingmeta's exports by id, read once each."""

    def __init__(self, export_labels: Callable[[int], Mapping[str, int] | None] | None):
        self.fn = export_labels
        self.seen: dict[int, Mapping[str, int] | None] = {}

    def __call__(self, export_id: int) -> Mapping[str, int] | None:
        if self.fn is None:
            return None
        if export_id not in self.seen:
            self.seen[export_id] = self.fn(export_id)
        return self.seen[export_id]


def parse_asreview_time(value: str) -> dt.datetime | None:
    """ASReview LAB's `asreview_time` (UTC "YYYY-MM-DD HH:MM:SS"; an ISO time with a zone is converted;
    a number is Unix seconds) as an aware UTC datetime; None when blank.

    Raises:
        ValueError: anything else.
    """
    v = (value or "").strip()
    if not v or v.lower() in ("nan", "nat", "none"):
        return None
    if re.fullmatch(r"\d+(\.\d+)?", v):
        return dt.datetime.fromtimestamp(float(v), dt.timezone.utc)
    return parse_decided_at(v)


def parse_decision_file(text: str, **kwargs) -> tuple[str, list[DecisionRow]]:
    """`validate_decision_file` as (format, rows to store); same arguments."""
    f = validate_decision_file(text, **kwargs)
    return f.format, f.rows


def _name_other_reviews(problems: list[Problem], elsewhere) -> list[Problem]:
    unknown = sorted(
        {
            p.record_id
            for p in problems
            if p.column in ("record_id", "livingmeta_id") and p.record_id and p.message.startswith("unknown record")
        }
    )
    if not unknown or elsewhere is None:
        return problems
    where = elsewhere(unknown)
    out = []
    for p in problems:
        others = where.get(p.record_id or "") if p.message.startswith("unknown record") else None
        if others:
            p = Problem(
                p.line,
                p.column,
                p.record_id,
                f"record of another review ({', '.join(sorted(others))}), not of this one: "
                "import it into that review, or check the id",
            )
        out.append(p)
    return out


def _collapse(rows: list[DecisionRow], problems: list[Problem]) -> tuple[list[DecisionRow], list[tuple[int, int]]]:
    """One decision per record, stage and reviewer: contradictions are problems, repeats are duplicates."""
    groups: dict[tuple[str, str, str], list[DecisionRow]] = defaultdict(list)
    for r in rows:
        groups[(r.record_id, r.stage, r.reviewer)].append(r)
    drop: dict[int, int] = {}
    far_future = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
    for (rid, st, who), group in groups.items():
        if len(group) < 2:
            continue
        first = group[0]
        for r in group[1:]:
            if r.decision != first.decision:
                problems.append(
                    Problem(
                        r.line,
                        "decision",
                        rid,
                        f"contradicts line {first.line}: {who} gives {r.decision!r} here and "
                        f"{first.decision!r} there for the same record at {st}; a file gives one "
                        "decision per record, stage and reviewer: keep the one that stands (import a "
                        "later change of mind as its own file)",
                    )
                )
            elif st == "full_text" and r.decision == "exclude" and (r.reason or "") != (first.reason or ""):
                problems.append(
                    Problem(
                        r.line,
                        "reason",
                        rid,
                        f"contradicts line {first.line}: the same full-text exclusion by {who} with "
                        f"another reason ({r.reason!r} vs {first.reason!r}); PRISMA counts one "
                        "reason per exclusion: keep one row",
                    )
                )
        if any(r.decision != first.decision for r in group):
            continue
        # the same decision repeated: keep the earliest dated (that is when it was made), the others are duplicates
        keep = min(group, key=lambda r: (r.decided_at or far_future, r.line))
        for r in group:
            if r is not keep:
                drop[r.line] = keep.line
    kept = [r for r in rows if r.line not in drop]
    return kept, sorted(drop.items())


def _native_row(
    get: dict[str, str],
    line: int,
    is_known: Callable[[str], bool],
    reviewer: str | None,
    stage: str | None,
    now: dt.datetime,
    problems: list[Problem],
) -> DecisionRow | None:
    raw_id = get.get("record_id", "")
    rid = canonical_record_id(raw_id)
    who = get.get("reviewer") or (reviewer or "").strip()
    st = (get.get("stage") or stage or "title_abstract").lower()
    decision = get.get("decision", "").lower()
    reason = get.get("reason") or None
    found: list[Problem] = []
    try:
        when = parse_decided_at(get.get("decided_at", ""))
    except ValueError:
        when = None
        found.append(
            Problem(
                line,
                "decided_at",
                rid or None,
                f"{get.get('decided_at')!r} is not an ISO date or date-time (e.g. 2024-03-01 or 2024-03-01T10:00:00Z)",
            )
        )
    found += check_decision(
        record_id=rid,
        reviewer=who,
        stage=st,
        decision=decision,
        reason=reason,
        decided_at=when,
        now=now,
        is_known=is_known,
        line=line,
    )
    # show what the person wrote, not what we lowered it to
    found = [
        Problem(
            p.line, p.column, p.record_id, f"stage {get.get('stage')!r} is not allowed; use one of: {', '.join(STAGES)}"
        )
        if p.column == "stage"
        else Problem(
            p.line,
            p.column,
            p.record_id,
            f"decision {get.get('decision')!r} is not allowed; use one of: {', '.join(DECISIONS)}",
        )
        if p.column == "decision"
        else p
        for p in found
    ]
    if found:
        problems.extend(found)
        return None
    return DecisionRow(
        rid,
        who,
        st,
        decision,
        reason,
        when,
        line,
        _key("native", rid, who, st, decision, reason, get.get("decided_at", "")),
    )


def _asreview_row(
    get: dict[str, str],
    line: int,
    is_known: Callable[[str], bool],
    reviewer: str | None,
    stage: str | None,
    now: dt.datetime,
    doi_to_record: Mapping[str, str],
    problems: list[Problem],
    exports: _ExportLookup | None = None,
    priors: list[int] | None = None,
) -> DecisionRow | None:
    label_col = next(c for c in ASREVIEW_LABEL_COLUMNS if c in get)
    label = get[label_col]
    if label in ("", "-1", "nan", "NaN", "None"):
        return None  # not screened in ASReview
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
    found: list[Problem] = []
    if label not in ("0", "1", "0.0", "1.0"):
        found.append(
            Problem(
                line,
                label_col,
                rid,
                f"label {label!r} is not allowed; ASReview labels are 1 "
                "(relevant), 0 (irrelevant) or blank (not screened)",
            )
        )
    if rid is None:
        ours = canonical_record_id(get.get("livingmeta_id", ""))
        if ours:
            # our id column is there but names no record of this review
            found.append(
                Problem(
                    line,
                    "livingmeta_id",
                    ours,
                    "unknown record: this review has no such record; "
                    "import the file into the review it was exported from",
                )
            )
        else:
            shown = get.get("record_id") or get.get("title", "")[:60]
            found.append(
                Problem(
                    line,
                    "livingmeta_id",
                    None,
                    f"cannot map row {shown!r} to a record of this review; "
                    "keep the livingmeta_id column that `livingmeta screen export` writes",
                )
            )
    if not found and rid is not None:
        prior, problem = _exported_label(get, line, rid, label_col, exports)
        if problem is not None:
            found.append(problem)
        elif prior is not None and prior == int(float(label)):
            if priors is not None:
                priors.append(line)
            return None  # the prior livingmeta gave ASReview, written back: nobody's decision in ASReview
    who = get.get("asreview_user_name") or (reviewer or "").strip()
    if not who and not found:
        found.append(
            Problem(
                line,
                "asreview_user_name",
                rid,
                "ASReview names nobody for this label: give the reviewer with --reviewer NAME",
            )
        )
    when = None
    try:
        when = parse_asreview_time(get.get("asreview_time", ""))
    except ValueError:
        found.append(
            Problem(
                line,
                "asreview_time",
                rid,
                f"{get.get('asreview_time')!r} is not a time ASReview "
                "writes (YYYY-MM-DD HH:MM:SS, UTC); fix the cell or clear it to use the import time",
            )
        )
    decision = "include" if label.startswith("1") else "exclude"
    st = stage or "title_abstract"
    reason = _asreview_note(get)
    if when is not None and when > now + MAX_CLOCK_SKEW:
        found.append(
            Problem(
                line,
                "asreview_time",
                rid,
                f"asreview_time {_when(when)} is in the future (now is "
                f"{_when(now)}): fix the cell or clear it to use the import time",
            )
        )
    if st == "full_text" and decision == "exclude" and not reason and not found:
        found.append(
            Problem(
                line,
                label_col,
                rid,
                "this full-text exclusion has no reason (PRISMA reports them): "
                "write it as the record's note in ASReview, import ASReview labels at title_abstract, "
                "or use the native CSV with a reason column",
            )
        )
    if found:
        problems.extend(found)
        return None
    return DecisionRow(
        rid,
        who,
        st,
        decision,
        reason,
        when,
        line,
        _key("asreview", rid, who, st, decision, reason, get.get("asreview_time", "")),
    )


def _exported_label(
    get: Mapping[str, str], line: int, rid: str, label_col: str, exports: _ExportLookup | None
) -> tuple[int | None, Problem | None]:
    """The label livingmeta exported for this row's record (None: it was exported without one, or we cannot
    tell), or a problem when the row names an export this review never made."""
    export = get.get("livingmeta_export", "")
    if export:
        if not re.fullmatch(r"\d+(\.0)?", export):
            return None, Problem(
                line,
                "livingmeta_export",
                rid,
                f"{export!r} is not an export number; keep the "
                "livingmeta_export column as `livingmeta screen export` wrote it",
            )
        labels = exports(int(float(export))) if exports is not None else None
        if labels is None:
            return None, Problem(
                line,
                "livingmeta_export",
                rid,
                f"export {int(float(export))} is not an export of "
                "this review: import the file into the review (and warehouse) it was exported from",
            )
        return labels.get(rid), None
    # LAB 2.x / 3.x keep the columns of the file they were given: our `included` is what we exported
    if label_col == "asreview_label" and get.get("included", "") in ("0", "1", "0.0", "1.0"):
        return int(float(get["included"])), None
    return None, None


def _asreview_note(get: Mapping[str, str]) -> str | None:
    """The reviewer's note on an ASReview row (2.x `asreview_note`, 1.x `exported_notes_1`, `_2`, …)."""
    for col in ASREVIEW_NOTE_COLUMNS:
        for name in sorted((k for k in get if k == col or k.startswith(col + "_")), key=lambda k: (len(k), k)):
            if get[name] and get[name].lower() not in ("nan", "none"):
                return get[name]
    return None


def plan_against_stored(
    rows: Iterable[DecisionRow],
    stored: Mapping[tuple[str, str, str], StoredDecision],
    *,
    now: dt.datetime,
    source: str,
    reviewers: int = 1,
    head: str | None = None,
    screeners: Mapping[tuple[str, str], Sequence[tuple[str, dt.datetime]]] | None = None,
) -> ImportPlan:
    """Compare validated decisions with each reviewer's current stored decision (latest by date wins).

    Args:
        rows: validated decisions not stored before (their import keys are new).
        stored: (record id, stage, reviewer) -> that reviewer's current stored decision.
        now: the import time (a row without decided_at is decided now).
        source: the file name (or "decision") used in messages.
        reviewers: the review's reviewers per record (1 or 2).
        head: the refusal's summary line (see `refuse`).
        screeners: (record id, stage) -> (reviewer, first decided_at) of everyone who decided it, earliest first
            (in a two-reviewer review the first two are the record's screeners).
    Returns:
        an ImportPlan: rows to add, older rows that repeat the stored decision (skipped), rows that replace one.
    Raises:
        DecisionFileError: every row that would silently rewrite what is stored: dated at or before the
            reviewer's stored decision while saying something else (it could never become current), or, in a
            two-reviewer review, a third person's decision dated before the second screener's (it would make
            them a screener in hindsight and change the agreed result).
    """
    plan = ImportPlan()
    problems: list[Problem] = []
    for r in rows:
        s = stored.get((r.record_id, r.stage, r.reviewer))
        when = r.decided_at or now
        first_two = list((screeners or {}).get((r.record_id, r.stage), ()))[:2]
        if (
            reviewers == 2
            and len(first_two) == 2
            and r.reviewer not in {w for w, _ in first_two}
            and when <= first_two[1][1]
        ):
            (a, _), (b, b_at) = first_two
            problems.append(
                Problem(
                    r.line,
                    "decided_at",
                    r.record_id,
                    f"{r.reviewer}'s decision at {r.stage} dated {_when(when)} is earlier than that of {b}, the record's "
                    f"second screener ({_when(b_at)}): it would make {r.reviewer} a screener in hindsight instead of {b} "
                    f"and change what {a} and {b} decided. A third reviewer's decision resolves; date it after "
                    f"{_when(b_at)} (or leave decided_at blank for the import time)",
                )
            )
            continue
        if s is None:
            plan.add.append(r)
            continue
        same = s.decision == r.decision and (
            r.stage != "full_text" or r.decision != "exclude" or (s.reason or "") == (r.reason or "")
        )
        if when <= s.decided_at:
            if same:
                plan.unchanged.append(r)
                continue
            problems.append(
                Problem(
                    r.line,
                    "decided_at",
                    r.record_id,
                    f"{r.reviewer}'s {r.decision!r} at {r.stage} dated {_when(when)} is not later than their stored "
                    f"{s.decision!r} of {_when(s.decided_at)} (decision {s.decision_id}), which stays current: the "
                    f"latest decision counts. Remove the row, or give a decided_at after {_when(s.decided_at)} if "
                    "this is the newer decision",
                )
            )
            continue
        plan.add.append(r)
        if not same:
            plan.replaces.append((r, s))
    if problems:
        raise refuse(source, problems, head)
    return plan
