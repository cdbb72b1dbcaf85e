"""Issue-conformance checks that run through the real tasks: a trial found by two sources and in two runs is
screened and counted once (link-studies -> flag-candidates -> decisions -> PRISMA), and a record set aside as a
duplicate comes back to people when a person splits it off its study."""

from __future__ import annotations

import datetime as dt
import json

from livingmeta.config import load_review
from livingmeta.records import Record
from tasks.linking import link_studies
from tasks.screening import flag_candidates
from warehouse import opened
from warehouse.ingest import Fetched, finish_search_run, start_search_run
from warehouse.linking import record_link_decision
from warehouse.reviews import upsert_review
from warehouse.screening import import_decisions, record_decision, records_to_screen

REVIEW = "audit"
T0 = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.timezone.utc)
D = dt.timedelta(days=1)
TRIAL_X = "Intravenous immunoglobulin for painful small fibre neuropathy: a randomised placebo-controlled trial"
TRIAL_Y = "Immunoglobulin versus plasma exchange in chronic inflammatory neuropathy: an open cohort"


def pub(pmid: int, title: str, *, authors=("Geerts M",), year=2021, registry_ids=(), abstract="", doi=None) -> Record:
    return Record(source="pubmed", source_id=str(pmid), title=title, abstract=abstract, authors=list(authors),
                  year=year, registry_ids=list(registry_ids), publication_types=["Journal Article"], doi=doi)


def reg(nct: str, title: str) -> Record:
    return Record(source="ctgov", source_id=nct, title=title, registry_ids=[nct],
                  extra={"study_type": "INTERVENTIONAL", "allocation": "RANDOMIZED"})


def run_source(wh, source: str, records: list[Record], now: dt.datetime) -> None:
    """One search run of a source, stored the way the source tasks store it."""
    with opened(wh) as con:
        run = start_search_run(con, review_id=REVIEW, source=source, query="q", mode="replay", window_start=None,
                               window_end=now, now=now)
        finish_search_run(con, run_id=run, review_id=REVIEW, source=source, now=now, watermark=now,
                          fetched=[Fetched(r, json.dumps(r.to_dict())) for r in records], n_found=len(records))


def setup_review(tmp_path):
    folder = tmp_path / "review"
    folder.mkdir()
    (folder / "review.toml").write_text(
        f'id = "{REVIEW}"\ntitle = "IVIG for painful neuropathy"\n[sources.pubmed]\nquery = "ivig"\n'
        '[sources.ctgov]\ncondition = "neuropathy"\n', encoding="utf-8")
    wh = tmp_path / "wh.duckdb"
    with opened(wh) as con:
        upsert_review(con, load_review(folder), str(folder), T0)
    return folder, wh


def cycle(folder, wh, runs: list[tuple[str, list[Record]]], now: dt.datetime) -> dict:
    """The flow's middle: search runs, then link-studies, then flag-candidates."""
    for source, records in runs:
        run_source(wh, source, records, now)
    link_studies.fn(REVIEW, str(wh))
    return flag_candidates.fn(str(folder), REVIEW, str(wh))


def decide(wh, record_id, decision, stage="title_abstract", reason=None):
    # the tasks stamp the queue with the clock, so decisions made after them must be too
    with opened(wh) as con:
        record_decision(con, review_id=REVIEW, record_id=record_id, reviewer="ana", stage=stage, decision=decision,
                        reason=reason, origin="terminal", now=dt.datetime.now(dt.timezone.utc))


def prisma(wh) -> dict:
    with opened(wh) as con:
        cur = con.execute("SELECT * FROM v_prisma_counts WHERE review_id = ?", [REVIEW])
        return dict(zip([d[0] for d in cur.description], cur.fetchone()))


