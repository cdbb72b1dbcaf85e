"""The PubMed search task against a real HTTP server on 127.0.0.1 playing NCBI (recorded articles).

Everything goes through the real stack: Bio.Entrez request building, the choke point (rate limit,
backoff, tries), the streaming parser and one-transaction storage in a real DuckDB file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ncbi_server import Article, FakeNCBI, Fault, fixture_articles, synthetic_articles
from tasks.entrez import EntrezClient, EntrezSettings, RateLimiter
from tasks.pubmed import run_pubmed_search, search_pubmed
from warehouse import connect, rows_as_dicts

REPO = Path(__file__).resolve().parents[1]
AS_OF = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
KEY = "SECRET-NCBI-KEY-0123456789"
RATE_LIMIT_JSON = b'{"error":"API rate limit exceeded","api-key":"1.2.3.4","count":"4","limit":"3"}'


def write_review(folder: Path, batch_size: int = 200, replay: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "review.toml").write_text(textwrap.dedent(f"""
        id = "test-review"
        title = "Test review"
        [sources.pubmed]
        query = '"immunoglobulin"[tiab] AND neuropathy[tiab]'
        earliest_date = 1990-01-01
        overlap_days = 7
        batch_size = {batch_size}
        {f'replay = "{replay}"' if replay else ''}
    """), encoding="utf-8")
    return folder


def make_client(ncbi: FakeNCBI, sleeps: list | None = None, **kw) -> EntrezClient:
    settings = dict(base_url=ncbi.url, email="team@example.org", api_key=KEY, timeout=2.0, max_tries=3,
                    backoff_base=0.001, backoff_max=0.01, requests_per_second=1000.0)
    settings.update(kw)
    recorded = sleeps if sleeps is not None else []
    return EntrezClient(EntrezSettings(**settings), limiter=RateLimiter(), sleep=recorded.append)


def run(review: Path, wh: Path, client, as_of=AS_OF, **kw) -> dict:
    return run_pubmed_search(str(review), str(wh), None, as_of, client=client, **kw)


def table(wh: Path, sql: str) -> list[dict]:
    con = connect(wh)
    try:
        return rows_as_dicts(con, sql)
    finally:
        con.close()


def watermark(wh: Path):
    rows = table(wh, "SELECT watermark FROM source_watermarks")
    return rows[0]["watermark"] if rows else None


@pytest.fixture()
def review(tmp_path) -> Path:
    return write_review(tmp_path / "review")


def test_happy_path_stores_every_record_once_with_raw_payload_and_watermark(review, warehouse_path):
    arts = fixture_articles("articles.xml", "retraction.xml")
    with FakeNCBI(arts) as ncbi:
        result = run(review, warehouse_path, make_client(ncbi))
        assert result["status"] == "succeeded", result
        assert (result["found"], result["new"], result["changed"], result["unchanged"]) == (6, 6, 0, 0)
        assert result["window"] == ["1990-01-01", "2024-01-01"]
        searches = ncbi.calls("esearch.fcgi")
        assert sorted(r["params"]["datetype"] for r in searches) == ["edat", "mdat"]
        assert all(r["params"]["usehistory"] == "y" and r["params"]["mindate"] == "1990/01/01" for r in searches)
        fetches = ncbi.calls("efetch.fcgi")
        # one efetch of the edat search's six records from the history server; mdat found the same six: no refetch
        assert len(fetches) == 1 and "id" not in fetches[0]["params"]
        kept = ncbi.histories[fetches[0]["params"]["WebEnv"]]
        assert kept["params"]["datetype"] == "edat" and len(kept["ids"]) == 6
        assert {k: fetches[0]["params"][k] for k in ("query_key", "retstart", "retmax")} == {
            "query_key": "1", "retstart": "0", "retmax": "200"}
        for r in ncbi.requests:
            # every request: POST, tool and email sent, the key in the body only
            assert r["method"] == "POST" and KEY not in r["path"]
            assert r["params"]["tool"] == "livingmeta" and r["params"]["email"] == "team@example.org"
            assert r["params"]["api_key"] == KEY
    recs = table(warehouse_path, "SELECT record_id, version, title, is_rct, retracted FROM records ORDER BY record_id")
    assert [r["record_id"] for r in recs] == [f"pubmed:{p}" for p in
                                              ("30000001", "30000002", "30000003", "30000004", "30000005", "30000006")]
    raw = table(warehouse_path, "SELECT source_id, payload FROM raw_records ORDER BY source_id")
    by_pmid = {a.pmid: a.xml.decode() for a in arts}
    assert all(r["payload"] == by_pmid[r["source_id"]] for r in raw) and len(raw) == 6
    runs = table(warehouse_path, "SELECT status, mode, n_found, n_new, n_requests, error FROM search_runs")
    assert runs == [{"status": "succeeded", "mode": "live", "n_found": 6, "n_new": 6, "n_requests": 3, "error": None}]
    assert watermark(warehouse_path) == AS_OF
    assert table(warehouse_path, "SELECT count(*) AS n FROM review_records")[0]["n"] == 6
    # the key is nowhere in the warehouse
    con = connect(warehouse_path)
    try:
        for (name,) in con.execute("SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'").fetchall():
            for row in con.execute(f'SELECT * FROM "{name}"').fetchall():
                assert KEY not in repr(row)
    finally:
        con.close()


def test_rerun_is_unchanged_and_searches_from_watermark_minus_overlap(review, warehouse_path):
    arts = fixture_articles("articles.xml")
    with FakeNCBI(arts) as ncbi:
        run(review, warehouse_path, make_client(ncbi))
        ncbi.requests.clear()
        later = AS_OF + dt.timedelta(days=30)
        result = run(review, warehouse_path, make_client(ncbi), as_of=later)
        assert result["window"] == ["2023-12-25", "2024-01-31"]
        assert {r["params"]["mindate"] for r in ncbi.calls("esearch.fcgi")} == {"2023/12/25"}
        assert not ncbi.calls("efetch.fcgi")  # nothing in the new window: nothing fetched
        assert (result["found"], result["new"], result["changed"]) == (0, 0, 0)
        assert watermark(warehouse_path) == later
        # NCBI touched the records (modification date in the window) without changing their content
        ncbi.set_articles([Article(a.pmid, a.xml, a.edat, dt.date(2024, 2, 10)) for a in arts])
        again = run(review, warehouse_path, make_client(ncbi), as_of=later + dt.timedelta(days=30))
    assert (again["found"], again["new"], again["changed"], again["unchanged"]) == (4, 0, 0, 4)
    assert table(warehouse_path, "SELECT max(version) AS v, count(*) AS n FROM record_versions")[0] == {"v": 1, "n": 4}
    assert table(warehouse_path, "SELECT count(*) AS n FROM raw_records")[0]["n"] == 4
    runs = table(warehouse_path, "SELECT n_found, n_unchanged FROM search_runs ORDER BY run_id")
    assert runs[-1] == {"n_found": 4, "n_unchanged": 4}


def test_revised_record_gets_a_new_version(review, warehouse_path):
    arts = fixture_articles("articles.xml")
    with FakeNCBI(arts) as ncbi:
        run(review, warehouse_path, make_client(ncbi))
        first = arts[0]
        revised_xml = (first.xml.replace(b'<PMID Version="1">30000001', b'<PMID Version="2">30000001')
                       .replace(b"Responders: 12/30 versus 9/30.", b"Responders: 13/30 versus 9/30 (corrected)."))
        ncbi.set_articles([Article(first.pmid, revised_xml, first.edat, dt.date(2024, 1, 20))] + arts[1:])
        result = run(review, warehouse_path, make_client(ncbi), as_of=AS_OF + dt.timedelta(days=30))
    assert (result["found"], result["changed"], result["new"]) == (1, 1, 0)
    versions = table(warehouse_path, "SELECT version, changed_fields FROM record_versions WHERE record_id = 'pubmed:30000001' ORDER BY version")
    assert [v["version"] for v in versions] == [1, 2]
    assert json.loads(versions[1]["changed_fields"]) == ["abstract", "source_version"]
    rec = table(warehouse_path, "SELECT version, source_version, abstract FROM records WHERE record_id = 'pubmed:30000001'")[0]
    assert rec["version"] == 2 and rec["source_version"] == "2" and "13/30" in rec["abstract"]
    assert table(warehouse_path, "SELECT count(*) AS n FROM raw_records WHERE source_id = '30000001'")[0]["n"] == 2


def test_retraction_notice_marks_the_record_retracted_with_an_event(review, warehouse_path):
    retracted = fixture_articles("retraction.xml")[0]
    before = (retracted.xml.replace(b'<PublicationType UI="D016441">Retracted Publication</PublicationType>', b"")
              .split(b"<CommentsCorrectionsList>")[0] + b"</MedlineCitation>" + retracted.xml.split(b"</MedlineCitation>")[1])
    with FakeNCBI([Article(retracted.pmid, before, retracted.edat, retracted.edat)]) as ncbi:
        assert run(review, warehouse_path, make_client(ncbi))["new"] == 1
        assert table(warehouse_path, "SELECT retracted FROM records")[0]["retracted"] is False
        # the paper (revised: modification date moves) and the notice (new)
        ncbi.set_articles([Article(a.pmid, a.xml, a.edat, dt.date(2024, 1, 20)) for a in fixture_articles("retraction.xml")])
        result = run(review, warehouse_path, make_client(ncbi), as_of=AS_OF + dt.timedelta(days=30))
    assert (result["new"], result["changed"]) == (1, 1)
    rec = table(warehouse_path, "SELECT retracted, corrections FROM records WHERE record_id = 'pubmed:30000005'")[0]
    assert rec["retracted"] is True and json.loads(rec["corrections"])[0]["type"] == "RetractionIn"
    events = table(warehouse_path, "SELECT record_id, kind FROM registry_events")
    assert events == [{"record_id": "pubmed:30000005", "kind": "retracted"}]


def test_delete_citation_marks_the_stored_record_deleted_and_keeps_it(review, warehouse_path, tmp_path):
    with FakeNCBI(fixture_articles("articles.xml")) as ncbi:
        run(review, warehouse_path, make_client(ncbi))
    replay = tmp_path / "replay"
    replay.mkdir()
    (replay / "efetch_001.xml").write_bytes((REPO / "tests/fixtures/pubmed/delete.xml").read_bytes())
    result = run_pubmed_search(str(review), str(warehouse_path), None, AS_OF, str(replay))
    assert result["status"] == "succeeded" and result["mode"] == "replay"
    assert (result["changed"], result["deleted"], result["deleted_unknown"]) == (1, 1, 1)
    rec = table(warehouse_path, "SELECT deleted, title, version FROM records WHERE record_id = 'pubmed:30000002'")[0]
    assert rec == {"deleted": True, "title": "Immunoglobulin for neuropathic pain in dogs: a randomised controlled trial.",
                   "version": 2}
    assert table(warehouse_path, "SELECT count(*) AS n FROM records WHERE record_id = 'pubmed:39999999'")[0]["n"] == 0
    assert table(warehouse_path, "SELECT kind FROM registry_events") == [{"kind": "deleted"}]


def test_windows_at_the_cap_are_halved_until_every_record_is_listed(review, warehouse_path):
    arts = synthetic_articles(450)  # 450 days, one record each; cap 100 -> several parts, each one history fetch
    with FakeNCBI(arts, cap=100) as ncbi:
        result = run(review, warehouse_path, make_client(ncbi), esearch_cap=100)
        searches = ncbi.calls("esearch.fcgi")
        fetches = ncbi.calls("efetch.fcgi")
    assert result["status"] == "succeeded" and result["new"] == 450 and result["found"] == 450
    assert len(searches) > 2
    # every edat part below the cap is fetched from the history server in one slice; mdat parts list the same
    # PMIDs (edat == mdat here) and fetch nothing again
    parts = [ncbi.histories[f["params"]["WebEnv"]] for f in fetches]
    assert all(p["params"]["datetype"] == "edat" and 0 < len(p["ids"]) < 100 for p in parts)
    assert all(f["params"]["retstart"] == "0" and f["params"]["retmax"] == "200" and "id" not in f["params"]
               for f in fetches)
    assert sorted(pmid for p in parts for pmid in p["ids"]) == sorted(a.pmid for a in arts)
    edat_parts = [h for h in ncbi.histories.values() if h["params"]["datetype"] == "edat" and 0 < len(h["ids"]) < 100]
    assert len(fetches) == len(edat_parts) == len({f["params"]["WebEnv"] for f in fetches})
    assert table(warehouse_path, "SELECT count(*) AS n FROM records")[0]["n"] == 450


def test_history_fetch_pages_with_retstart_in_batches(review, warehouse_path):
    arts = synthetic_articles(450)
    with FakeNCBI(arts) as ncbi:
        result = run(review, warehouse_path, make_client(ncbi))
        fetches = ncbi.calls("efetch.fcgi")
        edat = next(h for h in ncbi.histories.values() if h["params"]["datetype"] == "edat")
    assert result["status"] == "succeeded" and result["new"] == 450 and result["requests"] == 2 + 3
    assert [(f["params"]["retstart"], f["params"]["retmax"]) for f in fetches] == [("0", "200"), ("200", "200"), ("400", "200")]
    assert all(f["method"] == "POST" and f["params"]["WebEnv"] == fetches[0]["params"]["WebEnv"] for f in fetches)
    assert len(edat["ids"]) == 450 and ncbi.histories[fetches[0]["params"]["WebEnv"]] is edat
    assert table(warehouse_path, "SELECT count(*) AS n FROM records")[0]["n"] == 450


def test_a_pmid_found_by_edat_and_mdat_is_fetched_and_stored_once(review, warehouse_path):
    old = synthetic_articles(3, first_pmid=40000000, start=dt.date(2022, 1, 1))
    with FakeNCBI(old) as ncbi:
        assert run(review, warehouse_path, make_client(ncbi))["new"] == 3
        # next window 2023-12-25..2024-01-31: two new records (edat and mdat both inside) and an old one NCBI touched
        new = synthetic_articles(2, first_pmid=41000000, start=dt.date(2024, 1, 10))
        touched = Article(old[0].pmid, old[0].xml, old[0].edat, dt.date(2024, 1, 15))
        ncbi.set_articles([touched, *old[1:], *new])
        ncbi.requests.clear()
        second = run(review, warehouse_path, make_client(ncbi), as_of=AS_OF + dt.timedelta(days=30))
        fetches = [f["params"] for f in ncbi.calls("efetch.fcgi")]
        assert (second["found"], second["new"], second["unchanged"], second["changed"]) == (3, 2, 1, 0)
        # edat part from the history server; of the mdat part only the PMID not fetched yet, by id
        assert len(fetches) == 2
        assert ncbi.histories[fetches[0]["WebEnv"]]["params"]["datetype"] == "edat"
        assert fetches[1]["id"] == old[0].pmid and "WebEnv" not in fetches[1]

        # a revision only the mdat search finds: none of its part was fetched, so it comes from the history server
        revised = Article(old[1].pmid, old[1].xml.replace(b"trial number 1 ", b"trial number 1 (corrected) "),
                          old[1].edat, dt.date(2024, 2, 20))
        ncbi.set_articles([touched, revised, old[2], *new])
        ncbi.requests.clear()
        third = run(review, warehouse_path, make_client(ncbi), as_of=AS_OF + dt.timedelta(days=60))
        fetches = [f["params"] for f in ncbi.calls("efetch.fcgi")]
    assert (third["found"], third["new"], third["changed"]) == (1, 0, 1)
    assert len(fetches) == 1 and ncbi.histories[fetches[0]["WebEnv"]]["params"]["datetype"] == "mdat"
    assert table(warehouse_path, "SELECT count(*) AS n FROM records")[0]["n"] == 5
    assert table(warehouse_path, "SELECT record_id, count(*) AS n FROM record_versions GROUP BY 1 HAVING n > 1") == [
        {"record_id": f"pubmed:{old[1].pmid}", "n": 2}]
    assert table(warehouse_path, "SELECT count(*) AS n FROM raw_records")[0]["n"] == 3 + 2 + 1


def test_a_record_missing_from_a_history_answer_is_asked_for_by_id(review, warehouse_path):
    from ncbi_server import HEAD, TAIL

    arts = fixture_articles("articles.xml")
    short = HEAD + b"\n".join(a.xml for a in arts[1:]) + b"\n" + TAIL
    with FakeNCBI(arts) as ncbi:
        ncbi.add_fault("efetch.fcgi", Fault(body=short))  # the history answer lacks the first record
        result = run(review, warehouse_path, make_client(ncbi))
        fetches = [f["params"] for f in ncbi.calls("efetch.fcgi")]
    assert result["status"] == "succeeded" and result["new"] == 4
    assert "WebEnv" in fetches[0] and fetches[1]["id"] == arts[0].pmid and len(fetches) == 2

    other = warehouse_path.with_name("other.duckdb")
    with FakeNCBI(arts) as ncbi:
        ncbi.add_fault("efetch.fcgi", Fault(body=short), times=3)  # and NCBI keeps not returning it
        failed = run(review, other, make_client(ncbi))
    assert failed["status"] == "failed" and f"did not return 1 record(s): {arts[0].pmid}" in failed["error"]
    assert "records missing from the history fetch" in failed["error"]
    assert table(other, "SELECT count(*) AS n FROM records")[0]["n"] == 0 and watermark(other) is None


def test_an_expired_history_answer_is_an_error_for_people(review, warehouse_path):
    with FakeNCBI(fixture_articles("articles.xml")) as ncbi:
        ncbi.add_fault("efetch.fcgi", Fault(body=b'<?xml version="1.0" ?>\n<eFetchResult><ERROR>Unable to obtain query #1'
                                                 b"</ERROR></eFetchResult>"), times=1)
        result = run(review, warehouse_path, make_client(ncbi))
    assert result["status"] == "failed"
    assert "efetch batch 1/1 of esearch edat 1990/01/01-2024/01/01" in result["error"]
    assert "NCBI reported an error: Unable to obtain query #1" in result["error"]
    assert table(warehouse_path, "SELECT count(*) AS n FROM records")[0]["n"] == 0


def test_single_day_over_the_cap_fails_clearly(review, warehouse_path):
    arts = [Article(a.pmid, a.xml, dt.date(2023, 5, 5), dt.date(2023, 5, 5)) for a in synthetic_articles(12)]
    with FakeNCBI(arts, cap=10) as ncbi:
        result = run(review, warehouse_path, make_client(ncbi), esearch_cap=10)
    assert result["status"] == "failed"
    assert "2023/05/05" in result["error"] and "Narrow sources.pubmed.query" in result["error"]
    assert table(warehouse_path, "SELECT count(*) AS n FROM records")[0]["n"] == 0


def test_429_then_success_backs_off(review, warehouse_path):
    sleeps: list[float] = []
    with FakeNCBI(fixture_articles("articles.xml")) as ncbi:
        ncbi.add_fault("esearch.fcgi", Fault(status=429, body=RATE_LIMIT_JSON, headers={"Content-Type": "application/json"}), times=2)
        result = run(review, warehouse_path, make_client(ncbi, sleeps=sleeps))
    assert result["status"] == "succeeded" and result["new"] == 4
    assert result["retries"] == 2 and result["requests"] == 5
    assert len(sleeps) == 2 and all(0 < s <= 0.01 for s in sleeps)


def test_5xx_until_giving_up_marks_the_run_failed_and_keeps_the_watermark(review, warehouse_path):
    with FakeNCBI(fixture_articles("articles.xml")) as ncbi:
        assert run(review, warehouse_path, make_client(ncbi))["status"] == "succeeded"
        before = table(warehouse_path, "SELECT record_id, content_hash FROM records ORDER BY 1")
        ncbi.add_fault("efetch.fcgi", Fault(status=500, body=b"Internal Server Error"), times=3)
        ncbi.set_articles([Article(a.pmid, a.xml, a.edat, dt.date(2024, 6, 1)) for a in fixture_articles("retraction.xml")])
        result = run(review, warehouse_path, make_client(ncbi), as_of=AS_OF + dt.timedelta(days=400))
        assert len(ncbi.calls("efetch.fcgi")) == 1 + 3  # the first run's one + three tries
    assert result["status"] == "failed" and result["source"] == "pubmed"
    assert "gave up after 3 tries" in result["error"] and "HTTP 500" in result["error"] and "efetch" in result["error"]
    assert watermark(warehouse_path) == AS_OF
    assert table(warehouse_path, "SELECT record_id, content_hash FROM records ORDER BY 1") == before
    runs = table(warehouse_path, "SELECT status, error, n_requests FROM search_runs ORDER BY run_id")
    assert runs[1]["status"] == "failed" and runs[1]["error"] == result["error"] and runs[1]["n_requests"] == 5
    assert KEY not in result["error"]


def test_4xx_is_not_retried(review, warehouse_path):
    with FakeNCBI([]) as ncbi:
        ncbi.add_fault("esearch.fcgi", Fault(status=400, body=b"bad request"))
        result = run(review, warehouse_path, make_client(ncbi))
        assert len(ncbi.requests) == 1
    assert result["status"] == "failed" and "refused the request (HTTP 400" in result["error"]


def test_timeouts_are_retried(review, warehouse_path):
    with FakeNCBI(fixture_articles("articles.xml")) as ncbi:
        ncbi.add_fault("efetch.fcgi", Fault(delay=0.6))
        result = run(review, warehouse_path, make_client(ncbi, timeout=0.2))
        assert len(ncbi.calls("efetch.fcgi")) == 2
    assert result["status"] == "succeeded" and result["new"] == 4 and result["retries"] == 1

    with FakeNCBI(fixture_articles("articles.xml")) as ncbi:
        ncbi.add_fault("esearch.fcgi", Fault(delay=0.6), times=3)
        failed = run(review, warehouse_path, make_client(ncbi, timeout=0.2), as_of=AS_OF + dt.timedelta(days=1))
    assert failed["status"] == "failed" and "timeout" in failed["error"]


def test_connection_refused_is_retried_then_fails(review, warehouse_path):
    with FakeNCBI([]) as ncbi:
        url = ncbi.url
    client = EntrezClient(EntrezSettings(base_url=url, email="t@example.org", max_tries=2, backoff_base=0.001, requests_per_second=1000),
                          limiter=RateLimiter(), sleep=lambda s: None)
    result = run(review, warehouse_path, client)
    assert result["status"] == "failed" and "connection failed" in result["error"] and client.n_requests == 2


def test_truncated_xml_is_fetched_again_then_fails_with_nothing_stored(review, warehouse_path):
    with FakeNCBI(fixture_articles("articles.xml")) as ncbi:
        ncbi.add_fault("efetch.fcgi", Fault(truncate=900))
        ok = run(review, warehouse_path, make_client(ncbi))
    assert ok["status"] == "succeeded" and ok["new"] == 4

    other = warehouse_path.with_name("other.duckdb")
    with FakeNCBI(fixture_articles("articles.xml")) as ncbi:
        ncbi.add_fault("efetch.fcgi", Fault(truncate=900), times=3)
        bad = run(review, other, make_client(ncbi))
    assert bad["status"] == "failed"
    assert "incomplete or malformed" in bad["error"] and "efetch batch 1/1" in bad["error"]
    assert table(other, "SELECT count(*) AS n FROM records")[0]["n"] == 0
    assert table(other, "SELECT count(*) AS n FROM raw_records")[0]["n"] == 0
    assert watermark(other) is None


def test_error_inside_a_200_body(review, warehouse_path):
    body = (REPO / "tests/fixtures/pubmed/esearch_error.xml").read_bytes()
    with FakeNCBI(fixture_articles("articles.xml")) as ncbi:
        ncbi.add_fault("esearch.fcgi", Fault(body=body))
        result = run(review, warehouse_path, make_client(ncbi))
    assert result["status"] == "failed"
    assert "NCBI reported an error: Search Backend failed" in result["error"]
    runs = table(warehouse_path, "SELECT status, error FROM search_runs")
    assert runs[0]["status"] == "failed" and "Search Backend failed" in runs[0]["error"]

    phrase = (REPO / "tests/fixtures/pubmed/esearch_phrase_not_found.xml").read_bytes()
    with FakeNCBI([]) as ncbi:
        ncbi.add_fault("esearch.fcgi", Fault(body=phrase))
        result = run(review, warehouse_path, make_client(ncbi))
    assert result["status"] == "failed" and "PhraseNotFound" in result["error"]


def test_replay_reads_recorded_answers_through_the_same_path(tmp_path, warehouse_path):
    fixtures = REPO / "tests/fixtures/pubmed"
    review = write_review(tmp_path / "review", replay="recorded")
    (review / "recorded").mkdir()
    (review / "recorded" / "efetch_001.xml").write_bytes((fixtures / "articles.xml").read_bytes())
    (review / "recorded" / "efetch_002.xml").write_bytes((fixtures / "retraction.xml").read_bytes())
    (review / "recorded" / "esearch_edat.xml").write_bytes(
        b"<eSearchResult><Count>2</Count><RetMax>2</RetMax><RetStart>0</RetStart><IdList><Id>30000001</Id>"
        b"<Id>30000099</Id></IdList></eSearchResult>")
    result = search_pubmed.fn(str(review), str(warehouse_path), None, AS_OF)
    assert result["status"] == "succeeded" and result["mode"] == "replay"
    assert (result["new"], result["found"]) == (6, 7)
    assert watermark(warehouse_path) == AS_OF
    again = search_pubmed.fn(str(review), str(warehouse_path), None, AS_OF)
    assert (again["new"], again["unchanged"]) == (0, 6)
    missing = search_pubmed.fn(str(review), str(warehouse_path), None, AS_OF, str(tmp_path / "nowhere"))
    assert missing["status"] == "failed" and "replay folder not found" in missing["error"]


def test_task_uses_address_and_key_the_flow_reads_from_the_environment(review, warehouse_path, monkeypatch):
    # the flow reads the environment (flows.settings) and hands the settings to tasks in-process (tasks.runtime),
    # so the key is never a flow or task parameter
    from flows import settings
    from tasks import runtime

    with FakeNCBI(fixture_articles("articles.xml")) as ncbi:
        monkeypatch.setenv("LIVINGMETA_EUTILS_URL", ncbi.url)
        monkeypatch.setenv("LIVINGMETA_NCBI_EMAIL", "env@example.org")
        monkeypatch.setenv("NCBI_API_KEY", KEY)
        runtime.configure(ncbi=settings.ncbi_settings())
        try:
            result = search_pubmed.fn(str(review), str(warehouse_path), None, AS_OF)
        finally:
            runtime.configure(ncbi={})
        params = ncbi.requests[0]["params"]
    assert result["status"] == "succeeded" and result["new"] == 4
    assert params["email"] == "env@example.org" and params["api_key"] == KEY
    assert KEY not in json.dumps(result)


def test_rate_limiter_spaces_requests_across_threads():
    import threading

    clock = [0.0]
    lock = threading.Lock()
    slots: list[float] = []

    def sleep(s):  # a fake clock: each caller "sleeps" to its slot
        with lock:
            slots.append(s)

    limiter = RateLimiter(clock=lambda: clock[0], sleep=sleep)
    threads = [threading.Thread(target=limiter.wait, args=(1 / 3,)) for _ in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 9 callers at the same instant: one goes at once, the others wait 1/3 s apart (3 per second)
    assert sorted(round(s, 6) for s in slots) == [round(i / 3, 6) for i in range(1, 9)]
    assert EntrezSettings().interval == pytest.approx(1 / 3)
    assert EntrezSettings(api_key="k").interval == pytest.approx(1 / 10)
    assert "SECRET" not in repr(EntrezSettings(api_key="SECRET"))


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    import random

    c = EntrezClient(EntrezSettings(email="t@example.org", backoff_base=1.0, backoff_max=8.0), rng=random.Random(1))
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (7, 8)]:
        d = c.backoff(attempt)
        assert ceiling / 2 <= d <= ceiling
    assert c.backoff(1, retry_after=5.0) == 5.0
    assert c.backoff(1, retry_after=100.0) == 8.0


_KILL_SCRIPT = """
import datetime as dt, sys
from tasks.entrez import EntrezClient, EntrezSettings, RateLimiter
from tasks.pubmed import run_pubmed_search
client = EntrezClient(EntrezSettings(base_url=sys.argv[3], email="t@example.org", requests_per_second=1000,
                                     timeout=60, max_tries=1), limiter=RateLimiter())
