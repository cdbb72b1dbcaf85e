"""ClinicalTrials.gov search task and its one HTTP choke point (`CtgovClient`).

Nothing is lost or added silently:
- Paging is checked against what the registry announced: the first page is asked for `countTotal=true`, and
  the DISTINCT NCT ids received over all pages (a skipped study counts as received) must equal `totalCount`.
  A repeated page, paging that ends early or a page token seen twice (a loop) fails the search: nothing is
  stored, the watermark stays, and the message says "received N distinct of M announced" (or names the
  token), so the next run searches the same window again.
- A study that cannot be read (a field of the wrong type, no NCT id) is skipped by the parser, never the
  page. Decision: the run still stores every other study and SUCCEEDS (its watermark moves), and the skip is
  recorded durably in the same transaction — a `source_record_skips` row with the payload, the count in
  `search_runs.n_skipped` (shown by `livingmeta status`) and a `source_record_skipped` alert naming the NCT
  id and field. Failing the run instead would block every other study of the window behind one odd entry
  that would come back just as odd on every rerun.

Every error leaves through `CtgovError` (redacted when made): httpx errors quote the request URL.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
from prefect import task

from livingmeta.config import ConfigError, CtgovSource, ReviewConfig, load_review
from livingmeta.records import canonical_json
from livingmeta.redaction import RedactedError, redact_text, safe_message
from livingmeta.sources.changes import Fetched, IngestCounts
from livingmeta.sources.ctgov import (STUDIES_PATH, CtgovFormatError, StudiesPage, load_json, next_page_params,
                                      parse_studies_page, search_params, suggest_extraction_rows)
from livingmeta.sources.run import Fetch, Window, day_start, overlap_start
from livingmeta.sources.skips import SkippedRecord
from livingmeta.sources.spool import FetchedSpool
from tasks import runtime
from tasks.observe import redacts_exceptions, reports_source_state
from tasks.reviews import utcnow
from tasks.source_run import run_source

DEFAULT_BASE_URL = "https://clinicaltrials.gov"
MAX_PAGES = 10_000  # a loop guard: 10 million studies is more than the registry holds


class CtgovError(RedactedError, RuntimeError):
    """ClinicalTrials.gov could not be searched; the message says what happened and what to do (redacted)."""


class CtgovClient:
    """Every request to ClinicalTrials.gov goes through `get_page`: rate limit, retries and backoff live here.

    Args:
        base_url: e.g. "https://clinicaltrials.gov" (tests: "http://127.0.0.1:PORT").
        min_interval: seconds between the starts of two requests (the API asks for about 1 request/s).
        max_tries: attempts per page before giving up (429, 5xx, timeouts, truncated bodies are retried).
        backoff: first retry delay in seconds; doubled per attempt, with ±50% jitter, capped at `max_backoff`;
            a longer `Retry-After` from the server wins.
        timeout: seconds for connecting and reading one answer.
    """

    def __init__(self, base_url: str, min_interval: float = 1.0, max_tries: int = 5, backoff: float = 2.0,
                 timeout: float = 60.0, max_backoff: float = 120.0, sleep: Callable[[float], None] = time.sleep,
                 rng: Callable[[], float] = random.random):
        if max_tries < 1:
            raise ValueError("max_tries must be at least 1")
        self.url = base_url.rstrip("/") + STUDIES_PATH
        self.min_interval, self.max_tries, self.backoff, self.max_backoff = min_interval, max_tries, backoff, max_backoff
        self._sleep, self._rng = sleep, rng
        self._http = httpx.Client(timeout=timeout, follow_redirects=True,
                                  headers={"User-Agent": "livingmeta (living systematic review; +https://clinicaltrials.gov/data-api)",
                                           "Accept": "application/json"})
        self._last_start: float | None = None
        self.requests = 0
        self.retries = 0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "CtgovClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _throttle(self) -> None:
        if self._last_start is not None:
            wait = self.min_interval - (time.monotonic() - self._last_start)
            if wait > 0:
                self._sleep(wait)
        self._last_start = time.monotonic()

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1)) * (0.5 + self._rng())
        if retry_after:
            try:
                delay = max(delay, min(self.max_backoff, float(retry_after)))
            except ValueError:
                pass  # an HTTP-date Retry-After: our own backoff is as good
        return delay

    def get_page(self, params: dict[str, str]) -> StudiesPage:
        """Fetch and parse one page of `/api/v2/studies`.

        Raises:
            CtgovError: a refused request (4xx other than 429), or no good answer after `max_tries` attempts.
            CtgovFormatError: the answer is not a studies page.
        """
        try:
            return self._get_page(params)
        except (CtgovError, CtgovFormatError):
            raise
        except Exception as e:  # noqa: BLE001 - e.g. httpx errors, whose text holds the request URL
            raise CtgovError(f"ClinicalTrials.gov request failed ({safe_message(e)})") from None

    def _get_page(self, params: dict[str, str]) -> StudiesPage:
        last = "no attempt made"
        for attempt in range(1, self.max_tries + 1):
            self._throttle()
            runtime.take_rate_limit_slot("ctgov")  # shared with other processes when configured
            self.requests += 1
            retry_after = None
            try:
                resp = self._http.get(self.url, params=params)
            except httpx.TimeoutException as e:
                last = f"timed out ({type(e).__name__})"
            except httpx.TransportError as e:
                last = redact_text(f"connection failed ({type(e).__name__}: {e})")
            else:
                if resp.status_code == 429 or resp.status_code >= 500:
                    last = f"HTTP {resp.status_code}: {_body(resp, 200)}"
                    retry_after = resp.headers.get("Retry-After")
                elif resp.status_code != 200:
                    raise CtgovError(f"ClinicalTrials.gov refused the search (HTTP {resp.status_code}) for "
                                     f"{resp.request.url}: {_body(resp, 300)} — check [sources.ctgov] in review.toml")
                else:
                    try:
                        data = load_json(resp.content)  # one control character never fails the page
                    except (json.JSONDecodeError, UnicodeDecodeError) as e:
                        last = f"truncated or invalid JSON ({len(resp.content)} bytes: {e})"
                    else:
                        return parse_studies_page(data, where=str(resp.request.url))
            if attempt < self.max_tries:
                self.retries += 1
                self._sleep(self._delay(attempt, retry_after))
        raise CtgovError(f"ClinicalTrials.gov did not answer properly after {self.max_tries} attempts "
                         f"(last: {last}); the run is marked failed and the next run retries the same window")


def _body(resp: httpx.Response, limit: int) -> str:
    # redact the whole body before cutting it: a secret cut in half would no longer be recognised
    return (redact_text(resp.text) or "")[:limit].strip()


def fetch_studies(client: CtgovClient, first_params: dict[str, str],
                  skipped: list[SkippedRecord] | None = None) -> tuple[FetchedSpool, int | None, int]:
    """Every page of one search: (fetched records, totalCount reported by the first page, pages read).

    Studies the parser skipped are appended to `skipped` (when given).

    Raises:
        CtgovError: a page token came back twice (paging loops), the first page announced no totalCount, or the
            distinct NCT ids received differ from totalCount (a repeated page, paging that ended early).
    """
    fetched = FetchedSpool()  # on disk until stored (issue 15)
    try:
        return _fetch_pages(client, first_params, skipped, fetched)
    except BaseException:
        fetched.close()
        raise


def _fetch_pages(client: CtgovClient, first_params: dict[str, str], skipped: list[SkippedRecord] | None,
                 fetched: FetchedSpool) -> tuple[FetchedSpool, int | None, int]:
    page = client.get_page(first_params)
    total = page.total_count
    fetched.extend(Fetched(rec, raw) for rec, raw in page.studies)
    skips = list(page.skipped)
    pages, seen = 1, set()
    while page.next_page_token:
        token = page.next_page_token
        if token in seen:
            raise CtgovError(f"ClinicalTrials.gov sent page token {token!r} again after page {pages}: paging loops. "
                             "Nothing was stored and the watermark did not move; the next run searches the same window.")
        if pages >= MAX_PAGES:
            raise CtgovError(f"ClinicalTrials.gov paging did not end after {MAX_PAGES} pages; nothing was stored")
        seen.add(token)
        page = client.get_page(next_page_params(first_params, token))
        fetched.extend(Fetched(rec, raw) for rec, raw in page.studies)
        skips.extend(page.skipped)
        pages += 1
    if total is None:
        raise CtgovError("ClinicalTrials.gov did not announce totalCount although countTotal=true was asked for, so "
                         "the pages received cannot be checked as complete; nothing was stored. Run the update again.")
    # a skipped study was received too; one without an NCT id counts once per sighting
    distinct = len({rid.split(":", 1)[1] for rid in fetched.record_ids} | {s.source_id for s in skips if s.source_id}) \
        + sum(1 for s in skips if not s.source_id)
    if distinct != total:
        raise CtgovError(f"ClinicalTrials.gov paging was inconsistent: received {distinct} distinct studies of {total} "
                         f"announced (totalCount) over {pages} page(s) ({len(fetched) + len(skips)} received in all, "
                         "so pages were repeated or paging ended early). Nothing was stored and the watermark did "
                         "not move; the next run searches the same window again.")
    if skipped is not None:
        skipped.extend(skips)
    return fetched, total, pages


def read_replay(folder: Path, skipped: list[SkippedRecord] | None = None) -> tuple[FetchedSpool, int]:
    """Recorded pages (`*.json`, in name order) through the same parser as live answers (skips to `skipped`)."""
    if not folder.is_dir():
        raise CtgovError(f"{folder}: replay folder not found; record pages there (API v2 studies pages as *.json) "
                         "or remove `replay` from [sources.ctgov]")
    fetched = FetchedSpool()  # on disk until stored (issue 15)
    files = sorted(folder.glob("*.json"))
    try:
        for f in files:
            page = parse_studies_page(f.read_bytes(), where=str(f))
            fetched.extend(Fetched(rec, raw) for rec, raw in page.studies)
            if skipped is not None:
                skipped.extend(page.skipped)
    except BaseException:
        fetched.close()
        raise
    return fetched, len(files)


def _query_text(params: dict[str, str]) -> str:
    return canonical_json({k: v for k, v in params.items()
                           if k not in ("filter.advanced", "pageToken", "countTotal", "pageSize", "format")})


@dataclass
class CtgovRun:
    """ClinicalTrials.gov's pieces of the shared source run (`tasks.source_run`): window, fetch, summary."""

    src: CtgovSource
    replay: Path | None
    client: CtgovClient | None
    source: str = "ctgov"

    @property
    def mode(self) -> str:
        return "replay" if self.replay is not None else "live"

    @property
    def query(self) -> str:
        return _query_text(search_params(condition=self.src.condition, intervention=self.src.intervention,
                                         terms=self.src.terms, page_size=self.src.page_size))

    @property
    def earliest_date(self) -> dt.date:
        return self.src.earliest_date

    @property
    def requests(self) -> int:
        return self.client.requests if self.client is not None else 0

    def window(self, watermark: dt.datetime | None, last_query: str | None, as_of: dt.datetime) -> Window:
        # a changed search (condition, intervention, terms) searches its whole period again
        same = watermark is not None and last_query == self.query
        since = overlap_start(watermark if same else None, self.src.overlap_days, self.src.earliest_date)
        return Window(since, as_of, day_start(since), {"window_start": since.isoformat()})

    def fetch(self, window: Window) -> Fetch:
        skipped: list[SkippedRecord] = []
        total: int | None = None
        if self.replay is not None:
            fetched, _ = read_replay(self.replay, skipped)
        else:
            assert self.client is not None  # run_ctgov_search refuses a live run without one
            params = search_params(condition=self.src.condition, intervention=self.src.intervention,
                                   terms=self.src.terms, updated_since=window.start, page_size=self.src.page_size)
            fetched, total, _ = fetch_studies(self.client, params, skipped)
        return Fetch(fetched=fetched, n_found=total, skipped=skipped,
                     summary={"results_problems": _results_problems(fetched),
                              "skipped_ids": sorted(s.source_id or "?" for s in skipped)})

    def summary(self, fetch: Fetch, counts: IngestCounts) -> dict:
        return {"events": counts.events, **fetch.summary}


