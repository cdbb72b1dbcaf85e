"""The screening queue: rules, ranking, duplicates of screened studies, changed records, alerts.

Records are seeded through warehouse.ingest (the same path the sources use), on a real DuckDB file.
The helpers here are shared by the other test_screening_* files.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from livingmeta.config import ReviewConfig
from livingmeta.records import Record
from livingmeta.screening.queue import describe_change, place_new_record, StudyState
from livingmeta.screening.rules import apply_rules, is_animal_only
from warehouse import connect
from warehouse.ingest import Fetched, finish_search_run, start_search_run
from warehouse.reviews import upsert_review
from warehouse.screening import flag_candidates, record_decision

T0 = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.timezone.utc)
REVIEW = "ivig-test"


def make_config(**screening) -> ReviewConfig:
    """A valid review config with the given [screening] settings."""
    return ReviewConfig.model_validate({
        "id": REVIEW, "title": "IVIG for painful neuropathy",
        "sources": {"pubmed": {"query": "immunoglobulin AND neuralgia"}},
        "screening": {"include_publication_types": ["Randomized Controlled Trial"],
                      "exclude_publication_types": ["Review"],
                      "include_keywords": ["placebo"], "exclude_keywords": ["kawasaki"],
                      "min_decisions_to_train": 6, **screening},
    })


def pubmed(pmid: int, title: str, abstract: str = "", **kw) -> Record:
    return Record(source="pubmed", source_id=str(pmid), title=title, abstract=abstract, **kw)


def ctgov(nct: str, title: str, **kw) -> Record:
    return Record(source="ctgov", source_id=nct, title=title, **kw)


def ingest(con, records: list[Record], now: dt.datetime, source: str = "pubmed", review_id: str = REVIEW) -> None:
    run = start_search_run(con, review_id=review_id, source=source, query="q", mode="replay", window_start=None,
                           window_end=None, now=now)
    finish_search_run(con, run_id=run, review_id=review_id, source=source,
                      fetched=[Fetched(r, json.dumps(r.to_dict())) for r in records], watermark=now, now=now)


def open_review(tmp_path, cfg: ReviewConfig | None = None):
    con = connect(tmp_path / "wh.duckdb")
    upsert_review(con, cfg or make_config(), str(tmp_path), T0)
    return con


def queue(con, review_id: str = REVIEW) -> dict[str, dict]:
    cur = con.execute("SELECT * FROM screening_queue WHERE review_id = ? ORDER BY record_id", [review_id])
    cols = [d[0] for d in cur.description]
    return {r[0 + 1]: dict(zip(cols, r)) for r in cur.fetchall()}


def decide(con, record_id: str, decision: str, *, reviewer: str = "ana", stage: str = "title_abstract",
           reason: str | None = None, at: dt.datetime | None = None) -> int:
    return record_decision(con, review_id=REVIEW, record_id=record_id, reviewer=reviewer, stage=stage,
                           decision=decision, reason=reason, origin="terminal", now=at or T0 + dt.timedelta(hours=1))


# ------------------------------------------------------------------------------------------ pure rules

def test_rules_give_reasons_and_scores():
    s = make_config().screening
    rct = apply_rules(pubmed(1, "IVIG versus placebo in small fibre neuropathy",
                             publication_types=["Randomized Controlled Trial"]).to_dict(), s)
    assert rct.reasons == ["publication type: Randomized Controlled Trial", "keyword: placebo"]
    assert rct.label == "candidate" and rct.score == 4.0
    review = apply_rules(pubmed(2, "Kawasaki disease and immunoglobulin", publication_types=["Review"]).to_dict(), s)
    assert review.reasons == ["excluded publication type: Review", "exclude keyword: kawasaki"]
    assert review.score == -5.0
    reg = apply_rules(ctgov("NCT01234567", "IVIG in neuropathic pain",
                            extra={"study_type": "INTERVENTIONAL", "allocation": "RANDOMIZED"}).to_dict(), s)
    assert reg.reasons == ["registry design: randomized", "registry design: interventional"]


def test_animal_only_records_are_out_of_scope_not_dropped():
    s = make_config().screening
    mice = pubmed(3, "Immunoglobulin reduces pain behaviour in mice", mesh=["Animals", "Mice", "Neuralgia/drug therapy"])
    both = pubmed(4, "Immunoglobulin in mice and patients", mesh=["Animals", "Humans"])
    no_mesh = pubmed(5, "IVIG in a rat model of neuropathic pain")
    assert is_animal_only(mice.to_dict()) and not is_animal_only(both.to_dict()) and is_animal_only(no_mesh.to_dict())
    assert apply_rules(mice.to_dict(), s).label == "out_of_scope"
    assert apply_rules(mice.to_dict(), make_config(out_of_scope_animal=False).screening).label == "candidate"


def test_change_notes_name_what_changed_and_ignore_indexing():
    assert describe_change(["mesh", "keywords"], []) is None
    assert describe_change(["retracted", "corrections"], [{"kind": "retracted", "old_value": None, "new_value": "retracted"}]) \
        == "retracted; correction notices changed (erratum, retraction, expression of concern)"
    assert describe_change(["extra"], [{"kind": "status_change", "old_value": "RECRUITING", "new_value": "COMPLETED"},
                                       {"kind": "results_posted", "old_value": None, "new_value": "2024-02-01"}]) \
        == "registry status RECRUITING -> COMPLETED; results posted (2024-02-01)"


def test_placement_of_records_of_already_screened_studies():
    assert place_new_record("candidate", None).state == "pending"
    dup = place_new_record("candidate", StudyState("Smith2020", "pubmed:1", "excluded", "excluded at title/abstract"))
    assert (dup.state, dup.label) == ("duplicate", "duplicate") and "pubmed:1" in dup.note
    rep = place_new_record("candidate", StudyState("Smith2020", "pubmed:1", "in_play", "included"))
    assert (rep.state, rep.stage, rep.label) == ("pending", "full_text", "new_report")


# ---------------------------------------------------------------------------------------- warehouse

def test_flagging_puts_new_records_in_the_queue_once_with_reasons(tmp_path):
    con = open_review(tmp_path)
    ingest(con, [
        pubmed(1, "IVIG versus placebo in small fibre neuropathy", publication_types=["Randomized Controlled Trial"]),
        pubmed(2, "Immunoglobulin in Kawasaki disease: a review", publication_types=["Review"]),
        pubmed(3, "Immunoglobulin reduces pain behaviour in mice", mesh=["Animals", "Mice"]),
    ], T0)
    ingest(con, [ctgov("NCT01234567", "IVIG for neuropathic pain",
                       extra={"study_type": "INTERVENTIONAL", "allocation": "RANDOMIZED"})], T0, source="ctgov")
    res = flag_candidates(con, REVIEW, make_config(), T0)
    assert res["new"] == 4 and res["pending"] == 4 and res["out_of_scope"] == 1 and res["ranker"] == "rules"
    q = queue(con)
    assert json.loads(q["pubmed:1"]["reasons"])[0] == "publication type: Randomized Controlled Trial"
    assert q["pubmed:3"]["label"] == "out_of_scope" and q["pubmed:3"]["state"] == "pending"
    order = [r for (r,) in con.execute("SELECT record_id FROM v_screening_queue WHERE review_id = ? ORDER BY rank",
                                       [REVIEW]).fetchall()]
    # rules first (RCT / randomised registry entry), the review next, the animal study last
    assert set(order[:2]) == {"pubmed:1", "ctgov:NCT01234567"} and order[2:] == ["pubmed:2", "pubmed:3"]
    alerts = con.execute("SELECT kind, title, body FROM alerts WHERE review_id = ?", [REVIEW]).fetchall()
    assert len(alerts) == 1 and alerts[0][0] == "new_candidates"
    assert "4 record(s) wait" in alerts[0][1] and "IVIG versus placebo in small fibre neuropathy (pubmed:1)" in alerts[0][2]

    before = queue(con)
    again = flag_candidates(con, REVIEW, make_config(), T0 + dt.timedelta(days=1))
    assert again["new"] == 0 and again["changed"] == 0 and again["alert_id"] is None
    assert queue(con) == before
    assert con.execute("SELECT count(*) FROM alerts").fetchone()[0] == 1


@pytest.mark.parametrize("batch", [1, 2])
def test_flagging_in_slices_gives_the_queue_of_one_pass(tmp_path, monkeypatch, batch):
    import warehouse.screening as screening

    records = [
        pubmed(1, "IVIG versus placebo in small fibre neuropathy", publication_types=["Randomized Controlled Trial"]),
        pubmed(2, "Immunoglobulin in Kawasaki disease: a review", publication_types=["Review"]),
        pubmed(3, "Immunoglobulin reduces pain behaviour in mice", mesh=["Animals", "Mice"]),
        pubmed(4, "Placebo controlled trial of IVIG for painful neuropathy"),
        pubmed(5, "IVIG in chronic inflammatory demyelinating polyneuropathy"),
    ]
    got = {}
    for name, size in (("one pass", 10_000), ("slices", batch)):
        monkeypatch.setattr(screening, "FLAG_BATCH", size)
        folder = tmp_path / name.replace(" ", "-")
        folder.mkdir()
        con = open_review(folder)
        ingest(con, records, T0)
        res = flag_candidates(con, REVIEW, make_config(), T0)
        alerts = con.execute("SELECT kind, title, body FROM alerts WHERE review_id = ?", [REVIEW]).fetchall()
        got[name] = (res, queue(con), alerts)
        con.close()
    assert got["one pass"][0]["new"] == 5
    assert got["slices"] == got["one pass"]


def _labelled_set() -> tuple[list[Record], set[str]]:
    """40 records: 8 about immunoglobulin for neuropathic pain (the includes), 32 on other topics."""
    relevant = [
        "Intravenous immunoglobulin for painful small fibre neuropathy: randomised placebo controlled trial",
        "IVIG reduces neuropathic pain in sodium channel small fiber neuropathy",
        "Immunoglobulin therapy and pain relief in painful diabetic neuropathy",
        "Subcutaneous immunoglobulin for chronic neuropathic pain: a pilot trial",
        "Intravenous immunoglobulin in complex regional pain syndrome pain relief",
        "Low dose immunoglobulin for painful idiopathic small fibre neuropathy",
        "Neuropathic pain improves after intravenous immunoglobulin in neuropathy patients",
        "Randomised trial of immunoglobulin for pain in small fiber neuropathy",
    ]
    other = ["statin therapy and cardiovascular events", "chemotherapy for metastatic breast cancer",
             "asthma inhaler adherence in children", "hip fracture surgery outcomes in older adults",
             "antibiotic prophylaxis before dental extraction", "vitamin D supplements and bone density",
             "smoking cessation counselling in primary care", "depression screening in pregnancy"]
    recs, includes = [], set()
    for k, t in enumerate(relevant):
        recs.append(pubmed(100 + k, t, f"{t}. Patients received immunoglobulin and pain scores were recorded."))
        includes.add(f"pubmed:{100 + k}")
    for k in range(32):
        topic = other[k % len(other)]
        recs.append(pubmed(200 + k, f"{topic.capitalize()}: cohort {k}",
                           f"We studied {topic} in {k + 20} participants; outcomes were measured at one year."))
    return recs, includes


def test_model_ranks_includes_first_once_enough_decisions(tmp_path):
    con = open_review(tmp_path)
    recs, includes = _labelled_set()
    ingest(con, recs, T0)
    cfg = make_config()
    assert flag_candidates(con, REVIEW, cfg, T0)["ranker"] == "rules"
    # 2 includes + 3 excludes: below min_decisions_to_train (6), rules still rank
    for rid, d in [("pubmed:100", "include"), ("pubmed:101", "include"), ("pubmed:200", "exclude"),
                   ("pubmed:201", "exclude"), ("pubmed:202", "exclude")]:
        decide(con, rid, d)
    assert flag_candidates(con, REVIEW, cfg, T0 + dt.timedelta(hours=2))["ranker"] == "rules"
    decide(con, "pubmed:203", "exclude")
    res = flag_candidates(con, REVIEW, cfg, T0 + dt.timedelta(hours=3))
    assert res["ranker"].startswith("tfidf-svm") and "trained on 6 decisions" in res["ranker"]
    pending = [r for (r,) in con.execute("SELECT record_id FROM v_screening_queue WHERE review_id = ? "
                                         "AND stage = 'title_abstract' ORDER BY rank", [REVIEW]).fetchall()]
    assert len(pending) == 34
    # the six includes not yet screened are the six best-ranked records
    assert set(pending[:6]) == includes - {"pubmed:100", "pubmed:101"}
    scores1 = dict(con.execute("SELECT record_id, score FROM screening_queue").fetchall())
    flag_candidates(con, REVIEW, cfg, T0 + dt.timedelta(hours=4))
    assert dict(con.execute("SELECT record_id, score FROM screening_queue").fetchall()) == scores1  # deterministic


def test_record_of_a_study_already_screened(tmp_path):
    con = open_review(tmp_path)
    ingest(con, [pubmed(1, "IVIG trial in neuropathic pain"), pubmed(2, "Kawasaki IVIG cohort")], T0)
    flag_candidates(con, REVIEW, make_config(), T0)
    decide(con, "pubmed:1", "include")
    decide(con, "pubmed:1", "include", stage="full_text")
    decide(con, "pubmed:2", "exclude")
    # a registry entry of the included trial and a follow-up paper of the excluded cohort arrive
    ingest(con, [pubmed(3, "Kawasaki IVIG cohort: five-year follow-up")], T0 + dt.timedelta(days=7))
    ingest(con, [ctgov("NCT01234567", "IVIG in neuropathic pain")], T0 + dt.timedelta(days=7), source="ctgov")
    links = [("pubmed:1", "Smith2020"), ("ctgov:NCT01234567", "Smith2020"), ("pubmed:2", "Jones2019"),
             ("pubmed:3", "Jones2019")]
    con.executemany("INSERT INTO study_links VALUES (?, ?, ?, 'manual', NULL, ?)",
                    [(REVIEW, r, s, T0) for r, s in links])
    res = flag_candidates(con, REVIEW, make_config(), T0 + dt.timedelta(days=7))
    assert res["duplicates"] == 1 and res["new_reports"] == 1
    q = queue(con)
    assert (q["pubmed:3"]["state"], q["pubmed:3"]["label"]) == ("duplicate", "duplicate")
    assert "pubmed:2" in q["pubmed:3"]["change_note"]
    reg = q["ctgov:NCT01234567"]
    assert (reg["state"], reg["stage"], reg["label"]) == ("pending", "full_text", "new_report")
    p = con.execute("SELECT duplicates_removed, screened, included_studies, included_reports FROM v_prisma_counts "
                    "WHERE review_id = ?", [REVIEW]).fetchone()
    assert p == (1, 2, 1, 1)
    # once the new report is read and included, the study is still counted once
    decide(con, "ctgov:NCT01234567", "include", stage="full_text", at=T0 + dt.timedelta(days=8))
    assert queue(con)["ctgov:NCT01234567"]["state"] == "decided"
    p = con.execute("SELECT included_studies, included_reports FROM v_prisma_counts WHERE review_id = ?", [REVIEW]).fetchone()
    assert p == (1, 2)


def test_changed_screened_record_comes_back_with_what_changed(tmp_path):
    con = open_review(tmp_path)
    original = pubmed(1, "IVIG trial in neuropathic pain", publication_types=["Randomized Controlled Trial"],
                      source_version="1")
    pending = pubmed(2, "Another IVIG trial", source_version="1")
    ingest(con, [original, pending], T0)
    flag_candidates(con, REVIEW, make_config(), T0)
    decide(con, "pubmed:1", "include")
    decide(con, "pubmed:1", "include", stage="full_text")
    assert queue(con)["pubmed:1"]["state"] == "decided"
    retracted = pubmed(1, "IVIG trial in neuropathic pain", publication_types=["Randomized Controlled Trial",
                       "Retracted Publication"], source_version="1", retracted=True,
                       corrections=[{"type": "RetractionIn", "pmid": "99", "text": "Retraction"}])
    indexed = pubmed(2, "Another IVIG trial", source_version="1", mesh=["Humans"])  # MeSH added: not news
    ingest(con, [retracted, indexed], T0 + dt.timedelta(days=30))
    res = flag_candidates(con, REVIEW, make_config(), T0 + dt.timedelta(days=30))
    assert res["changed"] == 1 and res["new"] == 0
    q = queue(con)
    assert (q["pubmed:1"]["state"], q["pubmed:1"]["label"], q["pubmed:1"]["stage"]) == ("pending", "changed", "full_text")
    assert q["pubmed:1"]["change_note"].startswith("v1 -> v2: retracted")
    assert q["pubmed:1"]["record_version"] == 2 and json.loads(q["pubmed:1"]["reasons"])[0] == "retracted"
    assert (q["pubmed:2"]["label"], q["pubmed:2"]["record_version"]) == ("candidate", 2)
    # the changed record leads the queue; its earlier decision stands until someone decides again
    top = con.execute("SELECT record_id FROM v_screening_queue WHERE review_id = ? ORDER BY rank LIMIT 1", [REVIEW]).fetchone()
    assert top == ("pubmed:1",)
    assert con.execute("SELECT full_text FROM v_record_screening WHERE record_id = 'pubmed:1'").fetchone() == ("include",)
    assert flag_candidates(con, REVIEW, make_config(), T0 + dt.timedelta(days=31))["changed"] == 0  # idempotent
    decide(con, "pubmed:1", "exclude", stage="full_text", reason="retracted", at=T0 + dt.timedelta(days=32))
    assert queue(con)["pubmed:1"]["state"] == "decided"
    assert con.execute("SELECT count(*) FROM v_included_studies").fetchone() == (0,)


def test_queue_falls_back_to_rules_when_the_model_cannot_train(tmp_path):
    con = open_review(tmp_path)
    recs, _ = _labelled_set()
    ingest(con, recs, T0)
    flag_candidates(con, REVIEW, make_config(), T0)
    for k in range(8):  # plenty of decisions, but all excludes: no classifier can learn from one class
        decide(con, f"pubmed:{200 + k}", "exclude")
    assert flag_candidates(con, REVIEW, make_config(), T0 + dt.timedelta(hours=2))["ranker"] == "rules"


@pytest.mark.parametrize("reviewers", [1, 2])
def test_flag_candidates_task_runs_without_the_engine(tmp_path, reviewers):
    from tasks.screening import flag_candidates as task

    (tmp_path / "review.toml").write_text(
        f'id = "{REVIEW}"\ntitle = "t"\n[sources.pubmed]\nquery = "q"\n[screening]\nreviewers = {reviewers}\n',
        encoding="utf-8")
    con = open_review(tmp_path)
    ingest(con, [pubmed(1, "IVIG trial")], T0)
    con.close()
    res = task.fn(str(tmp_path), REVIEW, str(tmp_path / "wh.duckdb"))
    assert res["new"] == 1 and res["pending"] == 1
