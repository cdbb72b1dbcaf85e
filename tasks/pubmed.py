"""PubMed search task: esearch by edat and mdat with the history server, efetch by POST, one transaction.

A run searches [last committed watermark - overlap_days, as_of] (the first run: from the review's
earliest_date) twice, by Entrez date (new records) and by modification date (revised, retracted,
corrected records), fetches every PMID found once, in batches from the history server (see
`search_and_fetch`), and only then stores everything with the new watermark in ONE transaction
(`warehouse.ingest.finish_search_run`). A failure or a kill before that commit leaves the warehouse as it
was; the run is marked failed (when the process is alive to do so; otherwise the next run marks it
interrupted) and the next run starts again from the old watermark. Replay mode reads recorded answers from a
folder through the same parsing and storing path.

Only what was asked for is stored, and never silently fewer (issue 14):
- An efetch answer holding a PMID that was not requested (not in the batch sent by id, not listed by the
  search part fetched from the history server) is not stored; it is counted (`search_runs.n_unrequested`),
  kept in `source_record_skips` and alerted (`source_record_unrequested`); the run still succeeds.
- A requested PMID missing from the answer is fetched again by id; still missing, the search FAILS with a
  message naming the missing PMIDs: nothing is stored and the watermark stays, so the next run retries the
  same window (a silently smaller set would move the watermark past the missing records for good).
- An article that cannot be read (control characters are stripped first; see livingmeta.sources.pubmed)
  is skipped, never its batch. Decision: the run stores every other record and SUCCEEDS (its watermark
  moves); the skip is recorded durably in the same transaction: a `source_record_skips` row with the
  article's bytes, `search_runs.n_skipped` (shown by `livingmeta status`) and a `source_record_skipped` alert
  naming the PMID. A skipped PMID counts as received, so it is not fetched again in a loop.

Errors leave redacted (`livingmeta.redaction`): NCBI echoes the request, api_key included, in some errors.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from prefect import task

from livingmeta.config import ConfigError, PubMedSource, ReviewConfig, load_review
from livingmeta.redaction import RedactedError
from livingmeta.sources.changes import Fetched, IngestCounts
from livingmeta.sources.run import Fetch, Window, day_start, overlap_start
from livingmeta.sources.skips import SkippedRecord
from livingmeta.sources.spool import FetchedSpool
from livingmeta.sources.pubmed import (
    ESEARCH_MAX_IDS,
    EntrezAnswerError,
    EsearchResult,
    ParsedArticle,
    PubMedParseError,
    efetch_history_params,
    efetch_params,
    esearch_params,
    parse_efetch,
    parse_esearch,
    split_window,
)
from tasks import runtime
from tasks.entrez import EntrezClient, EntrezError, EntrezSettings
from tasks.observe import redacts_exceptions, reports_source_state
from tasks.reviews import utcnow
from tasks.source_run import run_source

SOURCE = "pubmed"
DATETYPES = ("edat", "mdat")
PARSE_TRIES = 3  # a body cut short in transit is fetched again this many times in all

_SOURCE_PROBLEMS = (EntrezError, EntrezAnswerError, PubMedParseError, OSError)


class PubMedSearchError(RedactedError, RuntimeError):
    """The search cannot be completed as asked (message for people, redacted)."""


@dataclass
class FetchLog:
    """What the fetches received but did not return as articles: skipped (unreadable) and unrequested records."""

    skipped: list[SkippedRecord] = field(default_factory=list)
    unrequested: dict[str, ParsedArticle] = field(default_factory=dict)  # PMID -> what came (last sighting)

    def skipped_ids(self) -> set[str]:
        return {s.source_id for s in self.skipped if s.source_id}

    def unique_skips(self) -> list[SkippedRecord]:
        """One skip per (PMID, field): a batch fetched again skips the same article again."""
        seen, out = set(), []
        for s in self.skipped:
            key = (s.source_id, s.field) if s.source_id else id(s)
            if key not in seen:
                seen.add(key)
                out.append(s)
        return out


def search_window(as_of: dt.datetime, watermark: dt.datetime | None, src: PubMedSource) -> tuple[dt.date, dt.date]:
    """The days to search: [watermark - overlap, as_of], or [earliest_date, as_of] on the first run."""
    end = as_of.date()
    return min(overlap_start(watermark, src.overlap_days, src.earliest_date), end), end


@dataclass
class SearchPart:
    """One esearch below the cap: its window, its listed PMIDs and its history-server keys."""

    where: str
    result: EsearchResult

    @property
    def ids(self) -> list[str]:
        return self.result.ids


def esearch_parts(client: EntrezClient, query: str, datetype: str, start: dt.date, end: dt.date,
                  cap: int = ESEARCH_MAX_IDS) -> list[SearchPart]:
    """Search the window with the history server, halving it while a part holds `cap` or more hits.

    Each part lists its PMIDs (to check that every one comes back and to join the edat and mdat searches)
    and keeps its result on the history server (WebEnv/QueryKey) to be fetched from there.
    """
    where = f"esearch {datetype} {start:%Y/%m/%d}-{end:%Y/%m/%d}"
    body = client.request("esearch.fcgi", esearch_params(query, datetype=datetype, start=start, end=end, retmax=cap - 1))
    result = parse_esearch(body, where)
    if result.count >= cap:
        halves = split_window(start, end)
        if halves is None:
            raise PubMedSearchError(
                f"{where}: {result.count} records on a single day reach the E-utilities cap of {cap}; PubMed cannot list "
                "them all. Narrow sources.pubmed.query in review.toml.")
        return [part for (a, b) in halves for part in esearch_parts(client, query, datetype, a, b, cap)]
    if len(result.ids) < result.count:
        raise PubMedSearchError(f"{where}: NCBI reported {result.count} records but listed {len(result.ids)}; "
                                "run the update again")
    return [SearchPart(where, result)] if result.count else []


def search_and_fetch(client: EntrezClient, query: str, start: dt.date, end: dt.date, batch_size: int,
                     cap: int = ESEARCH_MAX_IDS, log: FetchLog | None = None,
                     into: Received | None = None) -> tuple[list[ParsedArticle] | Received, int]:
    """Search by Entrez date then by modification date and fetch every PMID found exactly once.

    Each part of the edat search (new records) is fetched from the history server in batches of
    `batch_size` (WebEnv, query_key, retstart, retmax; POST). A part of the mdat search (revised records)
    whose PMIDs were none of them fetched yet is fetched the same way; otherwise only its PMIDs not yet
    fetched are sent by id (POST), so a PMID found by both searches is fetched and stored once.

    Why not combine the searches on the server (`#1 OR #2` on one WebEnv): the union can reach the
    10,000-record cap that a history fetch cannot page past, the edat and mdat windows are split
    differently, and the listed PMIDs are needed anyway to prove that every record came back.

    Returns:
        (the articles (in `into` when given), the number of distinct PMIDs the searches listed); skipped and
        unrequested records go to `log`.
    """
    log = log if log is not None else FetchLog()
    items: list[ParsedArticle] | Received = into if into is not None else []
    fetched: set[str] = set()
    found: set[str] = set()
    for datetype in DATETYPES:
        for part in esearch_parts(client, query, datetype, start, end, cap):
            found.update(part.ids)
            todo = [pmid for pmid in part.ids if pmid not in fetched]
            if not todo:
                continue
            if len(todo) == len(part.ids) and part.result.webenv and part.result.query_key:
                got = fetch_history(client, part, batch_size, log)
            else:
                got = fetch_articles(client, todo, batch_size, f"{part.where}: ", log)
            items.extend(got)
            fetched.update(a.record.source_id for a in got)
            fetched.update(log.skipped_ids() & set(todo))
    # a PMID one part did not list may be another part's: only what no part listed stays unrequested
    for pmid in list(log.unrequested):
        if pmid in found:
            del log.unrequested[pmid]
    return items, len(found)


def fetch_history(client: EntrezClient, part: SearchPart, batch_size: int,
                  log: FetchLog | None = None) -> list[ParsedArticle]:
    """EFetch one search part from the history server in batches; every listed PMID must come back, and only
    listed PMIDs are returned (others go to `log.unrequested`)."""
    log = log if log is not None else FetchLog()
    r = part.result
    listed = set(part.ids)
    starts = range(0, r.count, batch_size)
    out: list[ParsedArticle] = []
    for n, retstart in enumerate(starts, start=1):
        where = (f"efetch batch {n}/{len(starts)} of {part.where} "
                 f"(records {retstart + 1}..{min(retstart + batch_size, r.count)} of {r.count})")
        out += _fetch_batch(client, efetch_history_params(r.webenv, r.query_key, retstart, batch_size), where,
                            listed, log)
    missing = sorted(listed - {a.record.source_id for a in out} - log.skipped_ids(), key=int)
    if missing:
        # NCBI occasionally drops records from a history answer: ask for exactly those by id
        out += fetch_articles(client, missing, batch_size, f"{part.where}, records missing from the history fetch: ",
                              log)
    return out


def fetch_articles(client: EntrezClient, ids: list[str], batch_size: int, context: str = "",
                   log: FetchLog | None = None) -> list[ParsedArticle]:
    """EFetch the PMIDs in batches by POST; every requested PMID must come back (a missing one is asked for
    again by id, then the search fails naming it), and only requested PMIDs are returned."""
    log = log if log is not None else FetchLog()
    out: list[ParsedArticle] = []
    batches = [ids[i:i + batch_size] for i in range(0, len(ids), batch_size)]
    for n, batch in enumerate(batches, start=1):
        where = f"{context}efetch batch {n}/{len(batches)} (PMIDs {batch[0]}..{batch[-1]})"
        wanted = set(batch)
        items = _fetch_batch(client, efetch_params(batch), where, wanted, log)
        missing = sorted(wanted - {a.record.source_id for a in items} - log.skipped_ids(), key=int)
        if missing:
            # NCBI occasionally drops ids from a large answer: ask once more for exactly those
            items += _fetch_batch(client, efetch_params(missing), f"{where}, missing ids again", set(missing), log)
            missing = sorted(wanted - {a.record.source_id for a in items} - log.skipped_ids(), key=int)
        if missing:
            raise PubMedSearchError(
                f"{where}: NCBI found but did not return {len(missing)} record(s): {', '.join(missing[:20])}"
                f"{' ...' if len(missing) > 20 else ''} (requested, and asked for again by id). Nothing was stored "
                "and the watermark did not move; the next update searches the same window again.")
        out.extend(items)
    return out


def _fetch_batch(client: EntrezClient, params: dict[str, str], where: str, requested: set[str] | None = None,
                 log: FetchLog | None = None) -> list[ParsedArticle]:
    """One efetch, parsed (fetched again when the answer was cut short); articles not in `requested` go to
    `log.unrequested`, unreadable ones to `log.skipped`."""
    for attempt in range(1, PARSE_TRIES + 1):
        body = client.request("efetch.fcgi", params)
        skipped: list[SkippedRecord] = []
        try:
            items = list(parse_efetch(body, where=where, skipped=skipped))
        except PubMedParseError:
            if attempt == PARSE_TRIES:
                raise
            continue
        if log is None:
            return items
        log.skipped.extend(s for s in skipped if requested is None or s.source_id is None or s.source_id in requested)
        for s in skipped:
            if requested is not None and s.source_id is not None and s.source_id not in requested:
                log.unrequested.setdefault(s.source_id, None)
        if requested is None:
            return items
        kept = []
        for a in items:
            if a.record.source_id in requested:
                kept.append(a)
            else:
                log.unrequested[a.record.source_id] = a
        return kept
    raise AssertionError("unreachable")


def replay_articles(folder: Path, log: FetchLog | None = None,
                    into: Received | None = None) -> tuple[list[ParsedArticle] | Received, int | None]:
    """Read recorded answers: `esearch*.xml` (counts) and every other `*.xml` (efetch), sorted by name.

    Unreadable articles go to `log.skipped`; recorded efetch answers are taken as a whole (no request set).
    The articles go to `into` when given (else a list is returned)."""
    log = log if log is not None else FetchLog()
    if not folder.is_dir():
        raise PubMedSearchError(f"{folder}: replay folder not found; record esearch*.xml/efetch*.xml answers there "
                                "or remove sources.pubmed.replay from review.toml")
    articles: list[ParsedArticle] | Received = into if into is not None else []
    found: set[str] = set()
    received: set[str] = set()
    searched = False
    for path in sorted(folder.glob("*.xml")):
        if path.name.startswith("esearch"):
            searched = True
            found.update(parse_esearch(path.read_bytes(), str(path)).ids)
        else:
            for a in parse_efetch(path, skipped=log.skipped):  # streamed: a file's articles are never all held
                received.add(a.record.source_id)
                articles.append(a)
    return articles, (len(found | received) if searched else None)


class Received:
    """A run's articles as they arrive: records with their payloads to a `FetchedSpool` (a temporary file, not
    memory: issue 15), deletion notices (a few) in memory, both in the order received."""

    def __init__(self) -> None:
        self.fetched = FetchedSpool()
        self.deletions: list[Fetched] = []

    def append(self, a: ParsedArticle) -> None:
        (self.deletions if a.kind == "delete" else self.fetched).append(Fetched(a.record, a.payload))

    def extend(self, items: Iterable[ParsedArticle]) -> None:
        for a in items:
            self.append(a)


@dataclass
class PubMedRun:
    """PubMed's pieces of the shared source run (`tasks.source_run`): window, fetch, summary."""

    src: PubMedSource
    replay: Path | None
    client: EntrezClient | None
    esearch_cap: int = ESEARCH_MAX_IDS
    source: str = SOURCE

    @property
    def mode(self) -> str:
        return "replay" if self.replay is not None else "live"

    @property
    def query(self) -> str:
        return self.src.query

    @property
    def earliest_date(self) -> dt.date:
        return self.src.earliest_date

    @property
    def requests(self) -> int:
        return self.client.n_requests if self.client is not None else 0

    def window(self, watermark: dt.datetime | None, last_query: str | None, as_of: dt.datetime) -> Window:
        # the query that set the watermark does not matter here: a changed query searches from the watermark
        start, end = search_window(as_of, watermark, self.src)
        replay = self.replay is not None
        return Window(start, as_of, None if replay else day_start(start),
                      {"window": None if replay else [start.isoformat(), end.isoformat()]})

    def fetch(self, window: Window) -> Fetch:
        log = FetchLog()
        # a DeleteCitation entry is a deletion notice: the stored record is kept, marked deleted
        got = Received()
        try:
            if self.replay is not None:
                _, n_found = replay_articles(self.replay, log, got)
            else:
                assert self.client is not None  # run_pubmed_search refuses a live run without one
                _, n_found = search_and_fetch(self.client, self.src.query, window.start, window.end.date(),
                                              self.src.batch_size, self.esearch_cap, log, got)
        except BaseException:
            got.fetched.close()
            raise
        unrequested: list[Fetched | str] = [pmid if a is None else Fetched(a.record, a.payload)
                                            for pmid, a in sorted(log.unrequested.items(), key=lambda kv: int(kv[0]))]
        return Fetch(fetched=got.fetched, n_found=n_found, skipped=log.unique_skips(), unrequested=unrequested,
                     deletions=got.deletions)

    def summary(self, fetch: Fetch, counts: IngestCounts) -> dict:
        return {"retries": self.client.n_retries if self.client is not None else 0,
                "deleted_unknown": counts.deleted_unknown}