def _results_problems(fetched: Iterable[Fetched]) -> int:
    problems = 0
    for f in fetched:
        if f.record.extra.get("has_results"):
            try:
                problems += len(suggest_extraction_rows(json.loads(f.payload))[1])
            except (ValueError, TypeError, AttributeError, KeyError):
                problems += 1  # odd results are counted here and named when suggestions are made (linking)
    return problems


def _replay_folder(src: CtgovSource, review_dir: str, replay_dir: str | None) -> Path | None:
    """Where a replayed run reads its recorded pages (None: a live run)."""
    if replay_dir:
        return Path(replay_dir)
    return Path(review_dir) / src.replay if src.replay else None


def run_ctgov_search(review_dir: str, warehouse: str, update_id: int | None, as_of: dt.datetime,
                     replay_dir: str | None = None, *, client: CtgovClient | None = None,
                     now: Callable[[], dt.datetime] = utcnow, cfg: ReviewConfig | None = None) -> dict:
    """Search ClinicalTrials.gov (live or replayed) and store new and changed records; never raises on source
    trouble. `cfg` is the cycle's validated config (read from `review_dir` when not given)."""
    cfg = cfg or load_review(review_dir)
    src = cfg.sources.ctgov
    if src is None or not src.enabled:
        return {"source": "ctgov", "status": "skipped"}
    replay = _replay_folder(src, review_dir, replay_dir)
    if replay is None and client is None:
        raise ConfigError("no ClinicalTrials.gov client given for a live search")
    run = CtgovRun(src, replay, client)
    return run_source(run, review_id=cfg.id, warehouse=warehouse, update_id=update_id, as_of=as_of, now=now)


