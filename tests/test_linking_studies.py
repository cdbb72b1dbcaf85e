"""Linking records into studies, in a real DuckDB warehouse: identifiers, fuzzy titles, people's decisions."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from livingmeta.linking import LinkRecord, link_records
from livingmeta.records import Record
from livingmeta.sources.ctgov import parse_study
from tasks.linking import link_studies
from warehouse import opened, transaction
from warehouse.ingest import Fetched, finish_search_run, start_search_run
from warehouse.linking import (StudyLookupError, list_studies, merge_studies, record_link_decision, relink,
                               resolve_study)

FIXTURES = Path(__file__).parent / "fixtures" / "ctgov"
REVIEW = "rv"
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def pub(pmid, title, authors=("Example A",), year=2021, doi=None, registry_ids=(), abstract=""):
    return Record(source="pubmed", source_id=str(pmid), title=title, authors=list(authors), year=year, doi=doi,
                  registry_ids=list(registry_ids), abstract=abstract, publication_types=["Journal Article"])


def registry(name):
    payload = (FIXTURES / f"study_{name}.json").read_text(encoding="utf-8")
    return Fetched(parse_study(json.loads(payload)), payload)


def store(wh, *items, now=T0):
    fetched = [i if isinstance(i, Fetched) else Fetched(i, json.dumps(i.to_dict())) for i in items]
    with opened(wh) as con:
        for source in ("pubmed", "ctgov"):
            batch = [f for f in fetched if f.record.source == source]
            if batch:
                run = start_search_run(con, review_id=REVIEW, source=source, query="q", mode="replay",
                                       window_start=None, window_end=now, now=now)
                finish_search_run(con, run_id=run, review_id=REVIEW, source=source, fetched=batch, watermark=now, now=now)


def study_of(wh) -> dict[str, str]:
    with opened(wh) as con:
        return dict(con.execute("SELECT record_id, study_id FROM study_links WHERE review_id = ?", [REVIEW]).fetchall())


def method_of(wh, record_id):
    with opened(wh) as con:
        return con.execute("SELECT method, score FROM study_links WHERE review_id = ? AND record_id = ?",
                           [REVIEW, record_id]).fetchone()


TITLE_A = "Intravenous immunoglobulin in painful idiopathic small fibre neuropathy: a randomised placebo-controlled trial"
TITLE_B = "Intravenous immunoglobulin in painful diabetic polyneuropathy: a randomised placebo-controlled trial"


def test_nct_in_databanklist_joins_the_registry_study_and_keeps_its_id(warehouse_path):
    store(warehouse_path, registry("NCT09000001_v1"))
    link_studies.fn(REVIEW, str(warehouse_path))
    assert study_of(warehouse_path) == {"ctgov:NCT09000001": "NCT09000001"}
    store(warehouse_path, pub(39000001, TITLE_A, ("Geerts M",), registry_ids=["NCT09000001"]))
    out = link_studies.fn(REVIEW, str(warehouse_path))
    assert study_of(warehouse_path) == {"ctgov:NCT09000001": "NCT09000001", "pubmed:39000001": "NCT09000001"}
    assert method_of(warehouse_path, "pubmed:39000001") == ("nct", 1.0)
    assert out["studies"] == 1 and out["records"] == 2
    with opened(warehouse_path) as con:
        # every record of the review is linked, and the second report of one study is visible as such
        # (screening's queue and PRISMA counts read study_links to count it once)
        n_records, n_links, n_studies = con.execute(
            "SELECT (SELECT count(*) FROM review_records WHERE review_id = ?), count(*), count(DISTINCT study_id) "
            "FROM study_links WHERE review_id = ?", [REVIEW, REVIEW]).fetchone()
    assert (n_records, n_links, n_studies) == (2, 2, 1)


def test_nct_only_in_the_abstract(warehouse_path):
    store(warehouse_path, registry("NCT09000002"),
          pub(39000005, TITLE_B, ("Jann S",), year=2020, abstract="Registered at ClinicalTrials.gov (NCT 09000002)."))
    link_studies.fn(REVIEW, str(warehouse_path))
    links = study_of(warehouse_path)
    assert links["pubmed:39000005"] == links["ctgov:NCT09000002"] == "Jann2020"  # new together: the publication names it
    assert method_of(warehouse_path, "pubmed:39000005")[0] == "nct"


def test_one_trial_with_two_publications_and_a_registry_entry(warehouse_path):
    store(warehouse_path,
          registry("NCT09000001_v2"),  # lists PMID 39000001 as RESULT and 39000099 as BACKGROUND
          pub(39000001, TITLE_A, ("Geerts M",), year=2021, doi="10.1000/main"),
          pub(39000002, TITLE_A + ": 2-year follow-up", ("Geerts M",), year=2022),
          pub(39000003, "Erratum to: " + TITLE_A, ("Geerts M",), year=2021, doi="10.1000/MAIN"),
          pub(39000099, "Immunoglobulins for chronic pain: a narrative review", ("Other B",), year=2014))
    out = link_studies.fn(REVIEW, str(warehouse_path))
    links = study_of(warehouse_path)
    trial = links["ctgov:NCT09000001"]
    assert trial == "Geerts2021"
    assert links["pubmed:39000001"] == links["pubmed:39000002"] == links["pubmed:39000003"] == trial
    assert links["pubmed:39000099"] != trial  # a BACKGROUND reference is other work
    assert method_of(warehouse_path, "pubmed:39000001")[0] == "pmid"
    assert method_of(warehouse_path, "pubmed:39000003")[0] == "doi"
    m, score = method_of(warehouse_path, "pubmed:39000002")
    assert m == "fuzzy" and 0.92 <= score <= 1.0
    assert out["studies"] == 2
    # ids are stable: relinking changes nothing
    link_studies.fn(REVIEW, str(warehouse_path))
    assert study_of(warehouse_path) == links


def test_two_trials_with_similar_titles_are_not_merged(warehouse_path):
    store(warehouse_path,
          pub(39000011, TITLE_A, ("Geerts M",), year=2021),
          pub(39000012, TITLE_A.replace("idiopathic", "idiopathic or diabetic"), ("Jann S",), year=2021),
          # same author and near-identical titles, but each names its own registration
          pub(39000013, TITLE_B, ("Goebel A",), year=2017, registry_ids=["NCT09000001"]),
          pub(39000014, TITLE_B + ".", ("Goebel A",), year=2017, registry_ids=["NCT09000002"]),
          registry("NCT09000001_v1"), registry("NCT09000002"))
    out = link_studies.fn(REVIEW, str(warehouse_path))
    links = study_of(warehouse_path)
    assert len({links["pubmed:39000011"], links["pubmed:39000012"]}) == 2
    assert links["pubmed:39000013"] == links["ctgov:NCT09000001"]
    assert links["pubmed:39000014"] == links["ctgov:NCT09000002"]
    assert links["pubmed:39000013"] != links["pubmed:39000014"]
    assert links["pubmed:39000013"] == "Goebel2017" and links["pubmed:39000014"] == "Goebel2017a"  # clash suffix
    assert out["conflicts"] >= 1  # the refused fuzzy link is reported, not silently dropped


def test_a_publication_naming_two_trials_joins_one_and_reports_the_other():
    recs = [LinkRecord("ctgov:NCT09000001", "ctgov", "Trial one of something fairly long", registry_ids=("NCT09000001",)),
            LinkRecord("ctgov:NCT09000002", "ctgov", "Trial two of something fairly long", registry_ids=("NCT09000002",)),
            LinkRecord("pubmed:1", "pubmed", "Pooled analysis of two trials", ("Smith J",), 2020,
                       registry_ids=("NCT09000001", "NCT09000002"))]
    result = link_records(recs)
    s = result.study_of()
    assert s["ctgov:NCT09000001"] != s["ctgov:NCT09000002"]
    assert any("two registry entries" in c.reason for c in result.conflicts)


def test_a_manual_split_survives_later_runs(warehouse_path):
    store(warehouse_path, pub(39000021, TITLE_A, ("Geerts M",), year=2021),
          pub(39000022, TITLE_A + " (abstract)", ("Geerts M",), year=2021))
    link_studies.fn(REVIEW, str(warehouse_path))
    before = study_of(warehouse_path)
    assert before["pubmed:39000021"] == before["pubmed:39000022"] == "Geerts2021"
    with opened(warehouse_path) as con:
        with transaction(con):
            record_link_decision(con, REVIEW, "pubmed:39000022", "unlink", "Geerts2021", "ann", T0)
        relink(con, REVIEW, T0)
    after = study_of(warehouse_path)
    assert after["pubmed:39000021"] == "Geerts2021" and after["pubmed:39000022"] == "Geerts2021a"
    assert method_of(warehouse_path, "pubmed:39000022") == ("manual", None)
    # a later run, with a new report that ties to both, does not undo the person's split
    store(warehouse_path, pub(39000023, TITLE_A + " (poster)", ("Geerts M",), year=2022),
          now=T0 + dt.timedelta(days=30))
    link_studies.fn(REVIEW, str(warehouse_path))
    link_studies.fn(REVIEW, str(warehouse_path))
    final = study_of(warehouse_path)
    assert final["pubmed:39000021"] == "Geerts2021" and final["pubmed:39000022"] == "Geerts2021a"
    assert final["pubmed:39000023"] in ("Geerts2021", "Geerts2021a")


def test_manual_link_and_merge_win_and_ids_resolve(warehouse_path):
    store(warehouse_path, registry("NCT09000002"), registry("NCT09000003"),
          pub(39000031, "A completely different report about subcutaneous immunoglobulin", ("Lee K",), 2019,
              doi="10.1000/xyz"))
    link_studies.fn(REVIEW, str(warehouse_path))
    with opened(warehouse_path) as con:
        with transaction(con):
            record_link_decision(con, REVIEW, "pubmed:39000031", "link", "NCT09000003", "ann", T0)
        relink(con, REVIEW, T0)
        assert resolve_study(con, REVIEW, "10.1000/XYZ") == "NCT09000003"
        assert resolve_study(con, REVIEW, "39000031") == "NCT09000003"
        assert resolve_study(con, REVIEW, "pubmed:39000031") == "NCT09000003"
        assert resolve_study(con, REVIEW, "nct09000002") == "NCT09000002"
        assert resolve_study(con, REVIEW, "ctgov:NCT09000002") == "NCT09000002"
        assert resolve_study(con, REVIEW, "Nothing") is None
        moved = merge_studies(con, REVIEW, "NCT09000002", "NCT09000003", "ann", T0)
        relink(con, REVIEW, T0)
        assert sorted(moved) == ["ctgov:NCT09000003", "pubmed:39000031"]
        assert resolve_study(con, REVIEW, "NCT09000003") == "NCT09000002"  # the merged id still resolves
        studies = list_studies(con, REVIEW)
    assert [s["study_id"] for s in studies] == ["NCT09000002"]
    assert {r["method"] for r in studies[0]["records"]} == {"manual", "singleton"}
    link_studies.fn(REVIEW, str(warehouse_path))
    assert set(study_of(warehouse_path).values()) == {"NCT09000002"}


def test_an_identifier_of_two_studies_is_refused(warehouse_path):
    store(warehouse_path, pub(39000041, "First report with a shared digital object identifier", ("Ab C",), 2010, doi="10.1000/x"),
          pub(39000042, "Second unrelated report with that same identifier", ("De F",), 2015, doi="10.1000/x"))
    link_studies.fn(REVIEW, str(warehouse_path))
    with opened(warehouse_path) as con:
        with transaction(con):
            record_link_decision(con, REVIEW, "pubmed:39000042", "unlink", study_of(warehouse_path)["pubmed:39000042"],
                                 "ann", T0)
        relink(con, REVIEW, T0)
        with pytest.raises(StudyLookupError, match="2 studies"):
            resolve_study(con, REVIEW, "https://doi.org/10.1000/X")


def test_registry_results_become_suggestions_once_and_follow_their_study(warehouse_path):
    store(warehouse_path, registry("NCT09000001_v2"))
    first = link_studies.fn(REVIEW, str(warehouse_path))
    sugg = first["suggestions"]
    assert sugg["records_with_results"] == 1 and sugg["suggested"] == 8 and sugg["problems"] == 5
    assert any("'12.5%'" in line for line in sugg["problem_lines"])
    with opened(warehouse_path) as con:
        rows = con.execute("SELECT study_id, outcome_id, arm, events, total, origin, status FROM extraction_rows "
                           "ORDER BY row_id").fetchall()
        assert rows[0] == ("NCT09000001", "unassigned", "treatment", 12.0, 30.0, "registry", "suggested")
        assert {r[5:] for r in rows} == {("registry", "suggested")}
        (tf, units) = con.execute("SELECT time_frame, units FROM registry_suggestions ORDER BY row_id LIMIT 1").fetchone()
        assert (tf, units) == ("12 weeks", "Participants")
    again = link_studies.fn(REVIEW, str(warehouse_path))
    assert again["suggestions"]["suggested"] == 0
    # a publication that arrives later joins the registry study (its id is kept) and the suggestions stay with it
    store(warehouse_path, pub(39000001, TITLE_A, ("Geerts M",), 2021), now=T0 + dt.timedelta(days=1))
    link_studies.fn(REVIEW, str(warehouse_path))
    with opened(warehouse_path) as con:
        assert {s for (s,) in con.execute("SELECT DISTINCT study_id FROM extraction_rows").fetchall()} == {"NCT09000001"}
        assert con.execute("SELECT count(*) FROM extraction_rows").fetchone()[0] == 8


def test_an_automatic_merge_of_studies_with_data_alerts_people(warehouse_path):
    store(warehouse_path, registry("NCT09000002"), pub(39000051, TITLE_B, ("Jann S",), 2020))
    link_studies.fn(REVIEW, str(warehouse_path))
    assert study_of(warehouse_path) == {"ctgov:NCT09000002": "NCT09000002", "pubmed:39000051": "Jann2020"}
    with opened(warehouse_path) as con:
        con.execute("INSERT INTO extraction_rows (review_id, study_id, outcome_id, arm, events, total, extractor, origin, "
                    "status, created_at) VALUES (?, 'Jann2020', 'responders', 'treatment', 7, 11, 'ann', 'manual', "
                    "'active', ?)", [REVIEW, T0])
    # a revised PubMed record now names the registration: the two studies are one
    store(warehouse_path, pub(39000051, TITLE_B, ("Jann S",), 2020, registry_ids=["NCT09000002"]),
          now=T0 + dt.timedelta(days=1))
    out = link_studies.fn(REVIEW, str(warehouse_path))
    assert out["merged"] == [{"study": "Jann2020", "into": "NCT09000002"}]
    assert set(study_of(warehouse_path).values()) == {"NCT09000002"}
    link_studies.fn(REVIEW, str(warehouse_path))
    with opened(warehouse_path) as con:
        alerts = con.execute("SELECT kind, severity, title FROM alerts").fetchall()
        assert resolve_study(con, REVIEW, "Jann2020") == "NCT09000002"
    assert alerts == [("study_merged", "warning", "study Jann2020 was merged into NCT09000002")]


def _reposted(name: str, events: str, updated: str) -> Fetched:
    """A later version of a registry record whose first outcome's first count was corrected."""
    study = json.loads((FIXTURES / f"study_{name}.json").read_text(encoding="utf-8"))
    cats = study["resultsSection"]["outcomeMeasuresModule"]["outcomeMeasures"][0]["classes"][0]["categories"]
    cats[0]["measurements"][0]["value"] = events
    study["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {"date": updated, "type": "ACTUAL"}
    return Fetched(parse_study(study), json.dumps(study))


def test_reposted_results_retire_the_suggestions_they_replace(warehouse_path):
    from warehouse.extraction import accept_suggestions, list_suggestions

    store(warehouse_path, registry("NCT09000001_v2"))
    link_studies.fn(REVIEW, str(warehouse_path))
    with opened(warehouse_path) as con:
        first = {r["row_id"]: r for r in list_suggestions(con, REVIEW)}
        (treated,) = [rid for rid, r in first.items() if r["arm"] == "treatment" and r["events"] == 12.0]
    # the registry corrects 12 -> 13 responders in the treated arm
    store(warehouse_path, _reposted("NCT09000001_v2", "13", "2022-08-01"), now=T0 + dt.timedelta(days=30))
    out = link_studies.fn(REVIEW, str(warehouse_path))["suggestions"]
    assert (out["suggested"], out["retired"], out["accepted_changed"]) == (1, 1, 0)
    with opened(warehouse_path) as con:
        waiting = {r["row_id"]: r for r in list_suggestions(con, REVIEW)}
        assert treated not in waiting and len(waiting) == len(first)
        assert [r["events"] for r in waiting.values() if r["arm"] == "treatment" and r["events"] in (12.0, 13.0)] == [13.0]
        status, = con.execute("SELECT status FROM extraction_rows WHERE row_id = ?", [treated]).fetchone()
        retired = con.execute("SELECT retired_by_version FROM registry_suggestions WHERE row_id = ?", [treated]).fetchone()
        assert (status, retired) == ("superseded", (2,))
        new_id = next(rid for rid, r in waiting.items() if r["events"] == 13.0)
        accept_suggestions(con, REVIEW, [new_id], outcome="responders", outcomes={"responders": "binary"},
                           extractor="ann", now=T0 + dt.timedelta(days=31))
    assert link_studies.fn(REVIEW, str(warehouse_path))["suggestions"]["retired"] == 0  # re-running retires nothing
    # a further correction of numbers a person already accepted: the accepted row stays, people are warned once
    store(warehouse_path, _reposted("NCT09000001_v2", "14", "2022-09-01"), now=T0 + dt.timedelta(days=60))
    out = link_studies.fn(REVIEW, str(warehouse_path))["suggestions"]
    assert (out["retired"], out["accepted_changed"]) == (0, 1)
    link_studies.fn(REVIEW, str(warehouse_path))
    with opened(warehouse_path) as con:
        assert con.execute("SELECT count(*) FROM extraction_rows WHERE status = 'active' AND events = 13").fetchone() == (1,)
        alerts = con.execute("SELECT kind, severity FROM alerts WHERE kind = 'registry_results_changed'").fetchall()
    assert alerts == [("registry_results_changed", "warning")]