def _replay_folder(src: PubMedSource, review_dir: str, replay_dir: str | None) -> Path | None:
    """Where a replayed run reads its recorded answers (None: a live run)."""
    if replay_dir:
        return Path(replay_dir)
    return Path(review_dir) / src.replay if src.replay else None


def run_pubmed_search(review_dir: str, warehouse: str, update_id: int | None, as_of: dt.datetime,
                      replay_dir: str | None = None, *, client: EntrezClient | None = None,
                      now: Callable[[], dt.datetime] = utcnow, esearch_cap: int = ESEARCH_MAX_IDS,
                      cfg: ReviewConfig | None = None) -> dict:
    """Search PubMed (live or replayed) and store new and changed records; never raises on source trouble.

    `cfg` is the cycle's validated config (read from `review_dir` when not given).

    Returns:
        {"source": "pubmed", "status": "succeeded"|"failed"|"skipped", "run_id", "mode", "window",
         "found", "new", "changed", "unchanged", "deleted", "requests", ...} or with "error" when failed.
    """
    cfg = cfg or load_review(review_dir)
    src = cfg.sources.pubmed
    if src is None or not src.enabled:
        return {"source": SOURCE, "status": "skipped"}
    replay = _replay_folder(src, review_dir, replay_dir)
    if replay is None and client is None:
        raise ConfigError("no E-utilities client given for a live PubMed search")
    run = PubMedRun(src, replay, client, esearch_cap)
    return run_source(run, review_id=cfg.id, warehouse=warehouse, update_id=update_id, as_of=as_of, now=now)


def client_from_settings(settings: dict) -> EntrezClient:
    """An E-utilities client from `flows.settings.ncbi_settings()`-style values."""
    return EntrezClient(EntrezSettings(**settings))


@task(name="search-pubmed")
@redacts_exceptions  # Prefect makes the FAILED message from the exception text
@reports_source_state  # a failed search ends as a FAILED task run (a plain call still returns the summary)
def search_pubmed(review_dir: str, warehouse: str, update_id: int | None, as_of: dt.datetime,
                  replay_dir: str | None = None, cfg: ReviewConfig | None = None) -> dict:
    """Search PubMed for the review's query and store new and changed records.

    The client settings (NCBI address, email, API key) come from the flow in-process, never as a parameter
    (`tasks.runtime.source_settings`), the same way as ClinicalTrials.gov's.
    """
    cfg = cfg or load_review(review_dir)
    src = cfg.sources.pubmed
    live = src is not None and src.enabled and _replay_folder(src, review_dir, replay_dir) is None
    client = client_from_settings(runtime.source_settings(SOURCE)) if live else None
    return run_pubmed_search(review_dir, warehouse, update_id, as_of, replay_dir, client=client, cfg=cfg)