@task(name="search-ctgov")
@redacts_exceptions  # Prefect makes the FAILED message from the exception text
@reports_source_state  # a failed search ends as a FAILED task run (a plain call still returns the summary)
def search_ctgov(review_dir: str, warehouse: str, update_id: int | None, as_of: dt.datetime,
                 replay_dir: str | None = None, cfg: ReviewConfig | None = None) -> dict:
    """Search ClinicalTrials.gov for the review's condition and intervention and store new and changed records.

    The client settings (base_url, min_interval, max_tries, backoff, timeout) come from the flow in-process
    (`tasks.runtime.source_settings`, set from `flows.settings.ctgov_settings()`), the same way as PubMed's;
    unconfigured, the public API at the polite default pace. A failure marks the run failed and returns status
    "failed" (never raises).
    """
    cfg = cfg or load_review(review_dir)
    src = cfg.sources.ctgov
    if src is None or not src.enabled or _replay_folder(src, review_dir, replay_dir) is not None:
        return run_ctgov_search(review_dir, warehouse, update_id, as_of, replay_dir, cfg=cfg)
    with CtgovClient(**(runtime.source_settings("ctgov") or {"base_url": DEFAULT_BASE_URL})) as http:
        return run_ctgov_search(review_dir, warehouse, update_id, as_of, replay_dir, client=http, cfg=cfg)
