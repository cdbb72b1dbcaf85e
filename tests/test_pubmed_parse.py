"""Parsing PubMed efetch/esearch answers into Records (pure functions, no network)."""

from __future__ import annotations

import datetime as dt
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from livingmeta.sources.pubmed import (
    EntrezAnswerError,
    PubMedParseError,
    efetch_history_params,
    efetch_params,
    esearch_params,
    parse_efetch,
    parse_esearch,
    split_window,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "pubmed"
SHARED_PUBMED = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "pubmed"


def _records(name: str, **kw):
    return {a.record.source_id: a for a in parse_efetch(FIXTURES / name, **kw)}


def test_rct_with_structured_abstract_markup_and_registry_ids():
    r = _records("articles.xml")["30000001"].record
    assert r.record_id == "pubmed:30000001"
    assert r.source_version == "1"
    # inline HTML and MathML flattened; the TeX annotation is not read twice
    assert r.title == "Intravenous immunoglobulin for small fiber neuropathy with TS-HDS antibodies: a randomized trial of IVIg m2 dosing."
    assert r.abstract.splitlines()[0].startswith("BACKGROUND: Small fiber neuropathy causes pain")
    assert r.abstract.splitlines()[1] == "METHODS: Patients received IVIg 2 g/kg or placebo; pain was scored 0–10 (P < 0.05 considered significant)."
    assert r.abstract.splitlines()[2] == "RESULTS: Responders: 12/30 versus 9/30."
    # the invalid author (ValidYN="N") is left out; a collective author is kept
    assert r.authors == ["Geerts M", "de Greef BTA", "IVIG-SFN study group"]
    assert (r.journal, r.year, r.month) == ("Neurology", 2021, 3)
    # the article's own DOI/PMCID, never the ones in its reference list
    assert r.doi == "10.1212/wnl.0000000000011919"
    assert r.pmcid == "PMC8163972"
    assert r.language == "eng"
    assert r.is_rct is True
    assert r.publication_types == ["Journal Article", "Randomized Controlled Trial"]
    assert r.mesh == ["Immunoglobulins, Intravenous", "Immunoglobulins, Intravenous/therapeutic use", "Neuralgia",
                      "Randomized Controlled Trials as Topic"]
    assert r.extra["mesh_major"] == ["Immunoglobulins, Intravenous"]
    assert r.keywords == ["small fiber neuropathy", "IVIg"]
    # DataBankList first, then ids mentioned in the abstract, each once
    assert r.registry_ids == ["NCT02637700", "ISRCTN12345678", "EudraCT 2015-002624-31"]
    assert r.extra["entrez_date"] == "2021-03-11"
    assert r.retracted is False and r.deleted is False


def test_season_date_and_veterinary_rct_is_not_a_human_rct():
    r = _records("articles.xml")["30000002"].record
    assert (r.year, r.month) == (2020, None)
    assert r.extra["pub_date"] == "2020 Spring"
    assert r.is_rct is False
    assert r.extra["veterinary_rct"] is True
    assert "Randomized Controlled Trial, Veterinary" in r.publication_types
    assert r.authors == ["Müller AL"]  # initials made from ForeName when Initials is missing
    assert r.language == "eng" and r.extra["languages"] == ["eng", "ger"]


def test_medline_date_erratum_and_expression_of_concern():
    r = _records("articles.xml")["30000003"].record
    assert (r.year, r.month) == (1998, 12)
    assert r.extra["pub_date"] == "1998 Dec-1999 Jan"
    assert r.doi == "10.1000/pc.1998.77"  # from ELocationID, resolver prefix removed
    assert r.abstract == "Ten patients with CRPS were treated. UNLABELLED text follows.\nSecond paragraph."
    assert r.corrections == [
        {"type": "ErratumIn", "pmid": "30000010", "text": "Pain Clin. 1999;8:10"},
        {"type": "ExpressionOfConcernIn", "pmid": None, "text": "Pain Clin. 2005;14:1"},
    ]  # CommentIn is not a correction


def test_book_article():
    a = _records("articles.xml")["30000006"]
    assert a.kind == "book"
    assert a.record.title == "Immunotherapy chapter"
    assert (a.record.year, a.record.month) == (2022, 7)
    assert a.record.registry_ids == ["NCT00000001"]


def test_retracted_publication_and_retraction_notice():
    recs = _records("retraction.xml")
    retracted, notice = recs["30000005"].record, recs["30000004"].record
    assert retracted.retracted is True
    assert retracted.corrections == [{"type": "RetractionIn", "pmid": "30000004", "text": "Pain Res. 2023;5:1"}]
    # the notice is not itself retracted; it points at what it retracts
    assert notice.retracted is False
    assert notice.corrections[0]["type"] == "RetractionOf"


def test_delete_citation_marks_every_listed_pmid_deleted():
    items = list(parse_efetch(FIXTURES / "delete.xml"))
    assert [(a.kind, a.record.source_id, a.record.deleted) for a in items] == [
        ("delete", "30000002", True), ("delete", "39999999", True)]
    assert items[0].payload.startswith(b"<DeleteCitation>") and items[0].payload.endswith(b"</DeleteCitation>")


@pytest.mark.parametrize("chunk_size", [1, 7, 100, 1 << 16])
def test_payload_is_the_exact_bytes_sent_whatever_the_chunking(chunk_size):
    data = (FIXTURES / "articles.xml").read_bytes()
    items = list(parse_efetch(data, chunk_size=chunk_size))
    assert [a.record.source_id for a in items] == ["30000001", "30000002", "30000003", "30000006"]
    for a in items:
        assert a.payload in data
        assert f"{a.record.source_id}</PMID>".encode() in a.payload
    assert items[0].payload.startswith(b"<PubmedArticle>") and items[0].payload.endswith(b"</PubmedArticle>")
    assert items[3].payload.startswith(b"<PubmedBookArticle>")


def test_file_object_and_bytes_give_the_same_records():
    data = (FIXTURES / "articles.xml").read_bytes()
    a = [x.record.content_hash() for x in parse_efetch(io.BytesIO(data))]
    b = [x.record.content_hash() for x in parse_efetch(data)]
    assert a == b and len(set(a)) == 4


def test_every_truncation_point_raises_a_clear_error():
    data = (FIXTURES / "retraction.xml").read_bytes()
    end = data.rindex(b"</PubmedArticleSet>")
    for cut in list(range(0, end, 97)) + [end, end + 5]:
        with pytest.raises(PubMedParseError) as e:
            list(parse_efetch(data[:cut], where="efetch batch 1"))
        assert "efetch batch 1" in str(e.value)
        assert "run the update again" in str(e.value).lower()


def test_error_inside_a_200_body():
    with pytest.raises(EntrezAnswerError, match="Cannot retrieve history data"):
        list(parse_efetch(FIXTURES / "error_efetch.xml"))
    with pytest.raises(EntrezAnswerError, match="Search Backend failed"):
        parse_esearch((FIXTURES / "esearch_error.xml").read_bytes())
    with pytest.raises(EntrezAnswerError, match=r"PhraseNotFound 'immunoglobulinz\[tiab\]'.*sources.pubmed.query"):
        parse_esearch((FIXTURES / "esearch_phrase_not_found.xml").read_bytes())


def test_not_a_pubmed_answer():
    with pytest.raises(PubMedParseError, match="expected <PubmedArticleSet>"):
        list(parse_efetch(b"<?xml version='1.0'?><html><body>Service unavailable</body></html>"))
    with pytest.raises(PubMedParseError, match="empty"):
        list(parse_efetch(b""))
    with pytest.raises(PubMedParseError, match="has no MedlineCitation/PMID"):
        list(parse_efetch(b"<PubmedArticleSet><PubmedArticle><MedlineCitation/></PubmedArticle></PubmedArticleSet>"))
    with pytest.raises(PubMedParseError, match="not complete XML"):
        parse_esearch(b'{"error":"API rate limit exceeded","count":"11"}')


def test_esearch_answer():
    body = (b"<?xml version='1.0'?><eSearchResult><Count>3</Count><RetMax>3</RetMax><RetStart>0</RetStart>"
            b"<QueryKey>1</QueryKey><WebEnv>MCID_abc</WebEnv><IdList><Id>3</Id><Id>2</Id><Id>1</Id></IdList>"
            b"<QueryTranslation>x[All Fields]</QueryTranslation></eSearchResult>")
    r = parse_esearch(body)
    assert (r.count, r.ids, r.webenv, r.query_key) == (3, ["3", "2", "1"], "MCID_abc", "1")


def test_request_parameters_and_window_halving():
    p = esearch_params("ivig[tiab]", datetype="mdat", start=dt.date(2024, 1, 1), end=dt.date(2024, 1, 31))
    assert p == {"db": "pubmed", "term": "ivig[tiab]", "datetype": "mdat", "mindate": "2024/01/01",
                 "maxdate": "2024/01/31", "retmax": "9999", "retmode": "xml", "usehistory": "y"}
    assert efetch_params(["1", "2"])["id"] == "1,2"
    assert efetch_history_params("MCID_abc", "1", 400, 200) == {
        "db": "pubmed", "WebEnv": "MCID_abc", "query_key": "1", "retstart": "400", "retmax": "200", "retmode": "xml",
        "rettype": "abstract"}
    for bad in (("", "1", 0, 200), ("MCID_abc", None, 0, 200), ("MCID_abc", "1", -1, 200), ("MCID_abc", "1", 0, 0)):
        with pytest.raises(ValueError):
            efetch_history_params(*bad)
    assert split_window(dt.date(2024, 1, 1), dt.date(2024, 1, 4)) == (
        (dt.date(2024, 1, 1), dt.date(2024, 1, 2)), (dt.date(2024, 1, 3), dt.date(2024, 1, 4)))
    assert split_window(dt.date(2024, 1, 1), dt.date(2024, 1, 2)) == (
        (dt.date(2024, 1, 1), dt.date(2024, 1, 1)), (dt.date(2024, 1, 2), dt.date(2024, 1, 2)))
    assert split_window(dt.date(2024, 1, 1), dt.date(2024, 1, 1)) is None
    with pytest.raises(ValueError):
        esearch_params("x", datetype="edat", start=dt.date(2024, 2, 1), end=dt.date(2024, 1, 1))


def _shared_files():
    if not SHARED_PUBMED.exists():
        return []
    return sorted(SHARED_PUBMED.glob("*.xml"))


@pytest.mark.parametrize("path", _shared_files() or [pytest.param(None, marks=pytest.mark.skip(
    reason="../shared/fixtures/pubmed is not beside the repository"))], ids=lambda p: getattr(p, "name", "none"))
def test_every_shared_fixture_is_read_or_refused_clearly(path):
    from Bio import Entrez

    data = path.read_bytes()
    root = data.split(b"<!DOCTYPE ", 1)[-1].split(b" ", 1)[0]
    if root == b"PubmedArticleSet":
        items = list(parse_efetch(data, where=path.name))
        assert items
        # the same PMIDs, in the same order, as Biopython's DTD-validating parser
        bio = Entrez.read(io.BytesIO(data))
        bio_ids = [str(a["MedlineCitation"]["PMID"]) for a in bio["PubmedArticle"]]
        assert [a.record.source_id for a in items] == bio_ids
        for item in items:
            assert item.record.title and item.record.year
            assert item.payload in data
    elif root == b"eSearchResult":
        try:
            r = parse_esearch(data, where=path.name)
        except EntrezAnswerError as e:
            assert "PhraseNotFound" in str(e)
        else:
            assert r.count >= len(r.ids)
    else:  # esummary/epost answers carrying <ERROR>: not efetch answers, refused with the reason
        with pytest.raises((EntrezAnswerError, PubMedParseError)):
            list(parse_efetch(data, where=path.name))


# --- issue 14: one bad article never fails the answer ---------------------------------------------------------

def _with_bad_text(data: bytes, pmid: str, junk: bytes) -> bytes:
    """`junk` put into the title of article `pmid`."""
    start = data.index(f"{pmid}</PMID>".encode())
    title = data.index(b"<ArticleTitle>", start) + len(b"<ArticleTitle>")
    return data[:title] + junk + data[title:]


@pytest.mark.parametrize("junk", [b"\x0b", b"\x1b[0m", b"\x00", b"&#11;", b"&#x1B;", b"a\x0bb&#x0;c"])
@pytest.mark.parametrize("chunk_size", [1, 5, 1 << 16])
def test_control_characters_are_stripped_and_every_article_is_kept(junk, chunk_size):
    data = (FIXTURES / "articles.xml").read_bytes()
    bad = _with_bad_text(data, "30000002", junk)
    with pytest.raises(Exception):
        ET.fromstring(bad)  # the answer really is not XML 1.0 as sent
    skipped = []
    items = list(parse_efetch(bad, chunk_size=chunk_size, skipped=skipped))
    assert [a.record.source_id for a in items] == ["30000001", "30000002", "30000003", "30000006"]
    assert skipped == []
    clean = {a.record.source_id: a.record for a in parse_efetch(data)}
    for a in items:
        if a.record.source_id != "30000002":
            assert a.record == clean[a.record.source_id]
    assert not any(c in items[1].record.title for c in "\x0b\x1b\x00")


def test_an_article_with_broken_markup_is_a_named_skip_and_the_others_are_kept():
    data = (FIXTURES / "articles.xml").read_bytes()
    bad = _with_bad_text(data, "30000002", b"<i>unclosed italic ")
    skipped = []
    items = list(parse_efetch(bad, where="efetch batch 3", skipped=skipped))
    assert [a.record.source_id for a in items] == ["30000001", "30000003", "30000006"]
    assert [(s.source, s.source_id, s.field) for s in skipped] == [("pubmed", "30000002", "xml")]
    assert "efetch batch 3" in skipped[0].problem and "PMID 30000002" in skipped[0].problem
    assert skipped[0].payload.startswith("<PubmedArticle>")
    # strict callers (no list) still get a clear error naming the article
    with pytest.raises(PubMedParseError, match="PMID 30000002"):
        list(parse_efetch(bad))
    # a cut answer is still refused as a whole, broken article or not
    with pytest.raises(PubMedParseError, match="run the update again"):
        list(parse_efetch(bad[:bad.rindex(b"</PubmedArticleSet>")], skipped=[]))


def test_an_article_without_pmid_is_skipped_when_asked():
    skipped = []
    body = (b"<PubmedArticleSet><PubmedArticle><MedlineCitation/></PubmedArticle>"
            + (FIXTURES / "articles.xml").read_bytes().split(b"<PubmedArticleSet>")[1])
    items = list(parse_efetch(body, skipped=skipped))
    assert len(items) == 4 and skipped[0].source_id is None and "has no MedlineCitation/PMID" in skipped[0].problem