def test_a_trial_found_by_two_sources_and_in_two_runs_is_counted_once(tmp_path):
    folder, wh = setup_review(tmp_path)
    px, cx = pub(31000001, TRIAL_X, registry_ids=["NCT05000001"]), reg("NCT05000001", TRIAL_X)
    py = pub(31000002, TRIAL_Y, authors=("Jann S",), year=2019)
    first = cycle(folder, wh, [("pubmed", [px, py]), ("ctgov", [cx])], T0)
    assert (first["new"], first["pending"]) == (3, 3)
    with opened(wh) as con:
        studies = dict(con.execute("SELECT record_id, study_id FROM study_links WHERE review_id = ?", [REVIEW]).fetchall())
    assert studies["pubmed:31000001"] == studies["ctgov:NCT05000001"] != studies["pubmed:31000002"]
    for rid in ("pubmed:31000001", "ctgov:NCT05000001"):
        decide(wh, rid, "include")
        decide(wh, rid, "include", stage="full_text")
    decide(wh, "pubmed:31000002", "exclude")

    # run 2 finds all three again (one of them revised), a secondary report of X naming the NCT id in its
    # abstract only, and the journal version of the excluded cohort Y's conference abstract
    px2 = pub(31000003, "Long-term follow-up of immunoglobulin in small fibre neuropathy", year=2023,
              abstract="Extension of the randomised trial NCT05000001 for two more years.")
    py2 = pub(31000004, TRIAL_Y.replace("versus", "vs"), authors=("Jann S",), year=2020)
    px_revised = pub(31000001, TRIAL_X, registry_ids=["NCT05000001"], abstract="Corrected abstract.")
    second = cycle(folder, wh, [("pubmed", [px_revised, py, px2, py2]), ("ctgov", [cx])], T0 + 7 * D)
    assert (second["new"], second["duplicates"], second["new_reports"]) == (2, 1, 1)
    with opened(wh) as con:
        assert con.execute("SELECT count(*), count(DISTINCT record_id) FROM screening_queue WHERE review_id = ?",
                           [REVIEW]).fetchone() == (5, 5)
        ta = [r["record_id"] for r in records_to_screen(con, REVIEW, "ana", "title_abstract")]
        ft = [r["record_id"] for r in records_to_screen(con, REVIEW, "ana", "full_text")]
    # the revised abstract of an included report comes back once; the secondary report goes to full text;
    # the follow-up of the excluded cohort is set aside, and nothing is shown twice
    assert ta == [] and sorted(ft) == ["pubmed:31000001", "pubmed:31000003"]
    decide(wh, "pubmed:31000001", "include", stage="full_text")
    decide(wh, "pubmed:31000003", "include", stage="full_text")
    p = prisma(wh)
    assert (p["identified_pubmed"], p["identified_ctgov"], p["identified_total"]) == (4, 1, 5)
    assert (p["duplicates_removed"], p["screened"], p["excluded_title_abstract"]) == (1, 4, 1)
    assert (p["included_studies"], p["included_reports"]) == (1, 3)
    assert p["screened"] + p["duplicates_removed"] == p["identified_total"]
    # a third identical run changes nothing anywhere
    third = cycle(folder, wh, [("pubmed", [px_revised, py, px2, py2]), ("ctgov", [cx])], T0 + 14 * D)
    assert (third["new"], third["changed"], third["pending"]) == (0, 0, 0)
    assert prisma(wh) == p


def test_a_duplicate_split_off_its_study_comes_back_to_people(tmp_path):
    folder, wh = setup_review(tmp_path)
    py = pub(31000002, TRIAL_Y, authors=("Jann S",), year=2019, doi="10.1000/cohort")
    cycle(folder, wh, [("pubmed", [py])], T0)
    decide(wh, "pubmed:31000002", "exclude")
    # a wrong link ties a different trial with a near-identical title to the excluded cohort: its record carries
    # the cohort's DOI by mistake (near-identical titles alone no longer link: "chronic" / "acute" name two trials)
    other = pub(31000009, TRIAL_Y.replace("chronic", "acute"), authors=("Jann S",), year=2019, doi="10.1000/cohort")
    res = cycle(folder, wh, [("pubmed", [other])], T0 + D)
    assert res["duplicates"] == 1 and prisma(wh)["duplicates_removed"] == 1
    # a person splits it off: it is no longer a duplicate of anything screened and must be screened
    with opened(wh) as con:
        study = con.execute("SELECT study_id FROM study_links WHERE record_id = 'pubmed:31000002'").fetchone()[0]
        record_link_decision(con, REVIEW, "pubmed:31000009", "unlink", study, "ana", T0 + 2 * D)
    res = cycle(folder, wh, [], T0 + 2 * D)
    assert res["restored"] == 1 and res["pending"] == 1
    with opened(wh) as con:
        (row,) = records_to_screen(con, REVIEW, "ana", "title_abstract")
    assert row["record_id"] == "pubmed:31000009" and "no longer" in row["change_note"]
    p = prisma(wh)
    assert (p["duplicates_removed"], p["screened"], p["identified_total"]) == (0, 1, 2)
    assert cycle(folder, wh, [], T0 + 3 * D)["restored"] == 0
