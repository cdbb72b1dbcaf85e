"""The one driver of a source run: window -> fetch pages -> store in one transaction with the watermark -> summary.

PubMed (`tasks.pubmed.PubMedRun`) and ClinicalTrials.gov (`tasks.ctgov.CtgovRun`) supply only their own pieces
(`SourceRun`: how to pick the window, how to fetch and parse it, what else their summary says); the steps,
their order, the crash-test kill points (`<source>-fetched`, `<source>-stored`), the failure handling and the
summary's common keys are the same for both (see `livingmeta.sources.run` for the contract).

Never raises on source trouble: a failure while fetching or storing marks the run failed with a redacted
message (the watermark stays, nothing of the run is stored) and returns the summary with status "failed".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol

from livingmeta.redaction import safe_message
from livingmeta.sources.changes import IngestCounts
from livingmeta.sources.run import Fetch, Window, failed_summary, run_summary, succeeded_summary
from tasks import runtime
from warehouse import opened
from warehouse.ingest import fail_search_run, finish_search_run, get_watermark, start_search_run, watermark_query


class SourceRun(Protocol):
    """One source's pieces of a run."""

    source: str  # "pubmed" / "ctgov"
    mode: str  # "live" / "replay"
    query: str  # the search as stored on the run (search_definitions / search_runs.query)
    earliest_date: dt.date

    def window(self, watermark: dt.datetime | None, last_query: str | None, as_of: dt.datetime) -> Window:
        """What to search, from the last committed watermark and the query of the run that set it."""
        ...

    def fetch(self, window: Window) -> Fetch:
        """Fetch and parse every page of the window (nothing written); raise on any problem."""
        ...

    @property
    def requests(self) -> int:
        """HTTP requests sent so far (0 for a replay)."""
        ...

    def summary(self, fetch: Fetch, counts: IngestCounts) -> dict[str, Any]:
        """What only this source reports about a stored run."""
        ...


def run_source(src: SourceRun, *, review_id: str, warehouse: str, update_id: int | None, as_of: dt.datetime,
               now: Callable[[], dt.datetime]) -> dict:
    """Run one search of one source through the four steps and return its summary (never raises on source
    trouble; see the module docstring)."""
    with opened(warehouse) as con:
        window = src.window(get_watermark(con, review_id, src.source), watermark_query(con, review_id, src.source),
                            as_of)
        run_id = start_search_run(con, review_id=review_id, source=src.source, query=src.query, mode=src.mode,
                                  window_start=window.run_start, window_end=as_of, now=now(), update_id=update_id,
                                  earliest_date=src.earliest_date)
    head = run_summary(src.source, run_id, src.mode, window)
    try:
        got = src.fetch(window)
    except Exception as e:  # noqa: BLE001 - any failure fails this source's run (redacted), never the flow
        return _failed(warehouse, run_id, head, safe_message(e), src, now)
    try:
        runtime.kill_point(f"{src.source}-fetched")  # crash tests: fetched, nothing stored yet
        try:
            with opened(warehouse) as con:
                counts = finish_search_run(con, run_id=run_id, review_id=review_id, source=src.source,
                                           fetched=got.fetched, watermark=as_of, now=now(), n_found=got.n_found,
                                           n_requests=src.requests, skipped=got.skipped,
                                           unrequested=got.unrequested, deletions=got.deletions)
        except Exception as e:  # noqa: BLE001 - the transaction rolled back; say so instead of stopping other sources
            return _failed(warehouse, run_id, head,
                           f"storing the records failed, nothing was stored: {safe_message(e)}", src, now)
    finally:
        got.close()  # a spool's temporary file
    runtime.kill_point(f"{src.source}-stored")  # crash tests: committed, nothing after it done yet
    return succeeded_summary(head, counts, src.requests, src.summary(got, counts))


def _failed(warehouse: str, run_id: int, head: dict, error: str, src: SourceRun,
            now: Callable[[], dt.datetime]) -> dict:
    # `error` is redacted: it is stored, returned to Prefect and printed
    with opened(warehouse) as con:
        fail_search_run(con, run_id, error, now(), src.requests)
    return failed_summary(head, error, src.requests)
