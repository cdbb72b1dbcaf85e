"""Records a source sent that were left out: what every source parser returns instead of failing a page.

A skipped record is never silent. The search task stores it with the run (`source_record_skips`, a count in
`search_runs.n_skipped`) and raises an alert (kind `source_record_skipped`) in the same transaction that
stores the others, so `livingmeta status` and the alert channels show it; see `tasks/pubmed.py` and
`tasks/ctgov.py` for why the run still succeeds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SkippedRecord:
    """One record of a source answer that could not be read.

    Attributes:
        source: "pubmed" or "ctgov".
        source_id: the PMID or NCT id when it could be read, else None.
        field: the field (path) that was wrong, e.g. "protocolSection.designModule.phases" or "xml".
        problem: what was wrong, for people (names the record, the field, what was expected and found).
        payload: the record's bytes/JSON text as received (kept so it can be inspected and re-read later).
    """

    source: str
    source_id: str | None
    field: str
    problem: str
    payload: str | None = None

    @property
    def label(self) -> str:
        """`PMID 123` / `NCT0123` / `an unnamed record` for messages."""
        if not self.source_id:
            return "an unnamed record"
        return f"PMID {self.source_id}" if self.source == "pubmed" else self.source_id
