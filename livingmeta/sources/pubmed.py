"""PubMed E-utilities answers -> Records: pure parsing and request parameters, no network.

`parse_efetch` streams an efetch `PubmedArticleSet` chunk by chunk (a callback-free expat pass checks
the whole document; each article's bytes are cut out and parsed alone, then dropped, so memory stays
flat however large the file) and yields one `ParsedArticle` per
`PubmedArticle` / `PubmedBookArticle` / `DeleteCitation` PMID, with the article's bytes exactly as
NCBI sent them. `parse_esearch` reads an esearch answer. Errors NCBI puts inside an HTTP 200 body
(`<ERROR>`, `<ErrorList><PhraseNotFound>`) raise `EntrezAnswerError`; XML that is cut short or is
not a PubMed answer raises `PubMedParseError`. Both say where (file or batch, line) and what to do.

One bad article never fails the answer (issue 14): characters XML 1.0 forbids (control characters such
as \x00, \x0b, \x1b, raw or as character references) are stripped from the stream before parsing, and an
article that still cannot be read (markup broken inside it, no PMID, an unexpected shape) is left out and
reported as a `SkippedRecord` named by its PMID (to the caller's `skipped` list). Only an answer that is cut
short (no closing `</PubmedArticleSet>`, an unfinished article) or is not a PubMed answer fails as a whole.

Reference: NLM, "PubMed XML element descriptions and attributes" (https://www.nlm.nih.gov/bsd/
licensee/elements_descriptions.html) and E-utilities help (https://www.ncbi.nlm.nih.gov/books/NBK25499/).

Decisions a reviewer should know about:
- `is_rct` is True only for the human publication type "Randomized Controlled Trial" (UI D016449;
  by name when an old file has no UI). "Randomized Controlled Trial, Veterinary" (D000078182) is
  NOT a human RCT and sets `extra["veterinary_rct"]`; the MeSH descriptor "Randomized Controlled
  Trials as Topic" describes a paper *about* RCTs and does not count either. Both stay visible in
  `publication_types` / `mesh` for screening rules.
- `retracted` is True for publication type "Retracted Publication" (D016441) or a `RetractionIn`
  link. A retraction *notice* ("Retraction of Publication", D016440) is not itself retracted; it
  carries a `RetractionOf` correction link.
- `month` is set only when the PubDate names a month (Month element, or a month in MedlineDate);
  a Season is kept as text in `extra["pub_date"]`, never turned into an invented month.
- Fields that change on every NCBI maintenance pass without changing anything a reviewer reads
  (DateRevised, history dates other than the Entrez date) are left out of the Record, so a re-fetch
  of an unchanged article is recognised as unchanged; the raw payload keeps them.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from livingmeta.records import Record, find_registry_ids, normalise_doi, normalise_registry_id
from livingmeta.redaction import RedactedError
from livingmeta.sources.skips import SkippedRecord

ESEARCH_MAX_IDS = 10_000  # ESearch returns at most this many PMIDs for one query (E-utilities docs)
RCT_UI = "D016449"
RCT_VETERINARY_UI = "D000078182"
RETRACTED_PUBLICATION_UI = "D016441"
CORRECTION_TYPES = (
    "RetractionIn",
    "RetractionOf",
    "ErratumIn",
    "ErratumFor",
    "ExpressionOfConcernIn",
    "ExpressionOfConcernFor",
    "UpdateIn",
    "UpdateOf",
    "RepublishedIn",
    "RepublishedFrom",
)
_MONTHS = {
    m: i
    for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)
}
_MATHML_SKIP = ("annotation", "annotation-xml")
_MATHML_NS = "{http://www.w3.org/1998/Math/MathML}"
_WS_RE = re.compile(r"\s+")
_YEAR_RE = re.compile(r"\b(1[89]\d{2}|20\d{2})\b")
_MONTH_WORD_RE = re.compile(r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b", re.IGNORECASE)
_ARTICLE_TAGS = ("PubmedArticle", "PubmedBookArticle")
# literal open/close tags used to cut each article's exact bytes out of the stream
_RAW_OPEN_RE = re.compile(rb"<(PubmedArticle|PubmedBookArticle|DeleteCitation)[\s>]")
_RAW_CLOSE = {
    b"PubmedArticle": b"</PubmedArticle>",
    b"PubmedBookArticle": b"</PubmedBookArticle>",
    b"DeleteCitation": b"</DeleteCitation>",
}
# characters XML 1.0 forbids: raw C0 controls other than tab/LF/CR (single bytes in UTF-8, never part of a
# multi-byte sequence, so they can be removed from bytes), and character references to them
_ILLEGAL_BYTES_RE = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_ILLEGAL_REFS_RE = re.compile(rb"&#(?:x0*(?:[0-8bBcCeEfF]|1[0-9a-fA-F])|0*(?:[0-8]|1[124-9]|2[0-9]|3[01]));")
_FIRST_PMID_RE = re.compile(rb"<PMID[^>]*>\s*(\d+)\s*</PMID>")
_END_RE = re.compile(rb"</PubmedArticleSet>\s*$")


class PubMedParseError(RedactedError, ValueError):
    """An efetch/esearch answer that cannot be read (cut short, not XML, not a PubMed answer)."""


class EntrezAnswerError(RedactedError, ValueError):
    """NCBI answered HTTP 200 but the body reports an error (`<ERROR>`, `PhraseNotFound`, ...)."""


@dataclass
class ParsedArticle:
    """One efetch item: the normalised record and its exact XML bytes.

    `kind` is "article" (PubmedArticle), "book" (PubmedBookArticle) or "delete" (a PMID listed in
    DeleteCitation; its record carries only the PMID and `deleted=True`).
    """

    record: Record
    payload: bytes
    kind: str = "article"


@dataclass
class EsearchResult:
    """An esearch answer: how many PMIDs match, the ones returned, and the history-server keys."""

    count: int
    ids: list[str]
    retmax: int = 0
    retstart: int = 0
    webenv: str | None = None
    query_key: str | None = None
    query_translation: str | None = None
    warnings: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- request parameters


def esearch_params(
    query: str,
    *,
    datetype: str,
    start: dt.date,
    end: dt.date,
    retmax: int = ESEARCH_MAX_IDS - 1,
    usehistory: bool = True,
) -> dict[str, str]:
    """ESearch parameters for a review query restricted to a date window.

    Args:
        query: the PubMed search strategy, as written in review.toml.
        datetype: "edat" (Entrez date: when PubMed first listed it) or "mdat" (last modification).
        start, end: the window, both days included (E-utilities dates have day resolution).
        retmax: how many PMIDs to return (at most 9,999 so that a count of 10,000 is visibly capped).
        usehistory: keep the result on NCBI's history server (WebEnv/QueryKey in the answer).
    Returns:
        parameters for `esearch.fcgi` (without tool/email/api_key, which the request choke point adds).
    """
    if datetype not in ("edat", "mdat", "pdat"):
        raise ValueError(f"datetype must be edat, mdat or pdat, not {datetype!r}")
    if end < start:
        raise ValueError(f"date window ends ({end}) before it starts ({start})")
    params = {
        "db": "pubmed",
        "term": query,
        "datetype": datetype,
        "mindate": start.strftime("%Y/%m/%d"),
        "maxdate": end.strftime("%Y/%m/%d"),
        "retmax": str(retmax),
        "retmode": "xml",
    }
    if usehistory:
        params["usehistory"] = "y"
    return params


def efetch_params(ids: Iterable[str]) -> dict[str, str]:
    """EFetch parameters for full PubMed XML of the given PMIDs (sent by POST)."""
    ids = [str(i) for i in ids]
    if not ids:
        raise ValueError("efetch needs at least one PMID")
    return {"db": "pubmed", "id": ",".join(ids), "retmode": "xml", "rettype": "abstract"}


def efetch_history_params(webenv: str, query_key: str, retstart: int, retmax: int) -> dict[str, str]:
    """EFetch parameters for one slice of a search kept on NCBI's history server (sent by POST).

    Args:
        webenv, query_key: the `WebEnv` and `QueryKey` of an esearch answer made with `usehistory=y`.
        retstart: index of the first record of the slice (0-based, in the search's order).
        retmax: how many records to return from `retstart`.
    Returns:
        parameters for `efetch.fcgi` (without tool/email/api_key).

    Reference: E-utilities help, "Using the Entrez History server" (https://www.ncbi.nlm.nih.gov/books/NBK25497/).
    """
    if not webenv or not query_key:
        raise ValueError("a history fetch needs the WebEnv and QueryKey of an esearch made with usehistory=y")
    if retstart < 0 or retmax < 1:
        raise ValueError(f"retstart must be >= 0 and retmax >= 1 (got {retstart}, {retmax})")
    return {
        "db": "pubmed",
        "WebEnv": webenv,
        "query_key": str(query_key),
        "retstart": str(retstart),
        "retmax": str(retmax),
        "retmode": "xml",
        "rettype": "abstract",
    }


def split_window(start: dt.date, end: dt.date) -> tuple[tuple[dt.date, dt.date], tuple[dt.date, dt.date]] | None:
    """Halve a date window (both days included); None when it is a single day and cannot be split."""
    if end <= start:
        return None
    mid = start + (end - start) // 2
    return (start, mid), (mid + dt.timedelta(days=1), end)


# ----------------------------------------------------------------------------- esearch


def _error_texts(root: ET.Element) -> list[str]:
    return [_flat(e) for e in root.iter("ERROR") if _flat(e)]


def parse_esearch(data: bytes, where: str = "esearch answer") -> EsearchResult:
    """Read an esearch XML answer.

    Args:
        data: the HTTP body.
        where: names the answer in messages (request, file).
    Returns:
        the EsearchResult.
    Raises:
        EntrezAnswerError: the body carries `<ERROR>`, or NCBI could not find a phrase/field of the
            query (`ErrorList`: it would silently search a different query than the review's).
        PubMedParseError: the body is not a complete esearch answer.
    """
    try:
        root = ET.fromstring(_clean(data))  # a control character (XML 1.0 forbids it) never fails the answer
    except ET.ParseError as e:
        raise PubMedParseError(
            f"{where}: not complete XML ({e}); {_snippet(data)}. The answer was cut short or is "
            "not from E-utilities; run the update again."
        ) from None
    errors = _error_texts(root)
    if errors:
        raise EntrezAnswerError(f"{where}: NCBI reported an error: {'; '.join(errors)}")
    if root.tag != "eSearchResult":
        raise PubMedParseError(f"{where}: expected <eSearchResult>, got <{root.tag}>")
    error_list = root.find("ErrorList")
    if error_list is not None and len(error_list):
        problems = [f"{child.tag} {_flat(child)!r}" for child in error_list]
        raise EntrezAnswerError(
            f"{where}: PubMed did not understand part of the query ({'; '.join(problems)}); it would search without "
            "it. Check the spelling and field tags of sources.pubmed.query in review.toml."
        )
    count_el = root.find("Count")
    if count_el is None or not (count_el.text or "").strip().isdigit():
        raise PubMedParseError(f"{where}: the answer has no <Count>; {_snippet(data)}")
    ids = [(e.text or "").strip() for e in root.iterfind("IdList/Id")]
    warnings = [f"{w.tag}: {_flat(w)}" for w in root.iterfind("WarningList/*")]
    return EsearchResult(
        count=int(count_el.text or ""),
        ids=ids,
        retmax=_int(root.findtext("RetMax")),
        retstart=_int(root.findtext("RetStart")),
        webenv=root.findtext("WebEnv"),
        query_key=root.findtext("QueryKey"),
        query_translation=root.findtext("QueryTranslation"),
        warnings=warnings,
    )


# ----------------------------------------------------------------------------- efetch


def parse_efetch(
    source: bytes | str | Path | BinaryIO,
    where: str | None = None,
    chunk_size: int = 1 << 16,
    skipped: list[SkippedRecord] | None = None,
) -> Iterator[ParsedArticle]:
    """Stream an efetch `PubmedArticleSet` into records, one article at a time.

    Args:
        source: the body (bytes), a file path, or a binary file object.
        where: names the answer in messages (defaults to the file name or "efetch answer").
        chunk_size: bytes read per step (memory stays at about one chunk plus one article).
        skipped: where an article that cannot be read is reported (named by PMID) while the others are
            yielded; None (strict) raises PubMedParseError for it instead.
    Yields:
        ParsedArticle for every PubmedArticle, PubmedBookArticle and every PMID in DeleteCitation, in order;
        the payload is the article's bytes as sent, less characters XML 1.0 forbids.
    Raises:
        PubMedParseError: the XML is cut short (after the articles before the break were yielded: callers
            must read to the end before storing anything), the root is not PubmedArticleSet, or (strict
            mode only) an article cannot be read.
        EntrezAnswerError: the body is an E-utilities error (`<ERROR>` inside HTTP 200).
    """
    if isinstance(source, (str, Path)):
        with open(source, "rb") as f:
            yield from parse_efetch(f, where or str(source), chunk_size, skipped)
        return
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    where = where or "efetch answer"
    # Two readers over the same chunks: expat with no callbacks checks the whole document is complete
    # and well-formed (in C, building nothing), while each article's exact bytes are cut out and parsed
    # on their own. Per-element Python events (iterparse) cost more than both together.
    checker = ET.XMLParser(target=_Discard())
    broken: ET.ParseError | None = None  # the checker's complaint; then the end of the answer decides
    raws: deque[bytes] = deque()
    cutter = _RawCutter(raws)
    cleaner = _Cleaner()
    tail = b""
    head = b""
    root_tag: str | None = None
    body: list[bytes] = []  # kept only when the answer is not a PubmedArticleSet (a short error page)
    try:
        eof = False
        while not eof:
            raw_chunk = source.read(chunk_size)
            eof = not raw_chunk
            chunk = cleaner.feed(raw_chunk) if raw_chunk else cleaner.flush()
            if not chunk:
                continue
            tail = (tail + chunk)[-64:]
            if root_tag is None:
                head += chunk
                root_tag = _root_tag(head)
                if root_tag is None and len(head) < 1 << 16:
                    continue
                chunk, head = head, b""
                if root_tag != "PubmedArticleSet":
                    body.append(chunk)
                    continue
            elif root_tag != "PubmedArticleSet":
                body.append(chunk)
                continue
            if broken is None:
                try:
                    checker.feed(chunk)
                except ET.ParseError as e:
                    # a broken article (or a cut): keep cutting articles out; each is parsed alone below and
                    # the end of the answer tells a cut from one bad article
                    broken = e
            cutter.feed(chunk)
            while raws:
                raw = raws.popleft()
                yield from _parse_item(raw, where, skipped)
        if root_tag is None and not head:
            raise PubMedParseError(f"{where}: the answer is empty (0 bytes); nothing was stored. Run the update again.")
        if root_tag is None:
            raise PubMedParseError(
                f"{where}: the answer ends before its first element ({_snippet(head)}); it was cut "
                "short or is not XML. Nothing was stored: run the update again."
            )
        if root_tag != "PubmedArticleSet":
            data = head + b"".join(body)
            try:
                root = ET.fromstring(data)
            except ET.ParseError:
                root = None
            errors = (_error_texts(root) or ([_flat(root)] if root.tag == "ERROR" else [])) if root is not None else []
            if errors:
                raise EntrezAnswerError(f"{where}: NCBI reported an error: {'; '.join(errors)}")
            raise PubMedParseError(
                f"{where}: expected <PubmedArticleSet>, got <{root_tag or '?'}>; {_snippet(data)}; "
                "this is not a PubMed efetch answer"
            )
        if broken is None:
            checker.close()
        elif not _END_RE.search(tail):
            raise broken
    except ET.ParseError as e:
        raise PubMedParseError(
            f"{where}: the XML is incomplete or malformed ({e}); nothing from it was stored. This usually means the "
            "answer was cut short in transit: run the update again."
        ) from None
    if cutter.pending():
        raise PubMedParseError(
            f"{where}: the last article is incomplete; nothing from it was stored. Run the update again."
        )


def _parse_item(raw: bytes, where: str, skipped: list[SkippedRecord] | None) -> Iterator[ParsedArticle]:
    """One article's bytes -> ParsedArticle(s); an article that cannot be read is a named skip (or raises)."""
    field_name = "xml"
    try:
        elem = ET.fromstring(raw)
        if elem.tag in _ARTICLE_TAGS:
            field_name = "record"
            item = ParsedArticle(
                _article_record(elem, where), raw, "book" if elem.tag == "PubmedBookArticle" else "article"
            )
    except Exception as e:  # noqa: BLE001 - one article's problem never fails the answer
        m = _FIRST_PMID_RE.search(raw)
        pmid = m.group(1).decode() if m else None
        what = f"PMID {pmid}" if pmid else "an article without a readable PMID"
        detail = str(e) if isinstance(e, (PubMedParseError, ET.ParseError)) else f"{type(e).__name__}: {e}"
        problem = (
            f"{where}: {what} could not be read ({detail}); it was skipped, the other articles of the answer were kept"
        )
        if skipped is None:
            raise PubMedParseError(problem) from None
        skipped.append(SkippedRecord("pubmed", pmid, field_name, problem, raw.decode("utf-8", "replace")))
        return
    if elem.tag in _ARTICLE_TAGS:
        yield item
    elif elem.tag == "DeleteCitation":
        for pmid_el in elem.iter("PMID"):
            pmid = (pmid_el.text or "").strip()
            if pmid:
                rec = Record(source="pubmed", source_id=pmid, source_version=pmid_el.get("Version"), deleted=True)
                yield ParsedArticle(rec, raw, "delete")


class _Cleaner:
    """Removes characters XML 1.0 forbids from a byte stream, chunk by chunk.

    A character reference (`&#11;`) may straddle two chunks: an unfinished `&#...` at the end of a chunk is
    held back until the next one.
    """

    def __init__(self) -> None:
        self.carry = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self.carry + chunk
        self.carry = b""
        amp = data.rfind(b"&#", max(0, len(data) - 12))
        if amp >= 0 and b";" not in data[amp:]:
            data, self.carry = data[:amp], data[amp:]
        elif data.endswith(b"&"):
            data, self.carry = data[:-1], b"&"
        return _clean(data)

    def flush(self) -> bytes:
        data, self.carry = self.carry, b""
        return _clean(data)


def _clean(data: bytes) -> bytes:
    if b"&#" in data:
        data = _ILLEGAL_REFS_RE.sub(b"", data)
    return _ILLEGAL_BYTES_RE.sub(b"", data)


class _Discard:
    """An expat target with no callbacks: the parser only checks well-formedness."""

    def close(self) -> None:
        return None


def _root_tag(head: bytes) -> str | None:
    m = _ROOT_RE.search(head)
    return m.group(1).decode("ascii", "replace") if m else None


_ROOT_RE = re.compile(rb"<([A-Za-z_][\w.:-]*)[\s/>]")


class _RawCutter:
    """Cuts each article's exact bytes out of the byte stream, in document order.

    PubMed never nests these elements nor writes their tags inside text (it escapes `<`), so the
    n-th closing tag ends the n-th article the XML parser reports.
    """

    def __init__(self, out: deque[bytes]) -> None:
        self.out = out
        self.buf = bytearray()

    def feed(self, chunk: bytes) -> None:
        self.buf += chunk
        buf = self.buf
        pos = 0
        while True:
            m = _RAW_OPEN_RE.search(buf, pos)
            if m is None:
                # keep a tail in case an opening tag straddles two chunks
                keep = max(pos, len(buf) - 24)
                break
            close = _RAW_CLOSE[m.group(1)]
            end = buf.find(close, m.end())
            if end < 0:
                keep = m.start()
                break
            end += len(close)
            self.out.append(bytes(buf[m.start() : end]))
            pos = end
        del buf[:keep]

    def pending(self) -> bool:
        return _RAW_OPEN_RE.search(self.buf) is not None


def _article_record(art: ET.Element, where: str) -> Record:
    if art.tag == "PubmedBookArticle":
        return _book_record(art, where)
    cit = art.find("MedlineCitation")
    pmid_el = cit.find("PMID") if cit is not None else None
    pmid = (pmid_el.text or "").strip() if pmid_el is not None else ""
    if not pmid:
        raise PubMedParseError(
            f"{where}: a PubmedArticle has no MedlineCitation/PMID; the answer is damaged. "
            "Run the update again; if it persists, report the batch to NCBI."
        )
    assert cit is not None and pmid_el is not None  # a PMID was read from them
    article = cit.find("Article")
    if article is None:
        article = ET.Element("Article")
    pubmed_data = art.find("PubmedData")
    journal = article.find("Journal")
    issue = journal.find("JournalIssue") if journal is not None else None
    pub_date = issue.find("PubDate") if issue is not None else None
    year, month, date_text = _pub_date(pub_date)
    if year is None:
        year, month, date_text = _pub_date(article.find("ArticleDate"))

    pub_types, pub_uis = [], []
    for pt in _path(article, "PublicationTypeList", "PublicationType"):
        pub_types.append(_flat(pt))
        pub_uis.append(pt.get("UI") or "")
    is_rct = any(
        ui == RCT_UI or (not ui and name.lower() == "randomized controlled trial")
        for name, ui in zip(pub_types, pub_uis)
    )
    veterinary = any(
        ui == RCT_VETERINARY_UI or name.lower() == "randomized controlled trial, veterinary"
        for name, ui in zip(pub_types, pub_uis)
    )

    title = _flat(article.find("ArticleTitle")) or _flat(article.find("VernacularTitle"))
    abstract = _abstract(article.find("Abstract"))
    corrections = _corrections(cit)
    retracted = any(
        ui == RETRACTED_PUBLICATION_UI or name.lower() == "retracted publication"
        for name, ui in zip(pub_types, pub_uis)
    ) or any(c["type"] == "RetractionIn" for c in corrections)

    ids = _article_ids(pubmed_data)
    doi = normalise_doi(ids.get("doi"))
    if doi is None:
        for loc in article.findall("ELocationID"):
            if loc.get("EIdType") == "doi" and loc.get("ValidYN", "Y") != "N":
                doi = normalise_doi(loc.text)
                break

    languages = [(e.text or "").strip() for e in article.findall("Language") if (e.text or "").strip()]
    mesh, mesh_major = _mesh(cit)
    keywords = [_flat(k) for k in _path(cit, "KeywordList", "Keyword") if _flat(k)]
    registry: list[str] = []
    for acc in _path(article, "DataBankList", "DataBank", "AccessionNumberList", "AccessionNumber"):
        rid = normalise_registry_id(acc.text or "")
        if rid and rid not in registry:
            registry.append(rid)
    for rid in find_registry_ids(f"{title}\n{abstract}"):
        if rid not in registry:
            registry.append(rid)

    extra: dict = {"medline_status": cit.get("Status")}
    if journal is not None:
        extra["iso_abbreviation"] = journal.findtext("ISOAbbreviation")
        extra["issn"] = journal.findtext("ISSN")
    if issue is not None:
        extra["volume"] = issue.findtext("Volume")
        extra["issue"] = issue.findtext("Issue")
    extra["pages"] = article.findtext("Pagination/MedlinePgn")
    extra["pub_date"] = date_text
    if len(languages) > 1:
        extra["languages"] = languages
    if mesh_major:
        extra["mesh_major"] = mesh_major
    if veterinary:
        extra["veterinary_rct"] = True
    if pubmed_data is not None:
        extra["publication_status"] = pubmed_data.findtext("PublicationStatus")
        entrez = _history_date(pubmed_data, "entrez") or _history_date(pubmed_data, "pubmed")
        if entrez:
            extra["entrez_date"] = entrez
    extra = {k: v for k, v in extra.items() if v not in (None, "", [])}

    journal_name = None
    if journal is not None:
        journal_name = _flat(journal.find("Title")) or None
    journal_name = journal_name or cit.findtext("MedlineJournalInfo/MedlineTA")

    return Record(
        source="pubmed",
        source_id=pmid,
        source_version=pmid_el.get("Version") or "1",
        title=title,
        abstract=abstract,
        authors=_authors(article.find("AuthorList")),
        journal=journal_name,
        year=year,
        month=month,
        doi=doi,
        pmcid=ids.get("pmc"),
        language=languages[0] if languages else None,
        publication_types=pub_types,
        is_rct=is_rct,
        mesh=mesh,
        keywords=keywords,
        registry_ids=registry,
        deleted=False,
        retracted=retracted,
        corrections=corrections,
        extra=extra,
    )


def _book_record(art: ET.Element, where: str) -> Record:
    doc = art.find("BookDocument")
    pmid_el = doc.find("PMID") if doc is not None else None
    pmid = (pmid_el.text or "").strip() if pmid_el is not None else ""
    if not pmid:
        raise PubMedParseError(f"{where}: a PubmedBookArticle has no BookDocument/PMID; the answer is damaged.")
    assert doc is not None and pmid_el is not None  # a PMID was read from them
    book = doc.find("Book")
    title = _flat(doc.find("ArticleTitle")) or _flat(book.find("BookTitle") if book is not None else None)
    abstract = _abstract(doc.find("Abstract"))
    year, month, date_text = _pub_date(book.find("PubDate") if book is not None else None)
    pub_types = [_flat(pt) for pt in doc.findall("PublicationType")]
    authors = _authors(doc.find("AuthorList"))
    if not authors and book is not None:
        authors = _authors(book.find("AuthorList"))
    ids = _article_ids(art.find("PubmedBookData"))
    ids.update({k: v for k, v in _article_ids(doc).items() if k not in ids})
    languages = [(e.text or "").strip() for e in doc.findall("Language") if (e.text or "").strip()]
    extra = {
        k: v
        for k, v in {
            "book": True,
            "pub_date": date_text,
            "publisher": book.findtext("Publisher/PublisherName") if book is not None else None,
        }.items()
        if v not in (None, "")
    }
    return Record(
        source="pubmed",
        source_id=pmid,
        source_version=pmid_el.get("Version") or "1",
        title=title,
        abstract=abstract,
        authors=authors,
        journal=_flat(book.find("BookTitle")) if book is not None else None,
        year=year,
        month=month,
        doi=normalise_doi(ids.get("doi")),
        pmcid=ids.get("pmc"),
        language=languages[0] if languages else None,
        publication_types=pub_types,
        is_rct=False,
        keywords=[_flat(k) for k in _path(doc, "KeywordList", "Keyword")],
        registry_ids=find_registry_ids(f"{title}\n{abstract}"),
        extra=extra,
    )


# ----------------------------------------------------------------------------- field helpers


def _path(el: ET.Element, *tags: str) -> list[ET.Element]:
    """`el.iterfind("A/B/...")` in the same document order, through the C fast path of `findall(tag)`.

    `iterfind` with a path runs ElementPath's Python generators; on large answers that was a tenth of the
    parse time.
    """
    found = [el]
    for tag in tags:
        found = [child for parent in found for child in parent.findall(tag)]
    return found


def _flat(el: ET.Element | None) -> str:
    """Plain text of an element with inline HTML (<i>, <sup>, ...) and MathML flattened."""
    if el is None:
        return ""
    if len(el) == 0:
        return _WS_RE.sub(" ", el.text or "").strip()
    parts: list[str] = []
    _collect(el, parts)
    return _WS_RE.sub(" ", "".join(parts)).strip()


def _collect(el: ET.Element, parts: list[str]) -> None:
    local = el.tag.rsplit("}", 1)[-1]
    # MathML annotations repeat the formula as TeX/MathML source: reading them would print it twice
    if local in _MATHML_SKIP:
        return
    if el.tag.startswith(_MATHML_NS):
        # a formula's tokens are written one per indented line: V . O 2 m a x -> V.O2max
        parts.append("".join(t.strip() for t in _math_tokens(el)))
        return
    if el.text:
        parts.append(_trim_indent(el.text) if len(el) else el.text)
    for child in el:
        _collect(child, parts)
        if child.tail:
            parts.append(_trim_indent(child.tail) if child is not el[-1] else child.tail)


def _math_tokens(el: ET.Element) -> Iterator[str]:
    if el.tag.rsplit("}", 1)[-1] in _MATHML_SKIP:
        return
    if el.text:
        yield el.text
    for child in el:
        yield from _math_tokens(child)
        if child.tail:
            yield child.tail


def _trim_indent(text: str) -> str:
    # pretty-printed XML puts a newline and indentation before inline tags ("β\n\t\t<sub>2</sub>"): that
    # whitespace is layout, not a word break
    stripped = text.rstrip()
    return stripped if "\n" in text[len(stripped) :] else text


def _abstract(abstract: ET.Element | None) -> str:
    if abstract is None:
        return ""
    parts = []
    for sec in abstract.findall("AbstractText"):
        text = _flat(sec)
        label = (sec.get("Label") or "").strip()
        if label and label.upper() != "UNLABELLED":
            parts.append(f"{label}: {text}" if text else f"{label}:")
        elif text:
            parts.append(text)
    return "\n".join(parts)


def _authors(author_list: ET.Element | None) -> list[str]:
    if author_list is None:
        return []
    out = []
    for a in author_list.findall("Author"):
        if a.get("ValidYN", "Y") == "N":
            continue
        last = _flat(a.find("LastName"))
        if last:
            initials = _flat(a.find("Initials")) or "".join(w[0] for w in _flat(a.find("ForeName")).split() if w)
            out.append(f"{last} {initials}".strip())
        else:
            collective = _flat(a.find("CollectiveName"))
            if collective:
                out.append(collective)
    return out


def _pub_date(el: ET.Element | None) -> tuple[int | None, int | None, str | None]:
    """(year, month, text) from a PubDate in any of its forms: Year/Month/Day, Year+Season, MedlineDate."""
    if el is None:
        return None, None, None
    year_t = (el.findtext("Year") or "").strip()
    if year_t:
        month_t = (el.findtext("Month") or "").strip()
        season = (el.findtext("Season") or "").strip()
        day_t = (el.findtext("Day") or "").strip()
        month = _month(month_t)
        text = " ".join(p for p in (year_t, month_t or season, day_t) if p)
        return (int(year_t) if year_t.isdigit() else None), month, text
    medline = _flat(el.find("MedlineDate"))
    if medline:
        m = _YEAR_RE.search(medline)
        year = int(m.group(1)) if m else None
        month = None
        if m:
            # the month that follows the (first) year: "1998 Dec-1999 Jan" -> December 1998
            mm = _MONTH_WORD_RE.search(medline, m.end())
            month = _MONTHS[mm.group(1).lower()] if mm and mm.start() - m.end() <= 2 else None
        return year, month, medline
    return None, None, None


def _month(text: str) -> int | None:
    if not text:
        return None
    if text.isdigit():
        n = int(text)
        return n if 1 <= n <= 12 else None
    return _MONTHS.get(text[:3].lower())


def _article_ids(container: ET.Element | None) -> dict[str, str]:
    ids: dict[str, str] = {}
    if container is None:
        return ids
    # only the article's own list: reference lists carry the cited papers' ids
    for aid in _path(container, "ArticleIdList", "ArticleId"):
        kind = aid.get("IdType") or ""
        value = (aid.text or "").strip()
        if kind and value and kind not in ids:
            ids[kind] = value
    return ids


def _corrections(cit: ET.Element) -> list[dict]:
    out = []
    for cc in _path(cit, "CommentsCorrectionsList", "CommentsCorrections"):
        kind = cc.get("RefType") or ""
        if kind in CORRECTION_TYPES:
            pmid = (cc.findtext("PMID") or "").strip() or None
            out.append({"type": kind, "pmid": pmid, "text": _flat(cc.find("RefSource")) or None})
    return out


def _mesh(cit: ET.Element) -> tuple[list[str], list[str]]:
    mesh: list[str] = []
    major: list[str] = []
    for mh in _path(cit, "MeshHeadingList", "MeshHeading"):
        d = mh.find("DescriptorName")
        if d is None:
            continue
        name = _flat(d)
        mesh.append(name)
        if d.get("MajorTopicYN") == "Y":
            major.append(name)
        for q in mh.findall("QualifierName"):
            mesh.append(f"{name}/{_flat(q)}")
            if q.get("MajorTopicYN") == "Y" and name not in major:
                major.append(name)
    return mesh, major


def _history_date(pubmed_data: ET.Element, status: str) -> str | None:
    for d in _path(pubmed_data, "History", "PubMedPubDate"):
        if d.get("PubStatus") == status:
            y, m, day = d.findtext("Year"), d.findtext("Month"), d.findtext("Day")
            if y and m and day:
                try:
                    return dt.date(int(y), int(m), int(day)).isoformat()
                except ValueError:
                    return None
    return None


def _int(text: str | None) -> int:
    try:
        return int((text or "0").strip())
    except ValueError:
        return 0


def _snippet(data: bytes, n: int = 160) -> str:
    text = data[:n].decode("utf-8", "replace").replace("\n", " ")
    return f"the answer begins {text!r}" if text else "the answer is empty"
