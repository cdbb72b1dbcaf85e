"""Extraction data: reading and validating the extraction CSV (pure; storing it is warehouse/extraction.py).

The file has one row per study x outcome x arm (or one `contrast` row per study for generic inverse
variance data). Columns (docs: "Shared file formats" in the project brief):

    study,outcome,arm,group_label,events,total,mean,sd,n,estimate,se,ci_lower,ci_upper,scale,subgroup,
    extractor,extracted_on,source_ref,notes

Which numbers a row needs depends on the outcome's kind:

- binary:      arm treatment|control,          events and total (0 <= events <= total, total > 0)
- proportion:  arm single|treatment|control,   events and total
- continuous:  arm treatment|control,          mean, sd (> 0) and n (> 0)
- generic:     arm contrast,                   estimate with se (> 0) or ci_lower < ci_upper, and scale
               ratio|difference (ratios on their natural scale, > 0)

Every problem is reported with the file, line and column, all at once, so a person can fix the file in
one pass; nothing is stored unless the whole file is valid.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from collections.abc import Mapping

from livingmeta.records import hash_json

COLUMNS = (
    "study",
    "outcome",
    "arm",
    "group_label",
    "events",
    "total",
    "mean",
    "sd",
    "n",
    "estimate",
    "se",
    "ci_lower",
    "ci_upper",
    "scale",
    "subgroup",
    "extractor",
    "extracted_on",
    "source_ref",
    "notes",
)
NUMBER_COLUMNS = ("events", "total", "mean", "sd", "n", "estimate", "se", "ci_lower", "ci_upper")
REQUIRED_COLUMNS = ("study", "outcome", "arm", "extractor")
ARMS_BY_KIND = {
    "binary": ("treatment", "control"),
    "proportion": ("single", "treatment", "control"),
    "continuous": ("treatment", "control"),
    "generic": ("contrast",),
}
SCALES = ("ratio", "difference")
MAX_MESSAGES = 25


class ExtractionError(ValueError):
    """An extraction file (or row) that cannot be stored; the message lists every problem with its line.

    `fields` maps a column to its problems (one row's validation), so a form can show each next to its field.
    """

    def __init__(self, message: str, fields: Mapping[str, list[str]] | None = None):
        super().__init__(message)
        self.fields: dict[str, list[str]] = dict(fields or {})


@dataclass(frozen=True)
class ExtractionRow:
    """One validated extraction row; `study` is still the identifier as written (resolved when stored)."""

    line: int
    study: str
    outcome: str
    arm: str
    group_label: str | None = None
    events: float | None = None
    total: float | None = None
    mean: float | None = None
    sd: float | None = None
    n: float | None = None
    estimate: float | None = None
    se: float | None = None
    ci_lower: float | None = None
    ci_upper: float | None = None
    scale: str | None = None
    subgroup: str | None = None
    extractor: str = ""
    extracted_on: dt.date | None = None
    source_ref: str | None = None
    notes: str | None = None

    def slot(self, study_id: str) -> tuple:
        """The key a correction replaces: (study, outcome, arm, group_label, subgroup)."""
        return (study_id, self.outcome, self.arm, self.group_label or "", self.subgroup or "")

    def values(self) -> dict[str, Any]:
        """The row's stored fields (without line and the unresolved study identifier)."""
        d = asdict(self)
        d.pop("line")
        d.pop("study")
        return d


def content_key(study_id: str, row: ExtractionRow) -> str:
    """Hash of a row's content after study resolution: an identical re-import has the same key.

    Args:
        study_id: the resolved study id.
        row: the validated row.
    Returns:
        a hex digest; the line number and how the study was written do not enter it.
    """
    v = row.values()
    v["extracted_on"] = v["extracted_on"].isoformat() if v["extracted_on"] else None
    v["study_id"] = study_id
    return hash_json(v)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""


def _text(value: Any) -> str | None:
    return None if _blank(value) else str(value).strip()


def validate_row(raw: Mapping[str, Any], outcomes: Mapping[str, str], *, where: str, line: int = 0) -> ExtractionRow:
    """Validate one extraction row.

    Args:
        raw: column -> cell text (missing columns count as blank).
        outcomes: outcome id -> kind (binary | proportion | continuous | generic) from review.toml.
        where: how to name the row in messages, e.g. "data.csv, line 4".
        line: the row's line number in its file (kept on the result).
    Returns:
        the ExtractionRow.
    Raises:
        ExtractionError: listing every problem of the row, each naming the column.
    """
    problems: list[str] = []
    by_field: dict[str, list[str]] = {}

    def bad(column: str, message: str) -> None:
        problems.append(f"{where}, column '{column}': {message}")
        by_field.setdefault(column, []).append(message)

    numbers: dict[str, float | None] = {}
    for col in NUMBER_COLUMNS:
        cell = raw.get(col)
        if _blank(cell):
            numbers[col] = None
            continue
        try:
            x = float(str(cell).strip())
        except ValueError:
            bad(col, f"{str(cell).strip()!r} is not a number; write digits with a decimal point (e.g. 12 or 3.5)")
            numbers[col] = None
            continue
        if not math.isfinite(x):
            bad(col, f"{str(cell).strip()!r} is not a finite number")
            numbers[col] = None
            continue
        numbers[col] = x

    study = _text(raw.get("study"))
    if study is None:
        bad("study", "the study is empty; give a study id, record id, PMID, NCT id or DOI")
    outcome = _text(raw.get("outcome"))
    kind = None
    if outcome is None:
        bad("outcome", f"the outcome is empty; use one of {', '.join(outcomes) or '(none defined in review.toml)'}")
    elif outcome not in outcomes:
        bad("outcome", f"unknown outcome {outcome!r}; review.toml defines {', '.join(outcomes) or 'none'}")
    else:
        kind = outcomes[outcome]
    arm = (_text(raw.get("arm")) or "").lower()
    if kind is not None and arm not in ARMS_BY_KIND[kind]:
        bad("arm", f"{arm or '(empty)'!r} is not an arm of a {kind} outcome; use {' or '.join(ARMS_BY_KIND[kind])}")
    extractor = _text(raw.get("extractor"))
    if extractor is None:
        bad("extractor", "who extracted the row is required (initials or name)")
    extracted_on = None
    if not _blank(raw.get("extracted_on")):
        text = str(raw.get("extracted_on")).strip()
        try:
            extracted_on = dt.date.fromisoformat(text[:10])
        except ValueError:
            bad("extracted_on", f"{text!r} is not a date; write it as YYYY-MM-DD")
    scale = _text(raw.get("scale"))
    scale = scale.lower() if scale else None

    def need(*cols: str) -> None:
        for c in cols:
            if numbers[c] is None and not any(p.startswith(f"{where}, column '{c}'") for p in problems):
                bad(c, f"a {kind} outcome needs {', '.join(cols)}; this cell is empty")

    if kind in ("binary", "proportion"):
        need("events", "total")
        ev, tot = numbers["events"], numbers["total"]
        if tot is not None and tot <= 0:
            bad("total", f"{tot:g} participants: the total must be > 0")
        if ev is not None and ev < 0:
            bad("events", f"{ev:g} events: events cannot be negative")
        for c, x in (("events", ev), ("total", tot)):
            if x is not None and x != int(x):
                bad(c, f"{x:g} is not a whole number; counts are whole numbers")
        if ev is not None and tot is not None and ev > tot:
            bad("events", f"{ev:g} events out of {tot:g}: events cannot exceed total")
    elif kind == "continuous":
        need("mean", "sd", "n")
        if numbers["sd"] is not None and numbers["sd"] <= 0:
            bad("sd", f"sd {numbers['sd']:g} must be > 0 (a standard deviation, not a variance or SE?)")
        if numbers["n"] is not None and numbers["n"] <= 0:
            bad("n", f"n {numbers['n']:g} must be > 0")
    elif kind == "generic":
        if numbers["estimate"] is None:
            bad("estimate", "a generic (contrast) row needs an estimate with se or ci_lower and ci_upper")
        has_se = numbers["se"] is not None
        has_ci = numbers["ci_lower"] is not None and numbers["ci_upper"] is not None
        if not has_se and not has_ci:
            bad("se", "give se, or both ci_lower and ci_upper")
        if has_se and numbers["se"] <= 0:
            bad("se", f"se {numbers['se']:g} must be > 0")
        if has_ci and numbers["ci_lower"] >= numbers["ci_upper"]:
            bad("ci_lower", f"ci_lower {numbers['ci_lower']:g} must be below ci_upper {numbers['ci_upper']:g}")
        if scale not in SCALES:
            bad(
                "scale",
                f"{scale or '(empty)'!r}: say whether the estimate is a 'ratio' (OR, RR, HR on their natural "
                f"scale) or a 'difference' (MD, RD, log ratio)",
            )
        elif scale == "ratio":
            for c in ("estimate", "ci_lower", "ci_upper"):
                if numbers[c] is not None and numbers[c] <= 0:
                    bad(
                        c,
                        f"{numbers[c]:g} is not a ratio (ratios are > 0); give it on its natural scale or use "
                        f"scale 'difference' for a log ratio",
                    )
    if problems:
        raise ExtractionError("; ".join(problems), by_field)
    assert study is not None and outcome is not None and extractor is not None
    return ExtractionRow(
        line=line,
        study=study,
        outcome=outcome,
        arm=arm,
        group_label=_text(raw.get("group_label")),
        scale=scale if kind == "generic" else None,
        subgroup=_text(raw.get("subgroup")),
        extractor=extractor,
        extracted_on=extracted_on,
        source_ref=_text(raw.get("source_ref")),
        notes=_text(raw.get("notes")),
        **numbers,
    )


def parse_extraction(text: str, outcomes: Mapping[str, str], source: str = "extraction.csv") -> list[ExtractionRow]:
    """Read and validate a whole extraction CSV.

    Args:
        text: the file's text (UTF-8, a BOM is tolerated).
        outcomes: outcome id -> kind, from review.toml.
        source: the file name used in messages.
    Returns:
        the validated rows in file order (blank lines skipped).
    Raises:
        ExtractionError: one message listing the problems (file, line, column; at most 25, then a count),
            including rows that describe the same study, outcome, arm, group and subgroup twice; or that the
            file holds no data rows.
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise ExtractionError(
            f"{source}: the file is empty; it needs the header {','.join(COLUMNS)} "
            f"(write one with `livingmeta extract template REVIEW OUTCOME`)"
        )
    unknown = [h for h in header if h not in COLUMNS]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f"unknown column(s) {', '.join(map(repr, unknown))}")
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        raise ExtractionError(f"{source}, line 1 (header): {'; '.join(parts)}; the columns are {','.join(COLUMNS)}")
    reader.fieldnames = header
    rows: list[ExtractionRow] = []
    problems: list[str] = []
    seen: dict[tuple, int] = {}
    for raw in reader:
        line = reader.line_num
        if None in raw:
            problems.append(f"{source}, line {line}: more cells than header columns (an unquoted comma?)")
            continue
        if all(_blank(v) for v in raw.values()):
            continue
        try:
            row = validate_row(raw, outcomes, where=f"{source}, line {line}", line=line)
        except ExtractionError as e:
            problems.append(str(e))
            continue
        slot = row.slot(row.study)
        if slot in seen:
            problems.append(
                f"{source}, line {line}: the same study, outcome, arm, group_label and subgroup as line "
                f"{seen[slot]}; keep one row (a correction replaces the stored row on import)"
            )
            continue
        seen[slot] = line
        rows.append(row)
    if problems:
        shown = problems[:MAX_MESSAGES]
        more = f" … and {len(problems) - MAX_MESSAGES} more problem(s)" if len(problems) > MAX_MESSAGES else ""
        raise ExtractionError(
            f"{source}: nothing was imported; fix these and import again: " + " | ".join(shown) + more
        )
    if not rows:  # a header alone imports nothing: say so rather than report "0 rows" as if it had worked
        raise ExtractionError(
            f"{source}: the file holds no data rows (only the header); nothing was imported. "
            f"Fill in one row per study arm (`livingmeta extract template REVIEW OUTCOME` "
            f"prefills the included studies) and import again"
        )
    return rows


def read_extraction(path: str | Path, outcomes: Mapping[str, str]) -> list[ExtractionRow]:
    """`parse_extraction` for a file on disk (messages name the file).

    Raises:
        ExtractionError: as parse_extraction, or when the file cannot be used (see
            `livingmeta.userfiles.read_user_text`: missing, a folder, unreadable, too large, binary, not UTF-8).
    """
    from livingmeta.userfiles import MAX_CSV_BYTES, UserFileError, read_user_text

    p = Path(path)
    try:
        text = read_user_text(
            p,
            what="extraction CSV",
            max_bytes=MAX_CSV_BYTES,
            empty_hint=f"it needs the header {','.join(COLUMNS)} and one row per study arm "
            f"(write one with `livingmeta extract template REVIEW OUTCOME`)",
        )
    except UserFileError as e:
        raise ExtractionError(str(e)) from None
    return parse_extraction(text, outcomes, source=str(p))


def template_rows(study_ids: list[str], outcome: str, kind: str) -> list[dict[str, str]]:
    """Blank rows to fill in: one per study x arm of the outcome's kind.

    Args:
        study_ids: included studies, in the order to show.
        outcome: the outcome id.
        kind: its kind (decides the arms: treatment+control, single, or one contrast row).
    Returns:
        dicts with every column of COLUMNS (study, outcome, arm prefilled).
    """
    arms = {
        "binary": ("treatment", "control"),
        "proportion": ("treatment",),
        "continuous": ("treatment", "control"),
        "generic": ("contrast",),
    }[kind]
    out = []
    for s in study_ids:
        for a in arms:
            row = {c: "" for c in COLUMNS}
            row.update(study=s, outcome=outcome, arm=a)
            out.append(row)
    return out
