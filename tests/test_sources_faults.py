"""Issue 14 part 4: sources never lose or add records silently.

Real servers on 127.0.0.1 (tests/ncbi_server.py, FakeCtgov of test_ctgov_source) serve the faults; after each
the warehouse contents, the watermark, the search run and the alerts are checked, and a rerun after the fault
clears stores exactly the full set once.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from ncbi_server import FakeNCBI, synthetic_articles
from tests.test_ctgov_source import FakeCtgov, fast, study
from tests.test_pubmed_search import make_client, run, table, watermark, write_review
from tasks.ctgov import CtgovClient, run_ctgov_search

UTC = dt.timezone.utc
# PubMed: articles listed inside the overlap window so that a rerun searches them again
P_AS_OF = dt.datetime(2024, 1, 1, tzinfo=UTC)
P_RERUN = dt.datetime(2024, 1, 2, tzinfo=UTC)
P_START = dt.date(2023, 12, 27)


def _state(wh, source: str) -> dict:
    runs = table(wh, f"SELECT run_id, status, error, n_found, n_new, n_skipped, n_unrequested FROM search_runs "
                     f"WHERE source = '{source}' ORDER BY run_id")
    return {
        "runs": runs,
        "records": sorted(r["source_id"] for r in table(wh, f"SELECT source_id FROM records WHERE source = '{source}'")),
        "members": table(wh, "SELECT count(*) AS n FROM review_records")[0]["n"],
        "versions": table(wh, f"SELECT count(*) AS n FROM record_versions WHERE record_id LIKE '{source}:%'")[0]["n"],
        "alerts": table(wh, "SELECT kind, title, body, run_id FROM alerts ORDER BY alert_id"),
        "skips": table(wh, "SELECT source_id, reason, field, problem, payload FROM source_record_skips ORDER BY source_id"),
    }


# ----------------------------------------------------------------------------------------------------- PubMed


@pytest.fixture()
def pm_review(tmp_path):
    return write_review(tmp_path / "review")


def _articles(n=5):
    return synthetic_articles(n, start=P_START)


@pytest.mark.parametrize("junk", [b"\x0b", b"\x1b[1m", b"\x00"], ids=["VT", "ESC", "NUL"])
def test_control_characters_in_one_article_are_cleaned_and_every_record_is_stored(pm_review, warehouse_path, junk):
    arts = _articles()
    arts[2].xml = arts[2].xml.replace(b"<ArticleTitle>", b"<ArticleTitle>" + junk)
    with FakeNCBI(arts) as ncbi:
        out = run(pm_review, warehouse_path, make_client(ncbi))
    assert out["status"] == "succeeded", out
    st = _state(warehouse_path, "pubmed")
    assert st["records"] == sorted(a.pmid for a in arts) and st["skips"] == [] and st["alerts"] == []
    title = table(warehouse_path, f"SELECT title FROM records WHERE source_id = '{arts[2].pmid}'")[0]["title"]
    assert title.endswith("Immunoglobulin trial number 2 in painful neuropathy.")
    assert not any(c in title for c in "\x00\x0b\x1b")


def test_an_unreadable_article_is_skipped_named_alerted_and_counted_the_others_stored(pm_review, warehouse_path):
    arts = _articles()
    bad = arts[1].pmid
    good_xml = arts[1].xml
    arts[1].xml = good_xml.replace(b"</ArticleTitle>", b"<i>unclosed</ArticleTitle>")
    with FakeNCBI(arts) as ncbi:
        out = run(pm_review, warehouse_path, make_client(ncbi))
        assert out["status"] == "succeeded" and out["skipped"] == 1, out
        st = _state(warehouse_path, "pubmed")
        assert st["records"] == sorted(a.pmid for a in arts if a.pmid != bad)
        assert st["runs"][-1]["n_skipped"] == 1 and st["runs"][-1]["status"] == "succeeded"
        assert [(s["source_id"], s["reason"], s["field"]) for s in st["skips"]] == [(bad, "malformed", "xml")]
        assert st["skips"][0]["payload"].startswith("<PubmedArticle>")
        [alert] = st["alerts"]
        assert alert["kind"] == "source_record_skipped" and f"PMID {bad}" in alert["title"]
        assert alert["run_id"] == out["run_id"] and f"PMID {bad}" in alert["body"]
        assert watermark(warehouse_path) == P_AS_OF  # the skip is durable, so the watermark may move
        # NCBI fixes the article: the next run (its window overlaps) stores it, once, and nothing else twice
        arts[1].xml = good_xml
        ncbi.set_articles(arts)
        again = run(pm_review, warehouse_path, make_client(ncbi), as_of=P_RERUN)
    assert again["status"] == "succeeded" and again["skipped"] == 0 and again["new"] == 1, again
    st = _state(warehouse_path, "pubmed")
    assert st["records"] == sorted(a.pmid for a in arts) and st["versions"] == len(arts) and st["members"] == len(arts)


def test_an_unrequested_pmid_is_not_stored_but_counted_and_alerted(pm_review, warehouse_path):
    arts = _articles()
    stranger = synthetic_articles(1, first_pmid=41000000, start=dt.date(2001, 1, 1))[0]
    with FakeNCBI(arts) as ncbi:
        ncbi.unrequested = [stranger]
        out = run(pm_review, warehouse_path, make_client(ncbi))
    assert out["status"] == "succeeded" and out["unrequested"] == 1, out
    st = _state(warehouse_path, "pubmed")
    assert st["records"] == sorted(a.pmid for a in arts) and st["members"] == len(arts)
    assert table(warehouse_path, f"SELECT count(*) AS n FROM raw_records WHERE source_id = '{stranger.pmid}'")[0]["n"] == 0
    assert st["runs"][-1]["n_unrequested"] == 1
    assert [(s["source_id"], s["reason"]) for s in st["skips"]] == [(stranger.pmid, "unrequested")]
    [alert] = st["alerts"]
    assert alert["kind"] == "source_record_unrequested" and stranger.pmid in alert["body"]


def test_a_pmid_missing_once_is_fetched_again_by_id_and_stored(pm_review, warehouse_path):
    arts = _articles()
    with FakeNCBI(arts) as ncbi:
        ncbi.withheld[arts[3].pmid] = 1
        out = run(pm_review, warehouse_path, make_client(ncbi))
        by_id = [c for c in ncbi.calls("efetch.fcgi") if c["params"].get("id") == arts[3].pmid]
    assert out["status"] == "succeeded", out
    assert by_id, "the missing PMID was not asked for again by id"
    st = _state(warehouse_path, "pubmed")
    assert st["records"] == sorted(a.pmid for a in arts) and st["skips"] == [] and st["alerts"] == []


def test_a_pmid_missing_always_fails_the_search_and_a_rerun_stores_the_full_set_once(pm_review, warehouse_path):
    arts = _articles()
    with FakeNCBI(arts) as ncbi:
        ncbi.withheld[arts[3].pmid] = -1
        failed = run(pm_review, warehouse_path, make_client(ncbi))
        assert failed["status"] == "failed" and arts[3].pmid in failed["error"], failed
        assert "did not return 1 record(s)" in failed["error"] and "watermark did not move" in failed["error"]
        st = _state(warehouse_path, "pubmed")
        assert st["records"] == [] and st["members"] == 0 and watermark(warehouse_path) is None
        assert st["runs"][-1]["status"] == "failed" and arts[3].pmid in st["runs"][-1]["error"]
        ncbi.withheld.clear()
        ok = run(pm_review, warehouse_path, make_client(ncbi))
    assert ok["status"] == "succeeded" and ok["new"] == len(arts), ok
    st = _state(warehouse_path, "pubmed")
    assert st["records"] == sorted(a.pmid for a in arts) and st["versions"] == len(arts)
    assert watermark(warehouse_path) == P_AS_OF


# ---------------------------------------------------------------------------------------------------- CT.gov

C_AS_OF = dt.datetime(2022, 1, 1, tzinfo=UTC)
N_STUDIES = 25


def _study(i: int) -> dict:
    s = json.loads(json.dumps(study("NCT09000002")))
    s["protocolSection"]["identificationModule"]["nctId"] = f"NCT0980{i:04d}"
    s["protocolSection"]["identificationModule"]["briefTitle"] = f"Synthetic registry entry {i}"
    return s


@pytest.fixture()
def ct():
    f = FakeCtgov()
    for i in range(N_STUDIES):
        s = _study(i)
        f.studies[s["protocolSection"]["identificationModule"]["nctId"]] = s
    yield f
    f.close()


@pytest.fixture()
def ct_review(tmp_path):
    d = tmp_path / "ct-review"
    d.mkdir()
    (d / "review.toml").write_text('id = "ct-test"\ntitle = "CT test"\n[sources.ctgov]\ncondition = "neuropathy"\n'
                                   'intervention = "immunoglobulin"\nearliest_date = 2000-01-01\noverlap_days = 7\n'
                                   'page_size = 5\n', encoding="utf-8")
    return str(d)


def ct_run(review_dir, wh, fake, as_of=C_AS_OF):
    with CtgovClient(**fast(fake)) as client:
        return run_ctgov_search(review_dir, str(wh), None, as_of, client=client)


@pytest.mark.parametrize("fault,message", [
    ("repeat_page", "received 20 distinct studies of 25 announced"),
    ("early_end", "received 15 distinct studies of 25 announced"),
    ("token_loop", "sent page token 'tok-5' again"),
])
def test_a_paging_fault_fails_the_search_stores_nothing_and_a_rerun_stores_all_once(ct, ct_review, warehouse_path,
                                                                                      fault, message):
    ct.paging_fault = fault
    out = ct_run(ct_review, warehouse_path, ct)
    assert out["status"] == "failed" and message in out["error"], out
    assert "Nothing was stored" in out["error"]
    st = _state(warehouse_path, "ctgov")
    assert st["records"] == [] and st["members"] == 0 and watermark(warehouse_path) is None
    assert st["runs"][-1]["status"] == "failed" and message in st["runs"][-1]["error"]
    assert len(ct.requests) < 20  # a loop ends at once, it does not spin
    ct.paging_fault = None
    ok = ct_run(ct_review, warehouse_path, ct)
    assert ok["status"] == "succeeded" and (ok["found"], ok["new"]) == (N_STUDIES, N_STUDIES), ok
    st = _state(warehouse_path, "ctgov")
    assert st["records"] == sorted(ct.studies) and st["versions"] == N_STUDIES and st["members"] == N_STUDIES
    assert watermark(warehouse_path) == C_AS_OF


ODD = {
    "references as strings": (("referencesModule", "references"), ["39000001", "a citation"],
                              "protocolSection.referencesModule.references[0]"),
    "phases as a string": (("designModule", "phases"), "PHASE2", "protocolSection.designModule.phases"),
    "enrollment as object": (("designModule", "enrollmentInfo"), {"count": {"value": 12}, "type": "ACTUAL"},
                             "protocolSection.designModule.enrollmentInfo.count"),
    "nctId missing": (("identificationModule", "nctId"), None, "protocolSection.identificationModule.nctId"),
}


@pytest.mark.parametrize("case", sorted(ODD))
def test_one_study_with_an_odd_field_is_skipped_named_and_alerted_the_others_stored(ct, ct_review, warehouse_path,
                                                                                     case):
    (module, key), value, field = ODD[case]
    odd_id = "NCT09800007"
    section = ct.studies[odd_id]["protocolSection"].setdefault(module, {})
    if value is None:
        section.pop(key)
    else:
        section[key] = value
    out = ct_run(ct_review, warehouse_path, ct)
    assert out["status"] == "succeeded" and out["skipped"] == 1, out
    st = _state(warehouse_path, "ctgov")
    assert st["records"] == sorted(i for i in ct.studies if i != odd_id)
    assert st["runs"][-1]["n_skipped"] == 1 and st["runs"][-1]["n_found"] == N_STUDIES
    [skip] = st["skips"]
    assert skip["reason"] == "malformed" and skip["field"] == field and field in skip["problem"]
    [alert] = st["alerts"]
    assert alert["kind"] == "source_record_skipped" and alert["run_id"] == out["run_id"] and field in alert["body"]
    if case != "nctId missing":
        assert skip["source_id"] == odd_id and odd_id in alert["title"]
    else:
        assert skip["source_id"] is None and "unnamed record" in alert["title"]
    assert json.loads(skip["payload"])["protocolSection"]["identificationModule"]["briefTitle"] == "Synthetic registry entry 7"
    assert watermark(warehouse_path) == C_AS_OF


def test_status_shows_a_runs_skipped_and_unrequested_records(ct, ct_review, warehouse_path):
    from typer.testing import CliRunner

    from flows.cli import app

    ct.studies["NCT09800003"]["protocolSection"]["designModule"]["phases"] = "PHASE3"
    out = ct_run(ct_review, warehouse_path, ct)
    assert out["status"] == "succeeded" and out["skipped"] == 1
    runner = CliRunner()
    shown = runner.invoke(app, ["status", ct_review, "--warehouse", str(warehouse_path)], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    assert "1 skipped (unreadable)" in shown.output, shown.output
    as_json = json.loads(runner.invoke(app, ["status", ct_review, "--warehouse", str(warehouse_path), "--json"]).output)
    [ctgov] = [s for s in as_json["sources"] if s["source"] == "ctgov"]
    assert (ctgov["n_skipped"], ctgov["n_unrequested"], ctgov["status"]) == (1, 0, "succeeded")


def test_a_raw_control_character_in_one_study_does_not_fail_the_page(ct, ct_review, warehouse_path):
    hits = [ct.studies[k] for k in sorted(ct.studies)][:5]
    hits[2]["protocolSection"]["identificationModule"]["briefTitle"] = "Entry\x0b with\x1b odd\x00 bytes"
    body = json.dumps({"studies": hits, "totalCount": 5})
    assert "\\u000b" in body
    raw = body.replace("\\u000b", "\x0b").replace("\\u001b", "\x1b")  # raw, as a broken server might send them
    with pytest.raises(ValueError):
        json.loads(raw)  # strict JSON refuses the whole page
    ct.faults = [(200, raw)]
    out = ct_run(ct_review, warehouse_path, ct)
    assert out["status"] == "succeeded" and out["new"] == 5 and out["skipped"] == 0, out
    title = table(warehouse_path, "SELECT extra->>'brief_title' AS t FROM records WHERE source_id = "
                                  f"'{hits[2]['protocolSection']['identificationModule']['nctId']}'")[0]["t"]
    assert title == "Entry with odd bytes"


def test_a_control_character_in_an_esearch_answer_does_not_fail_the_search(pm_review, warehouse_path):
    from ncbi_server import Fault

    arts = _articles(3)
    with FakeNCBI(arts) as ncbi:
        first = ncbi.body("esearch.fcgi", {"mindate": "1990/01/01", "maxdate": "2024/01/01", "datetype": "edat",
                                            "retmax": "9999", "usehistory": "y", "term": "q\x0b\x1bq"})
        ncbi.add_fault("esearch.fcgi", Fault(body=first))
        out = run(pm_review, warehouse_path, make_client(ncbi))
    assert out["status"] == "succeeded" and out["new"] == 3, out
