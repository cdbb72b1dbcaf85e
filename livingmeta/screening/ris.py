"""RIS export of records (for reference managers and ASReview LAB), and reading ASReview's RIS exports back.

Written and read with `rispy` (the library ASReview LAB itself uses for RIS). Each record carries:

- TY (JOUR for publications, DATA for registry entries), TI, AB, AU (one per author), PY, JO, DO, KW;
- AN, the source's own accession number (the PMID, or the NCT id), and UR, the record's page at PubMed or
  ClinicalTrials.gov: a reference manager shows both, and they identify the record without livingmeta;
- ID, our record id ("pubmed:123"), so that a file coming back maps to its records;
- N1 notes the way ASReview LAB reads labels from RIS (`asreview.data.ris`, LAB 1.x to 3.x): "ASReview_relevant"
  (1), "ASReview_irrelevant" (0) or "ASReview_not_seen" (no label), and "livingmeta_export: N", the export the
  file came from (ASReview keeps notes that are not its own, so the note comes back in its export).

ASReview LAB's RIS export writes the label first in N1 and every other result column as a note
"asreview_<column>: <JSON value>" (`asreview_time`, `asreview_note`, `asreview_user_name`, ...);
`read_asreview_ris` turns such a file into rows shaped like ASReview's CSV export, so both are imported by
the same rules (`livingmeta.screening.decisions`).
Reference: RIS format specification (Research Information Systems, 2011); ASReview LAB `asreview/data/ris.py`.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import rispy

# ASReview LAB's label notes (asreview.data.ris.RIS_NOTE_LABEL_MAPPING)
LABEL_NOTES = {1: "ASReview_relevant", 0: "ASReview_irrelevant", None: "ASReview_not_seen"}
NOTE_LABELS = {v: k for k, v in LABEL_NOTES.items()}
EXPORT_NOTE = "livingmeta_export"


class _RisWriter(rispy.RisWriter):
    """rispy's writer without the "1." line it puts before each record (not part of the RIS format)."""

    def set_header(self, count: int) -> str:
        return ""


def _clean(value: Any) -> str:
    # RIS is line-based: a newline inside a value would start a bogus tag
    return " ".join(str(value).split())


def record_url(source: str | None, source_id: str) -> str | None:
    """The record's page at its source (PubMed or ClinicalTrials.gov), None for another source."""
    if source == "pubmed":
        return f"https://pubmed.ncbi.nlm.nih.gov/{source_id}/"
    if source == "ctgov":
        return f"https://clinicaltrials.gov/study/{source_id}"
    return None


def format_ris(records: Iterable[Mapping[str, Any]], export_id: int | None = None) -> str:
    """Records as RIS text (see the module docstring for the tags).

    Args:
        records: mappings with record_id (ours), title, abstract, authors (list), year, doi, journal,
            keywords (list), source ("pubmed" | "ctgov"), source_id (PMID / NCT id; default: from record_id),
            included (1, 0, or blank/None: no label).
        export_id: the export this file is (written as an N1 note), or None.
    Returns:
        RIS text, one TY ... ER record per mapping.
    """
    refs = []
    for r in records:
        source = r.get("source")
        source_id = str(r.get("source_id") or str(r["record_id"]).split(":", 1)[-1])
        ref: dict[str, Any] = {"type_of_reference": "DATA" if source == "ctgov" else "JOUR"}
        if r.get("title"):
            ref["title"] = _clean(r["title"])
        if r.get("abstract"):
            ref["abstract"] = _clean(r["abstract"])
        if r.get("authors"):
            ref["authors"] = [_clean(a) for a in r["authors"]]
        if r.get("year"):
            ref["year"] = str(int(r["year"]))
        if r.get("journal"):
            ref["journal_name"] = _clean(r["journal"])
        if r.get("doi"):
            ref["doi"] = _clean(r["doi"])
        if r.get("keywords"):
            ref["keywords"] = [_clean(k) for k in r["keywords"]]
        label = r.get("included")
        label = None if label in (None, "") else int(label)
        ref["notes"] = [LABEL_NOTES[label]] + ([f"{EXPORT_NOTE}: {int(export_id)}"] if export_id is not None else [])
        ref["accession_number"] = _clean(source_id)
        url = record_url(source, source_id)
        if url:
            ref["urls"] = [url]
        ref["id"] = _clean(r["record_id"])
        refs.append(ref)
    text = rispy.dumps(refs, implementation=_RisWriter)
    return text


def _note_value(raw: str) -> str:
    """An "asreview_<column>: <JSON>" note's value as text ('' for null)."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw.strip()
    return "" if value is None else str(value)


def read_asreview_ris(text: str) -> list[tuple[int, dict[str, str]]]:
    """ASReview LAB's RIS export as rows shaped like its CSV export, with the line each record starts on.

    Args:
        text: the RIS file's text.
    Returns:
        (line, row) per record, row keys: livingmeta_id (ID), record_id (ASReview's number, when written),
        doi, title, asreview_label ("1", "0" or "" from the label note), livingmeta_export, and every
        "asreview_<column>: value" note as its column (asreview_time, asreview_note, asreview_user_name, ...).
    Raises:
        ValueError: the text is not RIS (rispy cannot read it).
    """
    starts = [k for k, line in enumerate(text.splitlines(), 1) if re.match(r"^TY  - ", line)]
    refs = list(rispy.load(io.StringIO(text), skip_unknown_tags=True))
    if len(starts) != len(refs):
        starts = starts[: len(refs)] + [0] * max(0, len(refs) - len(starts))
    out = []
    for line, ref in zip(starts, refs):
        row = {
            "livingmeta_id": str(ref.get("id") or ""),
            "doi": str(ref.get("doi") or ""),
            "title": str(ref.get("title") or ref.get("primary_title") or ""),
            "asreview_label": "",
        }
        for note in ref.get("notes") or []:
            note = re.sub(r"^<p>|</p>$", "", str(note))  # Zotero wraps notes in <p>, as ASReview's reader knows
            if note in NOTE_LABELS:
                label = NOTE_LABELS[note]
                row["asreview_label"] = "" if label is None else str(label)
            elif note.startswith(EXPORT_NOTE + ":"):
                row["livingmeta_export"] = note.split(":", 1)[1].strip()
            elif re.match(r"^asreview_\w+: ", note):
                col, raw = note.split(": ", 1)
                row[col.lower()] = _note_value(raw)
        out.append((line, row))
    return out