run_pubmed_search(sys.argv[1], sys.argv[2], None, dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), client=client)
"""


def _content(wh: Path) -> dict:
    return {
        "records": table(wh, "SELECT * EXCLUDE (first_seen_at, updated_at, last_run_id) FROM records ORDER BY record_id"),
        "versions": table(wh, "SELECT record_id, version, content_hash, data FROM record_versions ORDER BY 1, 2"),
        "raw": table(wh, "SELECT source_id, payload_hash, payload FROM raw_records ORDER BY 1, 2"),
        "members": table(wh, "SELECT review_id, record_id FROM review_records ORDER BY 2"),
        "watermarks": table(wh, "SELECT review_id, source, watermark FROM source_watermarks"),
        "events": table(wh, "SELECT record_id, kind FROM registry_events ORDER BY 1"),
    }


def test_killed_mid_run_then_rerun_equals_an_uninterrupted_run(review, tmp_path):
    import threading

    arts = synthetic_articles(450)
    clean = tmp_path / "clean.duckdb"
    with FakeNCBI(arts) as ncbi:
        assert run(review, clean, make_client(ncbi))["new"] == 450

    killed = tmp_path / "killed.duckdb"
    hold = threading.Event()
    with FakeNCBI(arts) as ncbi:
        ncbi.add_fault("efetch.fcgi", Fault())  # batch 1 answers
        ncbi.add_fault("efetch.fcgi", Fault(hold=hold))  # batch 2 hangs until released
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
        proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(review), str(killed), ncbi.url], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while len(ncbi.calls("efetch.fcgi")) < 2:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the ingesting process never reached batch 2"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        hold.set()
        # nothing from the killed run was stored; its start is visible as a run that never finished
        assert table(killed, "SELECT count(*) AS n FROM records")[0]["n"] == 0
        assert watermark(killed) is None
        assert table(killed, "SELECT status FROM search_runs") == [{"status": "running"}]
        result = run(review, killed, make_client(ncbi))
    assert result["status"] == "succeeded" and result["new"] == 450
    assert _content(killed) == _content(clean)
    # the killed run no longer looks like it is still going: the new run's start marked it interrupted
    runs = table(killed, "SELECT run_id, status, error FROM search_runs ORDER BY run_id")
    assert [r["status"] for r in runs] == ["interrupted", "succeeded"]
    assert "nothing from it was stored" in runs[0]["error"] and f"Run {runs[1]['run_id']}" in runs[0]["error"]
