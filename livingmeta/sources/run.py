"""The source-run contract shared by PubMed and ClinicalTrials.gov (the pure parts).

Every search of every source goes through the same four steps (`tasks.source_run.run_source` drives them):

1. window: from the last committed watermark (and the query that set it) and `as_of`, the source decides what
   to search (`Window`); a `running` search run is committed with it.
2. fetch: the source fetches and parses every page of the window (`Fetch`); nothing is written meanwhile.
   Any failure fails the run (redacted message) and leaves the watermark where it was.
3. store: the fetched records, skips and the new watermark (`as_of`) are written in ONE transaction
   (`warehouse.ingest.finish_search_run`; what counts as changed: `livingmeta.sources.changes`).
4. summary: one dict per run (`run_summary` / `failed_summary`): source, run_id, mode, the window's own fields,
   status, the counts and requests, then what only that source reports.

A source supplies only its own window, fetch and extra summary fields (`tasks.pubmed.PubMedRun`,
`tasks.ctgov.CtgovRun`); its client settings come the same way for both (the flow's `tasks.runtime.configure`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from collections.abc import Iterable
from typing import Any

from livingmeta.sources.changes import Fetched, IngestCounts
from livingmeta.sources.skips import SkippedRecord


@dataclass(frozen=True)
class Window:
    """What one run searches.

    Attributes:
        start: the first day searched (records updated or entered since then).
        end: `as_of`, which becomes the new watermark when the run commits.
        run_start: what `search_runs.window_start` records (None: no window, e.g. PubMed replays).
        summary: the window as the run's summary tells it (each source keeps its own keys).
    """

    start: dt.date
    end: dt.datetime
    run_start: dt.datetime | None
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class Fetch:
    """Everything a run fetched, ready to store in one transaction.

    Attributes:
        fetched: records with their raw payloads (duplicates allowed: the last sighting wins); a list, or a
            `livingmeta.sources.spool.FetchedSpool` that keeps them on disk until they are stored (large runs).
        n_found: ids the source reported for the window (None: the number of distinct records stored).
        skipped: records received that could not be read (stored as skips, counted, alerted).
        unrequested: records (or ids) received that no request asked for (never stored as records).
        deletions: deletion notices (the record last known is stored marked deleted).
        summary: fields only this source reports (e.g. CT.gov's results_problems).
    """

    fetched: Iterable[Fetched]  # re-iterable: a list or a FetchedSpool
    n_found: int | None = None
    skipped: list[SkippedRecord] = field(default_factory=list)
    unrequested: list[Fetched | str] = field(default_factory=list)
    deletions: list[Fetched] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        """Let go of what a spool keeps on disk (nothing to do for a list)."""
        close = getattr(self.fetched, "close", None)
        if close is not None:
            close()


def day_start(day: dt.date) -> dt.datetime:
    """Midnight UTC of a day (how a window's first day is recorded on the run)."""
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)


def overlap_start(watermark: dt.datetime | None, overlap_days: int, earliest: dt.date) -> dt.date:
    """The first day to search: `overlap_days` before the last committed watermark, or `earliest` on a first
    run (records revised or indexed late just before the watermark are searched again)."""
    return earliest if watermark is None else (watermark - dt.timedelta(days=overlap_days)).date()


def run_summary(source: str, run_id: int, mode: str, window: Window) -> dict[str, Any]:
    """The part of a run's summary known before fetching (also what a failed run reports)."""
    return {"source": source, "run_id": run_id, "mode": mode, **window.summary}


def succeeded_summary(
    head: dict[str, Any], counts: IngestCounts, requests: int, extra: dict[str, Any]
) -> dict[str, Any]:
    return {**head, "status": "succeeded", **counts.as_dict(), "requests": requests, **extra}


def failed_summary(head: dict[str, Any], error: str, requests: int) -> dict[str, Any]:
    return {**head, "status": "failed", "error": error, "requests": requests}
