"""No false merges in linking: titles that differ in a number, roman numeral, phase, dose, label or sub-study name
are two trials unless an identifier says they are one; reports of one trial still link.

The labelled pairs are bench/data/linking_pairs.jsonl (written for livingmeta, see bench/data/make_linking_pairs.py);
bench/linking.py prints the same figures. The warehouse test runs the real linking task on a real DuckDB file.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest

from livingmeta.linking import LinkRecord, discriminating_tokens, link_records, title_difference, title_words

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import linking as bench_linking  # noqa: E402  (bench/linking.py)


def pub(rid: str, title: str, author: str = "Rossi F", year: int = 2020, **kw) -> LinkRecord:
    return LinkRecord(rid, "pubmed", title, (author, "Smith J"), year, **kw)


def one_study(*recs: LinkRecord) -> bool:
    return len(set(link_records(list(recs)).study_of().values())) == 1


# ------------------------------------------------------------------------------------------ pure comparison

@pytest.mark.parametrize("a, b", [
    ("Efficacy of X-101 in plaque psoriasis: results of trial 1", "Efficacy of X-101 in plaque psoriasis: results of trial 2"),
    ("Efficacy of X-101 in plaque psoriasis. Part I", "Efficacy of X-101 in plaque psoriasis. Part II"),
    ("Efficacy of X-101 in plaque psoriasis: part one", "Efficacy of X-101 in plaque psoriasis: part two"),
    ("A phase 2 trial of X-101 in plaque psoriasis", "A phase 3 trial of X-101 in plaque psoriasis"),
    ("A phase IIa trial of X-101 in plaque psoriasis", "A phase IIb trial of X-101 in plaque psoriasis"),
    ("A phase I/II trial of X-101 in plaque psoriasis", "A phase II trial of X-101 in plaque psoriasis"),
    ("X-101 10 mg once daily in plaque psoriasis", "X-101 20 mg once daily in plaque psoriasis"),
    ("X-101 0.5 mg/kg in plaque psoriasis in adults", "X-101 1 mg/kg in plaque psoriasis in adults"),
    ("High-dose X-101 in moderate plaque psoriasis", "Low-dose X-101 in moderate plaque psoriasis"),
    ("X-101 in plaque psoriasis: the ADVANCE-1 trial", "X-101 in plaque psoriasis: the ADVANCE-2 trial"),
    ("X-101 in plaque psoriasis: the ADVANCE trial", "X-101 in plaque psoriasis: the ADVANCE-2 trial"),
    ("X-101 in plaque psoriasis (OPERA I)", "X-101 in plaque psoriasis (OPERA II)"),
    ("X-101 in plaque psoriasis: study A", "X-101 in plaque psoriasis: study B"),
    ("X-101 in plaque psoriasis: cohort 1", "X-101 in plaque psoriasis: cohort 2"),
    ("X-101 in plaque psoriasis: arm A", "X-101 in plaque psoriasis: arm B"),
    ("X-101 in plaque psoriasis: a randomised trial", "X-101 in plaque psoriasis: an open-label extension"),
    ("X-101 in plaque psoriasis: a randomised trial", "X-101 in plaque psoriasis: long-term safety"),
    ("X-101 in plaque psoriasis", "X-101 in plaque psoriasis: a follow-up study"),
    ("X-101 in plaque psoriasis: 2-year follow-up", "X-101 in plaque psoriasis: 5-year follow-up"),
    ("X-101 in plaque psoriasis: a pilot trial", "X-101 in plaque psoriasis: a randomised trial"),
    ("The 2019 survey of X-101 use in plaque psoriasis", "The 2020 survey of X-101 use in plaque psoriasis"),
    ("X-101 in plaque psoriasis in children", "X-101 in plaque psoriasis in adults"),
    ("X-101 in plaque psoriasis", "X-101 in plaque psoriasis in children"),
    ("Pregabalin for painful diabetic neuropathy: a randomised trial", "Duloxetine for painful diabetic neuropathy: a randomised trial"),
    ("Ketamine for postoperative delirium in older adults", "Esketamine for postoperative delirium in older adults"),
    ("A single dose of X-101 in plaque psoriasis", "Two doses of X-101 in plaque psoriasis"),
    ("Sacubitril in heart failure: the first trial", "Sacubitril in heart failure: the second trial"),
    ("X-101 in plaque psoriasis: an open-label randomised trial", "X-101 in plaque psoriasis: a double-blind randomised trial"),
    ("X-101 in plaque psoriasis: a crossover trial", "X-101 in plaque psoriasis: a parallel-group trial"),
])
def test_titles_that_name_different_trials(a, b):
    assert title_difference(a, b) is not None
    assert title_difference(b, a) is not None


@pytest.mark.parametrize("a, b", [
    ("Intravenous immunoglobulin in small fibre neuropathy: a randomised trial",
     "Intravenous Immunoglobulin in Small Fiber Neuropathy: A Randomized Trial."),
    ("[Efficacy of immunoglobulin in chronic inflammatory demyelinating polyneuropathy].",
     "Efficacy of immunoglobulin in chronic inflammatory demyelinating polyneuropathy"),
    ("Effect of β-blockers after myocardial infarction", "Effect of beta-blockers after myocardial infarction"),
    ("Metformin vs. insulin in gestational diabetes", "Metformin versus insulin in gestational diabetes"),
    ("Phase III trial of colchicine after myocardial infarction", "Phase 3 trial of colchicine after myocardial infarction"),
    ("Two doses of HPV vaccine in girls aged 9 to 14 years", "2 doses of HPV vaccine in girls aged 9 to 14 years"),
    ("Tranexamic acid for postpartum haemorrhage after caesarean delivery",
     "Erratum: Tranexamic acid for postpartum hemorrhage after cesarean delivery"),
    ("Aspirin in pre-eclampsia prevention: a randomised placebo-controlled trial",
     "Aspirin in preeclampsia prevention"),
    ("Immunoglobulin in painful small fibre neuropathy", "Immunoglobulin in painful small fibre neuropathy: 2-year follow-up"),
    ("Immunoglobulin in painful small fibre neuropathy (SFN-2 trial)", "Immunoglobulin in painful small fibre neuropathy: the SFN 2 trial"),
    ("Immunoglobulin in painful small fibre neuropathy", "Immunoglobulin in painful small fibre neuropathy: week 52 results"),
])
def test_reports_of_one_trial_may_be_one(a, b):
    assert title_difference(a, b) is None, title_difference(a, b)


def test_discriminating_tokens_read_numbers_phases_doses_and_labels():
    assert discriminating_tokens("A phase IIb trial of X 0.4 g/kg in type II diabetes: study B, part one") == {
        "phase:2b", "dose:0p4 g", "n:2", "label:b", "n:1"}
    assert discriminating_tokens("IV immunoglobulin in neuropathy") == frozenset()  # "IV" is intravenous
    assert discriminating_tokens("A TRIAL A MULTICENTRE STUDY") == frozenset()  # capitals: no lettered arms
    assert discriminating_tokens("X: 52-week results") == {"span:52 week"} == discriminating_tokens("X: week 52 results")
    assert discriminating_tokens("X in type 2 diabetes: 12-month results at 2 sites") == {"n:2", "span:12 month"}
    assert title_words("Randomised, β-blocker vs. placebo") == ["randomized", "beta", "blocker", "versus", "placebo"]


# ----------------------------------------------------------------------------------------- link_records

def test_sibling_trials_are_not_merged_and_the_refusal_is_reported():
    a = pub("pubmed:1", "Efficacy and safety of tirzepatide in type 2 diabetes (SURPASS-1)")
    b = pub("pubmed:2", "Efficacy and safety of tirzepatide in type 2 diabetes (SURPASS-2)")
    result = link_records([a, b])
    assert len(set(result.study_of().values())) == 2
    assert any("titles differ in n:1 / n:2" in c.reason for c in result.conflicts)


def test_identifiers_still_link_what_titles_keep_apart():
    a = pub("pubmed:1", "X-101 in plaque psoriasis: the ADVANCE-1 trial, 52-week results", registry_ids=("NCT01000001",))
    b = pub("pubmed:2", "X-101 in plaque psoriasis: the ADVANCE-1 trial, 104-week results", registry_ids=("NCT01000001",))
    assert one_study(a, b)
    c = pub("pubmed:3", "Erratum: X-101 in plaque psoriasis: ADVANCE-1 part II", doi="10.1/advance1")
    d = pub("pubmed:4", "X-101 in plaque psoriasis: ADVANCE-1 part I", doi="10.1/advance1")
    assert one_study(c, d)
    reg = LinkRecord("ctgov:NCT01000002", "ctgov", "A Phase 3 Study of X-101 in Plaque Psoriasis (ADVANCE-2)",
                     registry_ids=("NCT01000002",), references=("5",))
    e = pub("pubmed:5", "X-101 in plaque psoriasis: the ADVANCE-2 trial")
    assert one_study(reg, e)


def test_a_fuzzy_link_never_joins_studies_whose_reports_name_different_trials():
    # trial 1 and trial 2 each have a registered paper and an unnumbered conference abstract; the two abstracts
    # are word for word alike, but their studies' papers say 1 and 2
    t1 = pub("pubmed:1", "Efficacy of X-101 in moderate plaque psoriasis: trial 1", doi="10.1/one")
    a1 = pub("pubmed:2", "Efficacy of X-101 in moderate plaque psoriasis", doi="10.1/one")
    t2 = pub("pubmed:3", "Efficacy of X-101 in moderate plaque psoriasis: trial 2", doi="10.1/two")
    a2 = pub("pubmed:4", "Efficacy of X-101 in moderate plaque psoriasis (abstract)", doi="10.1/two")
    result = link_records([t1, a1, t2, a2])
    s = result.study_of()
    assert s["pubmed:1"] == s["pubmed:2"] and s["pubmed:3"] == s["pubmed:4"] and s["pubmed:1"] != s["pubmed:3"]
    assert any("name different trials" in c.reason for c in result.conflicts)


def test_a_registry_title_of_a_sibling_trial_is_not_linked():
    reg = LinkRecord("ctgov:NCT01000003", "ctgov", "Efficacy of X-101 in Moderate Plaque Psoriasis: Trial 2",
                     registry_ids=("NCT01000003",))
    p = pub("pubmed:1", "Efficacy of X-101 in moderate plaque psoriasis: trial 1")
    assert not one_study(reg, p)
    same = pub("pubmed:2", "Efficacy of X-101 in moderate plaque psoriasis: trial 2")
    assert one_study(reg, same)


# ------------------------------------------------------------------------------------ the labelled pairs

def test_the_labelled_pair_set_is_large_and_every_pair_has_a_reason():
    pairs = bench_linking.load_pairs()
    assert len(pairs) >= 200
    assert {p["label"] for p in pairs} == {"same", "different"} and {p["split"] for p in pairs} == {"dev", "eval"}
    assert all(p["reason"] and p["kind"] for p in pairs)
    assert len({p["id"] for p in pairs}) == len(pairs)
    assert sum(p["label"] == "different" for p in pairs) >= 100


def test_no_false_merge_on_the_labelled_pairs_and_recall_at_least_95_percent():
    r = bench_linking.score(bench_linking.load_pairs())
    wrong = [f"{p['id']}: {p['reason']}" for p in r["false_merges"]]
    assert r["fp"] == 0, wrong
    assert r["recall"] >= 0.95, [p["id"] for p in r["misses"]]


def test_the_pairs_file_is_what_its_generator_writes():
    sys.path.insert(0, str(ROOT / "bench" / "data"))
    import make_linking_pairs

    rows = [json.loads(line) for line in (ROOT / "bench" / "data" / "linking_pairs.jsonl").read_text(
        encoding="utf-8").splitlines()]
    assert rows == json.loads(json.dumps(make_linking_pairs.pairs()))


# --------------------------------------------------------------------------------------- real warehouse

def test_linking_task_keeps_sibling_trials_apart_in_the_warehouse(tmp_path):
    from livingmeta.records import Record
    from tasks.linking import link_studies
    from warehouse import opened
    from warehouse.ingest import Fetched, finish_search_run, start_search_run

    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    wh = tmp_path / "wh.duckdb"
    title = "Dupilumab in moderate-to-severe atopic dermatitis: SOLO {}"
    recs = [Record(source="pubmed", source_id=str(40000000 + k), title=title.format(k), authors=["Simpson EL"],
                   year=2016) for k in (1, 2)]
    recs.append(Record(source="pubmed", source_id="40000003", title="Dupilumab in moderate-to-severe atopic "
                       "dermatitis: SOLO 1.", authors=["Simpson EL"], year=2016))
    with opened(wh) as con:
        run = start_search_run(con, review_id="rv", source="pubmed", query="q", mode="replay", window_start=None,
                               window_end=t0, now=t0)
        finish_search_run(con, run_id=run, review_id="rv", source="pubmed",
                          fetched=[Fetched(r, json.dumps(r.to_dict())) for r in recs], watermark=t0, now=t0)
    out = link_studies.fn("rv", str(wh))
    with opened(wh) as con:
        links = dict(con.execute("SELECT record_id, study_id FROM study_links WHERE review_id = 'rv'").fetchall())
        reasons = [r for (r,) in con.execute("SELECT reason FROM study_link_conflicts WHERE review_id = 'rv'").fetchall()]
    assert links["pubmed:40000001"] == links["pubmed:40000003"] != links["pubmed:40000002"]
    assert out["studies"] == 2 and any("n:1 / n:2" in r or "n:2 / n:1" in r for r in reasons)
