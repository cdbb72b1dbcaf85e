"""Study tables: detecting the data kind from column names, validating every cell.

Column names follow shared/reference/README.md:

- binary (two arms): study, treat_events, treat_total, control_events, control_total
- proportion (one arm): study, events, total
- continuous (two arms): study, treat_mean, treat_sd, treat_n, control_mean, control_sd, control_n
- generic inverse variance: study, estimate, se   or   study, estimate, ci_lower, ci_upper

Optional: year, n (participants, generic data only) and any other column (e.g. a subgroup).

metafor's escalc() names are accepted too, when none of the names above is used: ai, bi, ci, di (events and
non-events per arm) or ai, n1i, ci, n2i (binary); m1i, sd1i, n1i, m2i, sd2i, n2i (continuous); xi, ni
(proportion); yi with vi or sei (generic). Messages then name the file's own columns.

An empty data cell does not refuse the file: the row stays in the table, is "not estimable" and says why
(metafor drops rows with NA with a note; RevMan shows them as "Not estimable"). A cell that is not a
number is still an error naming the row and column.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from livingmeta.stats.errors import StatsInputError

BINARY_COLUMNS = ("treat_events", "treat_total", "control_events", "control_total")
PROPORTION_COLUMNS = ("events", "total")
CONTINUOUS_COLUMNS = ("treat_mean", "treat_sd", "treat_n", "control_mean", "control_sd", "control_n")
GENERIC_SE_COLUMNS = ("estimate", "se")
GENERIC_CI_COLUMNS = ("estimate", "ci_lower", "ci_upper")

KINDS = ("binary", "proportion", "continuous", "generic")
OUR_DATA_COLUMNS = set(
    BINARY_COLUMNS + PROPORTION_COLUMNS + CONTINUOUS_COLUMNS + GENERIC_SE_COLUMNS + GENERIC_CI_COLUMNS
)
# escalc() name sets, first match wins: our column <- escalc column ("a+b": the sum of two count columns,
# "sqrt:v": the square root of a variance column)
ESCALC_SETS = (
    (
        "continuous",
        {
            "treat_mean": "m1i",
            "treat_sd": "sd1i",
            "treat_n": "n1i",
            "control_mean": "m2i",
            "control_sd": "sd2i",
            "control_n": "n2i",
        },
    ),
    ("binary", {"treat_events": "ai", "treat_total": "n1i", "control_events": "ci", "control_total": "n2i"}),
    ("binary", {"treat_events": "ai", "treat_total": "ai+bi", "control_events": "ci", "control_total": "ci+di"}),
    ("proportion", {"events": "xi", "total": "ni"}),
    ("generic", {"estimate": "yi", "se": "sei"}),
    ("generic", {"estimate": "yi", "se": "sqrt:vi"}),
)
COUNT_COLUMNS = {
    "treat_events",
    "treat_total",
    "control_events",
    "control_total",
    "events",
    "total",
    "treat_n",
    "control_n",
}


@dataclass(frozen=True)
class StudyTable:
    """Validated study rows: names, numeric columns as float arrays, and where each row came from."""

    kind: str
    studies: tuple[str, ...]
    values: Mapping[str, np.ndarray]
    locations: tuple[str, ...]
    frame: pd.DataFrame = field(repr=False)
    year: np.ndarray | None = None
    participants: np.ndarray | None = None
    missing: Mapping[int, str] = field(default_factory=dict)  # row position -> why it is not estimable

    @property
    def incomplete(self) -> np.ndarray:
        """Boolean (k,): rows with an empty data cell (they contribute nothing)."""
        out = np.zeros(len(self.studies), bool)
        out[list(self.missing)] = True
        return out

    def __len__(self) -> int:
        return len(self.studies)

    def take(self, index: Sequence[int]) -> StudyTable:
        """Return the rows at `index` (positions), keeping their original locations."""
        idx = np.asarray(index, dtype=int)
        return StudyTable(
            kind=self.kind,
            studies=tuple(self.studies[i] for i in idx),
            values={k: v[idx] for k, v in self.values.items()},
            locations=tuple(self.locations[i] for i in idx),
            frame=self.frame.iloc[idx],
            year=None if self.year is None else self.year[idx],
            participants=None if self.participants is None else self.participants[idx],
            missing={j: self.missing[int(i)] for j, i in enumerate(idx) if int(i) in self.missing},
        )


def _locations(frame: pd.DataFrame) -> tuple[str, ...]:
    source = frame.attrs.get("source")
    lines = frame.attrs.get("lines")
    if source is not None and lines is not None and len(lines) == len(frame):
        return tuple(f"{source}, line {line}" for line in lines)
    return tuple(f"row {i + 1}" for i in range(len(frame)))


def _is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str) and value.strip() == "":
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _number(value: Any, where: str, column: str) -> float:
    if _is_blank(value):
        raise StatsInputError(f"{where}, column '{column}': the cell is empty; fill in a number or remove the row")
    if isinstance(value, (bool, np.bool_)):
        raise StatsInputError(f"{where}, column '{column}': {value!r} is not a number; write a number")
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise StatsInputError(
            f"{where}, column '{column}': {value!r} is not a number; write a number "
            f"(use '.' as the decimal mark, no units or thousands separators)"
        ) from None
    if not math.isfinite(number):
        raise StatsInputError(f"{where}, column '{column}': {value!r} is not a finite number; write a number")
    return number


def _parse_cell(value: Any, where: str, column: str) -> float:
    """A number, or NaN for an empty cell; anything else that is not a number is an error."""
    if _is_blank(value):
        return math.nan
    return _number(value, where, column)


def _escalc_names(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """Translate metafor escalc() column names into ours (a new frame with our columns added).

    Returns (frame, names) with names mapping each of our columns to the file's column it came from, for
    messages; the frame is returned unchanged (names empty) when it uses our names or no escalc set fits.
    """
    columns = {str(c) for c in frame.columns}
    if columns & OUR_DATA_COLUMNS or frame.attrs.get("column_names"):
        return frame, dict(frame.attrs.get("column_names") or {})
    for _kind, mapping in ESCALC_SETS:
        sources = {src.split(":")[-1] for spec in mapping.values() for src in spec.split("+")}
        if sources <= columns:
            break
    else:
        return frame, {}
    locations = _locations(frame)
    records = frame.to_dict("records")
    out = frame.copy()
    names: dict[str, str] = {}
    for ours, spec in mapping.items():
        if spec.startswith("sqrt:"):
            col = spec[5:]
            vals = []
            for i, rec in enumerate(records):
                v = _parse_cell(rec.get(col), locations[i], col)
                if v <= 0:
                    raise StatsInputError(
                        f"{locations[i]}, column '{col}': the sampling variance is {v:g}; it must be greater than 0"
                    )
                vals.append(math.sqrt(v))
            names[ours] = col
        elif "+" in spec:
            a, b = spec.split("+")
            vals = []
            for i, rec in enumerate(records):
                x, y = _parse_cell(rec.get(a), locations[i], a), _parse_cell(rec.get(b), locations[i], b)
                for col, v in ((a, x), (b, y)):
                    if v < 0 or (math.isfinite(v) and v != round(v)):
                        raise StatsInputError(
                            f"{locations[i]}, column '{col}': {v:g} is not a count; events and "
                            f"non-events must be whole numbers, 0 or more"
                        )
                vals.append(x + y)
            names[ours] = b  # a group size of 0 or an empty total is about the non-events column
        else:
            vals = [rec.get(spec) for rec in records]
            names[ours] = spec
        out[ours] = vals
    out.attrs.update(frame.attrs)
    out.attrs["column_names"] = names
    out.attrs["column_sources"] = {
        ours: [src.split(":")[-1] for src in spec.split("+")] for ours, spec in mapping.items()
    }
    return out, names


def detect_kind(columns: Sequence[str]) -> str:
    """Return the data kind implied by `columns` (binary, proportion, continuous or generic).

    Raises StatsInputError naming the missing columns when the columns fit no kind.
    """
    cols = set(columns)
    if "study" not in cols:
        raise StatsInputError("column 'study' is missing; add a 'study' column with one label per row")
    candidates = [
        ("binary", BINARY_COLUMNS),
        ("continuous", CONTINUOUS_COLUMNS),
        ("proportion", PROPORTION_COLUMNS),
        ("generic", GENERIC_SE_COLUMNS),
        ("generic", GENERIC_CI_COLUMNS),
    ]
    for kind, required in candidates:
        if all(c in cols for c in required):
            return kind
    best_kind, best_required = max(candidates, key=lambda kr: sum(c in cols for c in kr[1]) / len(kr[1]))
    missing = [c for c in best_required if c not in cols]
    raise StatsInputError(
        f"the columns do not describe any data kind; closest is {best_kind} data, which also needs "
        f"column(s) {', '.join(repr(m) for m in missing)} (found: {', '.join(sorted(cols))}). "
        f"See shared/reference/README.md for the column names"
    )


def _required_columns(kind: str, columns: Sequence[str]) -> tuple[str, ...]:
    if kind == "binary":
        return BINARY_COLUMNS
    if kind == "proportion":
        return PROPORTION_COLUMNS
    if kind == "continuous":
        return CONTINUOUS_COLUMNS
    if kind == "generic":
        return GENERIC_SE_COLUMNS if "se" in columns else GENERIC_CI_COLUMNS
    raise StatsInputError(f"unknown data kind {kind!r}; use one of {', '.join(KINDS)}")


def _to_frame(rows: Any) -> pd.DataFrame:
    if isinstance(rows, pd.DataFrame):
        return rows
    if isinstance(rows, StudyTable):
        return rows.frame
    if isinstance(rows, Mapping):
        raise StatsInputError("rows must be a table (DataFrame or list of dicts), not a single dict")
    try:
        rows = list(rows)
    except TypeError:
        raise StatsInputError(
            f"rows must be a pandas DataFrame or a list of dicts, not {type(rows).__name__}"
        ) from None
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise StatsInputError(f"row {i + 1}: expected a dict of column -> value, got {type(row).__name__}")
    return pd.DataFrame.from_records(rows)


def parse_table(rows: Any, kind: str | None = None) -> StudyTable:
    """Validate study rows and return a StudyTable.

    Parameters
    ----------
    rows : DataFrame, list of dicts, or StudyTable
        Study data with the column names listed in the module docstring.
    kind : str, optional
        binary, proportion, continuous or generic; detected from the columns when None.

    Returns
    -------
    StudyTable

    Raises
    ------
    StatsInputError
        For missing columns, empty or non-numeric cells, events > total, negative or zero
        group sizes, sd <= 0, or an inconsistent confidence interval; the message names the
        row (or file and line) and column.
    """
    if isinstance(rows, StudyTable) and (kind is None or kind == rows.kind):
        return rows
    frame = _to_frame(rows)
    if len(frame) == 0:
        raise StatsInputError("there are no study rows; add at least one study")
    frame, names = _escalc_names(frame)
    columns = [str(c) for c in frame.columns]
    if kind is None:
        kind = detect_kind(columns)
    elif kind not in KINDS:
        raise StatsInputError(f"unknown data kind {kind!r}; use one of {', '.join(KINDS)}")
    if "study" not in columns:
        raise StatsInputError("column 'study' is missing; add a 'study' column with one label per row")
    required = _required_columns(kind, columns)
    missing = [c for c in required if c not in columns]
    if missing:
        raise StatsInputError(
            f"{kind} data need column(s) {', '.join(repr(m) for m in missing)}; add them (found: {', '.join(columns)})"
        )
    locations = _locations(frame)
    records = frame.to_dict("records")
    studies = []
    for i, rec in enumerate(records):
        name = rec.get("study")
        if _is_blank(name):
            raise StatsInputError(
                f"{locations[i]}, column 'study': the study label is empty; give every row a study label"
            )
        studies.append(str(name).strip())

    values = {c: np.empty(len(records)) for c in required}
    missing: dict[int, str] = {}
    sources = frame.attrs.get("column_sources") or {}
    for i, rec in enumerate(records):
        empty: list[str] = []
        for c in required:
            values[c][i] = _parse_cell(rec.get(c), locations[i], names.get(c, c))
            if math.isnan(values[c][i]):
                # name the file's own empty cells (a total computed as ai + bi is empty when ai or bi is)
                cells = [src for src in sources.get(c, []) if _is_blank(rec.get(src))] or [names.get(c, c)]
                empty.extend(x for x in cells if x not in empty)
        if empty:
            missing[i] = (
                f"not estimable: {'cell' if len(empty) == 1 else 'cells'} "
                f"{', '.join(repr(e) for e in empty)} {'is' if len(empty) == 1 else 'are'} empty"
            )
    _check_values(kind, values, locations, names)

    year = None
    if "year" in columns:
        year = np.array([_number(rec.get("year"), locations[i], "year") for i, rec in enumerate(records)])
    participants = None
    if kind == "binary":
        participants = values["treat_total"] + values["control_total"]
    elif kind == "proportion":
        participants = values["total"].copy()
    elif kind == "continuous":
        participants = values["treat_n"] + values["control_n"]
    elif "n" in columns:
        participants = np.array(
            [
                np.nan if _is_blank(rec.get("n")) else _number(rec.get("n"), locations[i], "n")
                for i, rec in enumerate(records)
            ]
        )
    return StudyTable(
        kind=kind,
        studies=tuple(studies),
        values=values,
        locations=locations,
        frame=frame,
        year=year,
        participants=participants,
        missing=missing,
    )


def _check_values(
    kind: str, values: Mapping[str, np.ndarray], locations: Sequence[str], names: Mapping[str, str] | None = None
) -> None:
    # empty cells are NaN here (their rows are not estimable): every check below skips them
    names = dict(names or {})
    values = {names.get(c, c): arr for c, arr in values.items()}
    counts = {names.get(c, c) for c in COUNT_COLUMNS}
    for c, arr in values.items():
        if c in counts:
            for i, v in enumerate(arr):
                if math.isnan(v):
                    continue
                if v < 0:
                    raise StatsInputError(
                        f"{locations[i]}, column '{c}': {v:g} is negative; counts and group sizes must be 0 or more"
                    )
                if v != round(v):
                    raise StatsInputError(
                        f"{locations[i]}, column '{c}': {v:g} is not a whole number; "
                        f"counts and group sizes must be whole numbers"
                    )
    pairs = {
        "binary": [("treat_events", "treat_total"), ("control_events", "control_total")],
        "proportion": [("events", "total")],
    }.get(kind, [])
    pairs = [(names.get(ev, ev), names.get(tot, tot)) for ev, tot in pairs]
    for ev, tot in pairs:
        for i in range(len(values[ev])):
            if values[tot][i] <= 0:
                raise StatsInputError(
                    f"{locations[i]}, column '{tot}': the group size is {values[tot][i]:g}; it must be at least 1"
                )
            if values[ev][i] > values[tot][i]:
                raise StatsInputError(
                    f"{locations[i]}, column '{ev}': {values[ev][i]:g} events is more than "
                    f"'{tot}' = {values[tot][i]:g}; events must not exceed the group size"
                )
    if kind == "continuous":
        for c in (names.get("treat_n", "treat_n"), names.get("control_n", "control_n")):
            for i, v in enumerate(values[c]):
                if v < 1:
                    raise StatsInputError(
                        f"{locations[i]}, column '{c}': the group size is {v:g}; it must be at least 1"
                    )
        for c in (names.get("treat_sd", "treat_sd"), names.get("control_sd", "control_sd")):
            for i, v in enumerate(values[c]):
                if v <= 0:
                    raise StatsInputError(
                        f"{locations[i]}, column '{c}': the standard deviation is {v:g}; "
                        f"it must be greater than 0 (an SE or a missing SD must be "
                        f"converted or the row removed)"
                    )
    if kind == "generic":
        se_col = names.get("se", "se")
        if se_col in values:
            for i, v in enumerate(values[se_col]):
                if v <= 0:
                    raise StatsInputError(
                        f"{locations[i]}, column '{se_col}': the standard error is {v:g}; it must be greater than 0"
                    )
        else:
            lo, est, hi = values["ci_lower"], values["estimate"], values["ci_upper"]
            for i in range(len(est)):
                if np.isnan([lo[i], est[i], hi[i]]).any():
                    continue
                if not lo[i] < hi[i]:
                    raise StatsInputError(
                        f"{locations[i]}, column 'ci_upper': the interval "
                        f"[{lo[i]:g}, {hi[i]:g}] is empty or reversed; "
                        f"ci_lower must be below ci_upper"
                    )
                if not lo[i] <= est[i] <= hi[i]:
                    raise StatsInputError(
                        f"{locations[i]}, column 'estimate': {est[i]:g} lies outside its "
                        f"interval [{lo[i]:g}, {hi[i]:g}]; check the row"
                    )


def read_meta_csv(path: str | Path) -> pd.DataFrame:
    """Read and validate a study CSV file.

    Parameters
    ----------
    path : str or Path
        A UTF-8 CSV with a header row and the column names listed in the module docstring.

    Returns
    -------
    pandas.DataFrame
        One row per study; numeric columns as floats (NaN for an empty cell), ``study`` as str, with
        our column names (escalc names are translated, the file's own columns kept beside them).
        ``df.attrs`` holds ``source`` (the path) and ``lines`` (the CSV line of each row) so later errors
        can name the line, ``kind``, ``column_names`` (our column -> the file's, for escalc files) and
        ``not_estimable``: [{study, line, reason}] for rows with an empty data cell.

    Raises
    ------
    StatsInputError
        Naming the file, line and column of the first problem found.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            rows: list[list[str]] = []
            lines: list[int] = []
            header: list[str] | None = None
            for record in reader:
                if not any(cell.strip() for cell in record):
                    continue
                if header is None:
                    header = [cell.strip() for cell in record]
                    continue
                rows.append(record)
                lines.append(reader.line_num)
    except FileNotFoundError:
        raise StatsInputError(f"{path}: file not found; check the path") from None
    except UnicodeDecodeError as exc:
        raise StatsInputError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8 CSV"
        ) from None
    except csv.Error as exc:
        raise StatsInputError(f"{path}: not a readable CSV file ({exc}); save it as comma-separated values") from None
    if header is None:
        raise StatsInputError(f"{path}: the file is empty; it needs a header row and one row per study")
    duplicates = sorted({c for c in header if header.count(c) > 1})
    if duplicates:
        raise StatsInputError(
            f"{path}, line 1: column(s) {', '.join(repr(d) for d in duplicates)} appear more "
            f"than once in the header; keep one of each"
        )
    if "" in header:
        raise StatsInputError(
            f"{path}, line 1, column {header.index('') + 1}: a header cell is empty; name every column"
        )
    for record, line in zip(rows, lines):
        if len(record) != len(header):
            raise StatsInputError(
                f"{path}, line {line}: {len(record)} cells but the header has {len(header)}; "
                f"check for a missing or extra comma"
            )
    frame = pd.DataFrame([[cell.strip() for cell in r] for r in rows], columns=header, dtype=object)
    frame.attrs["source"] = str(path)
    frame.attrs["lines"] = lines
    try:
        table = parse_table(frame)
    except StatsInputError as exc:
        message = str(exc)
        if not message.startswith(str(path)):
            message = f"{path}: {message}"
        raise StatsInputError(message) from None
    out = table.frame.copy()
    for c, arr in table.values.items():
        out[c] = arr
    out["study"] = list(table.studies)
    if table.year is not None:
        out["year"] = table.year
    out.attrs.update(table.frame.attrs)
    out.attrs["source"] = str(path)
    out.attrs["lines"] = lines
    out.attrs["kind"] = table.kind
    out.attrs["not_estimable"] = [
        {"study": table.studies[i], "line": lines[i], "reason": why} for i, why in sorted(table.missing.items())
    ]
    return out
