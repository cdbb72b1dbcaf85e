"""A real HTTP server on 127.0.0.1 playing NCBI E-utilities from recorded PubMed articles.

It answers `esearch.fcgi` (filtering its articles by the requested datetype window and capping the
id list like NCBI does; with `usehistory=y` the result is kept under a new WebEnv, query key 1) and
`efetch.fcgi` (a PubmedArticleSet, the articles' bytes exactly as recorded, of the requested PMIDs,
or of the slice `retstart`/`retmax` of a kept search given by `WebEnv`/`query_key`; an unknown
WebEnv or a slice past the cap answers `<ERROR>` inside HTTP 200 like NCBI). Faults queued per utility are served first: an HTTP status with a body
(429 with NCBI's JSON, 500, ...), a delay (client timeouts), a body cut short, a replacement body
(`<ERROR>` inside HTTP 200), or a hold until the test releases it (to kill a client mid-run).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HEAD = (b'<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
        b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n<PubmedArticleSet>\n')
TAIL = b"</PubmedArticleSet>\n"
_ARTICLE_RE = re.compile(rb"<(PubmedArticle|PubmedBookArticle)>.*?</\1>", re.DOTALL)
_PMID_RE = re.compile(rb"<PMID Version=\"\d+\">(\d+)</PMID>")
_ENTREZ_RE = re.compile(rb'PubStatus="entrez"><Year>(\d+)</Year><Month>(\d+)</Month><Day>(\d+)</Day>')
_REVISED_RE = re.compile(rb"<DateRevised><Year>(\d+)</Year><Month>(\d+)</Month><Day>(\d+)</Day>")


@dataclass
class Article:
    pmid: str
    xml: bytes
    edat: dt.date
    mdat: dt.date


@dataclass
class Fault:
    status: int = 200
    body: bytes | None = None
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    truncate: int | None = None  # serve only this many bytes of the (real or given) body
    hold: threading.Event | None = None  # wait for the test to set this before answering


def articles_from_xml(data: bytes) -> list[Article]:
    """Recorded articles with their Entrez date (History) and modification date (DateRevised)."""
    out = []
    for m in _ARTICLE_RE.finditer(data):
        xml = m.group(0)
        pmid = _PMID_RE.search(xml).group(1).decode()
        e = _ENTREZ_RE.search(xml)
        edat = dt.date(*map(int, e.groups())) if e else dt.date(2000, 1, 1)
        r = _REVISED_RE.search(xml)
        mdat = dt.date(*map(int, r.groups())) if r else edat
        out.append(Article(pmid, xml, edat, max(mdat, edat)))
    return out


def synthetic_articles(n: int, first_pmid: int = 40000000, start: dt.date = dt.date(2022, 1, 1)) -> list[Article]:
    """n distinct small RCT records, one Entrez day each (written here, not copied from anywhere)."""
    out = []
    for i in range(n):
        pmid = str(first_pmid + i)
        day = start + dt.timedelta(days=i)
        xml = (f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">{pmid}</PMID>'
               f'<DateRevised><Year>{day.year}</Year><Month>{day.month:02d}</Month><Day>{day.day:02d}</Day></DateRevised>'
               '<Article PubModel="Print"><Journal><JournalIssue CitedMedium="Print"><PubDate>'
               f'<Year>{day.year}</Year><Month>{day.month:02d}</Month></PubDate></JournalIssue><Title>Trials</Title></Journal>'
               f'<ArticleTitle>Immunoglobulin trial number {i} in painful neuropathy.</ArticleTitle>'
               f'<Abstract><AbstractText Label="METHODS">Randomised, placebo controlled; registered NCT{10000000 + i}.</AbstractText>'
               '</Abstract><AuthorList><Author><LastName>Author</LastName><Initials>A</Initials></Author></AuthorList>'
               '<Language>eng</Language><PublicationTypeList><PublicationType UI="D016449">Randomized Controlled Trial'
               '</PublicationType></PublicationTypeList></Article></MedlineCitation><PubmedData><History>'
               f'<PubMedPubDate PubStatus="entrez"><Year>{day.year}</Year><Month>{day.month}</Month><Day>{day.day}</Day>'
               '</PubMedPubDate></History><PublicationStatus>ppublish</PublicationStatus><ArticleIdList>'
               f'<ArticleId IdType="pubmed">{pmid}</ArticleId></ArticleIdList></PubmedData></PubmedArticle>').encode()
        out.append(Article(pmid, xml, day, day))
    return out


class FakeNCBI:
    """Start with `with FakeNCBI(articles) as ncbi:`; point the client at `ncbi.url`."""

    def __init__(self, articles: list[Article], cap: int = 10_000) -> None:
        self.articles = {a.pmid: a for a in articles}
        self.cap = cap
        self.faults: dict[str, deque[Fault]] = {"esearch.fcgi": deque(), "efetch.fcgi": deque()}
        self.requests: list[dict] = []
        self.holds: list[threading.Event] = []
        self.histories: dict[str, dict] = {}  # WebEnv -> {"params": the esearch's, "ids": its hits in order}
        # efetch faults that concern records, not whole answers:
        self.unrequested: list[Article] = []  # added to every efetch answer although nobody asked for them
        self.withheld: dict[str, int] = {}  # PMID -> how many more efetch answers leave it out (-1: always)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def set_articles(self, articles: list[Article]) -> None:
        with self._lock:
            self.articles = {a.pmid: a for a in articles}

    def add_fault(self, utility: str, fault: Fault, times: int = 1) -> None:
        if fault.hold is not None:
            self.holds.append(fault.hold)
        for _ in range(times):
            self.faults[utility].append(fault)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/entrez/eutils/"

    def calls(self, utility: str) -> list[dict]:
        return [r for r in self.requests if r["utility"] == utility]

    def __enter__(self) -> "FakeNCBI":
        ncbi = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                self._answer(urllib.parse.urlsplit(self.path).query)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._answer(self.rfile.read(length).decode())

            def _answer(self, query: str) -> None:
                utility = urllib.parse.urlsplit(self.path).path.rsplit("/", 1)[-1]
                params = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
                with ncbi._lock:
                    ncbi.requests.append({"utility": utility, "method": self.command, "path": self.path, "params": params})
                    queue = ncbi.faults.get(utility)
                    fault = queue.popleft() if queue else None
                if fault and fault.hold is not None:
                    fault.hold.wait(30)
                if fault and fault.delay:
                    time.sleep(fault.delay)
                if fault and fault.status != 200:
                    self._send(fault.status, fault.body or b"", fault.headers)
                    return
                body = fault.body if fault and fault.body is not None else ncbi.body(utility, params)
                if fault and fault.truncate is not None:
                    body = body[: fault.truncate]
                self._send(200, body, {"Content-Type": "text/xml; charset=UTF-8"})

            def _send(self, status: int, body: bytes, headers: dict) -> None:
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        for h in self.holds:
            h.set()
        self._server.shutdown()
        self._server.server_close()

    def body(self, utility: str, params: dict) -> bytes:
        with self._lock:
            articles = dict(self.articles)
        if utility == "esearch.fcgi":
            lo = dt.datetime.strptime(params["mindate"], "%Y/%m/%d").date()
            hi = dt.datetime.strptime(params["maxdate"], "%Y/%m/%d").date()
            hits = sorted((a.pmid for a in articles.values() if lo <= getattr(a, params["datetype"]) <= hi),
                          key=int, reverse=True)
            retmax = min(int(params.get("retmax", 20)), self.cap)
            ids = "".join(f"<Id>{p}</Id>" for p in hits[:retmax])
            history = ""
            if params.get("usehistory") == "y":
                with self._lock:
                    webenv = f"MCID_{len(self.histories) + 1:04d}"
                    self.histories[webenv] = {"params": params, "ids": hits}
                history = f"<QueryKey>1</QueryKey><WebEnv>{webenv}</WebEnv>"
            return (f'<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" '
                    f'"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">\n<eSearchResult><Count>{len(hits)}</Count>'
                    f"<RetMax>{min(retmax, len(hits))}</RetMax><RetStart>0</RetStart>{history}<IdList>{ids}</IdList>"
                    f"<TranslationSet/><QueryTranslation>{params['term']}</QueryTranslation></eSearchResult>").encode()
        if utility == "efetch.fcgi":
            if "WebEnv" in params:
                with self._lock:
                    kept = self.histories.get(params["WebEnv"])
                if kept is None or params.get("query_key") != "1":
                    return (b'<?xml version="1.0" encoding="UTF-8" ?>\n<eFetchResult><ERROR>Unable to obtain query #'
                            + params.get("query_key", "?").encode() + b"</ERROR></eFetchResult>\n")
                retstart, retmax = int(params.get("retstart", 0)), int(params.get("retmax", 20))
                if retstart >= self.cap:
                    return (b"<eFetchResult><ERROR>Search Backend failed: Exception: retstart cannot be larger than "
                            + str(self.cap - 1).encode() + b"</ERROR></eFetchResult>\n")
                wanted = [p for p in kept["ids"][retstart:min(retstart + retmax, self.cap)] if p in articles]
            else:
                wanted = [p for p in params.get("id", "").split(",") if p in articles]
            with self._lock:
                for p in [p for p in wanted if self.withheld.get(p)]:
                    wanted.remove(p)
                    if self.withheld[p] > 0:
                        self.withheld[p] -= 1
                extra = [a.xml for a in self.unrequested]
            return HEAD + b"\n".join([articles[p].xml for p in wanted] + extra) + b"\n" + TAIL
        return b"<eResult><ERROR>unknown utility</ERROR></eResult>"


def fixture_articles(*names: str) -> list[Article]:
    base = Path(__file__).resolve().parent / "fixtures" / "pubmed"
    return [a for n in names for a in articles_from_xml((base / n).read_bytes())]
