"""The Record: one bibliographic or registry record, normalised the same way for every source.

A record is what a source says about one item (a PubMed citation, a ClinicalTrials.gov entry).
Its `content_hash` covers everything normalised, so a re-fetch that changes nothing a reviewer
would see is recognised as unchanged, and any real change (new PMID version, retraction, status
change, posted results) yields a new hash and therefore a new row in `record_versions`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

SOURCES = ("pubmed", "ctgov")

NCT_RE = re.compile(r"\bNCT\s?(\d{8})\b", re.IGNORECASE)
ISRCTN_RE = re.compile(r"\bISRCTN\s?(\d{8})\b", re.IGNORECASE)
EUDRACT_RE = re.compile(r"\b(?:EudraCT(?:\s+(?:No\.?|number))?[:\s]*)?((?:19|20)\d{2}-\d{6}-\d{2})\b", re.IGNORECASE)
DOI_RE = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+)", re.IGNORECASE)


@dataclass
class Record:
    """A normalised record from one source.

    Attributes:
        source: "pubmed" or "ctgov".
        source_id: the source's own id (PMID, NCT id).
        source_version: the source's revision marker (PMID Version, last update date), if any.
        title, abstract: plain text (markup flattened).
        authors: "Family Initials" strings in source order.
        journal, year, month: where/when published (for a registry entry: sponsor, first posted).
        doi, pmcid: identifiers (DOI lower-cased, no "https://doi.org/").
        language: ISO 639-2 code as given by the source.
        publication_types: source publication types (PubMed) or study type/design words (registry).
        is_rct: True when the source marks the record as a randomised controlled trial.
        mesh: MeSH headings, "Descriptor" or "Descriptor/Qualifier".
        keywords: author keywords.
        registry_ids: trial registry ids (NCT01234567, ISRCTN12345678, EudraCT 2015-002624-31).
        deleted: the source withdrew the record (PubMed DeleteCitation); it is kept, marked.
        retracted: the record is retracted or is a retraction notice target.
        corrections: links to errata, retractions, expressions of concern: {"type", "pmid", "text"}.
        extra: source-specific normalised fields (registry status, dates, design, results summary).
    """

    source: str
    source_id: str
    source_version: str | None = None
    title: str = ""
    abstract: str = ""
    authors: list[str] = field(default_factory=list)
    journal: str | None = None
    year: int | None = None
    month: int | None = None
    doi: str | None = None
    pmcid: str | None = None
    language: str | None = None
    publication_types: list[str] = field(default_factory=list)
    is_rct: bool = False
    mesh: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    registry_ids: list[str] = field(default_factory=list)
    deleted: bool = False
    retracted: bool = False
    corrections: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def record_id(self) -> str:
        """The warehouse key: "<source>:<source_id>", e.g. "pubmed:33766992"."""
        return make_record_id(self.source, self.source_id)

    def to_dict(self) -> dict[str, Any]:
        """All fields as plain JSON-able values."""
        return asdict(self)

    def content_hash(self) -> str:
        """sha256 of the canonical JSON of every normalised field.

        Returns:
            64 hex characters; equal for records a reviewer could not tell apart.
        """
        return hash_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        """Rebuild a record from `to_dict()` output (unknown keys are refused)."""
        return cls(**data)


def make_record_id(source: str, source_id: str) -> str:
    """The warehouse key for a source's id."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    return f"{source}:{source_id}"


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def hash_json(value: Any) -> str:
    """sha256 hex digest of `canonical_json(value)`."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def hash_bytes(payload: bytes) -> str:
    """sha256 hex digest of raw bytes (for `raw_records.payload_hash`)."""
    return hashlib.sha256(payload).hexdigest()


def find_registry_ids(text: str) -> list[str]:
    """Trial registry ids mentioned in free text, normalised and in order of first mention.

    Args:
        text: a title, abstract or any free text.
    Returns:
        ids such as "NCT02637700", "ISRCTN63918259", "EudraCT 2015-002624-31" (no duplicates).
    """
    found: list[tuple[int, str]] = []
    for m in NCT_RE.finditer(text or ""):
        found.append((m.start(), "NCT" + m.group(1)))
    for m in ISRCTN_RE.finditer(text or ""):
        found.append((m.start(), "ISRCTN" + m.group(1)))
    for m in EUDRACT_RE.finditer(text or ""):
        # a bare yyyy-nnnnnn-nn is only taken when "EudraCT" precedes it
        if m.group(0).lower().startswith("eudract"):
            found.append((m.start(), "EudraCT " + m.group(1)))
    out: list[str] = []
    for _, rid in sorted(found):
        if rid not in out:
            out.append(rid)
    return out


def normalise_registry_id(value: str) -> str | None:
    """One registry id in canonical form, or None when it is not a known registry id."""
    ids = find_registry_ids(value)
    if ids:
        return ids[0]
    m = re.fullmatch(r"\s*((?:19|20)\d{2}-\d{6}-\d{2})\s*", value or "")
    return f"EudraCT {m.group(1)}" if m else None


def normalise_doi(value: str | None) -> str | None:
    """A DOI lower-cased without resolver prefix, or None."""
    if not value:
        return None
    v = value.strip()
    v = re.sub(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", "", v, flags=re.IGNORECASE)
    m = DOI_RE.search(v)
    return m.group(1).rstrip(".,;").lower() if m else None
