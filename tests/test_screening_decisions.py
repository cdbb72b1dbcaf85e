"""Decisions: append-only with undo, imports (native and ASReview), two-reviewer conflicts and kappa."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from livingmeta.screening.agreement import cohen_kappa
from livingmeta.screening.decisions import DecisionFileError, canonical_record_id
from test_screening_queue import REVIEW, T0, ctgov, decide, ingest, make_config, open_review, pubmed, queue
from warehouse.screening import (flag_candidates, import_decisions, list_conflicts, screening_kappa, screening_status,
                                 undo_decision)


def seeded(tmp_path, **screening):
    cfg = make_config(**screening)
    con = open_review(tmp_path, cfg)
    ingest(con, [pubmed(k, f"IVIG trial {k}") for k in range(1, 11)], T0)
    ingest(con, [ctgov("NCT01234567", "IVIG registry entry")], T0, source="ctgov")
    flag_candidates(con, REVIEW, cfg, T0)
    return con


def n_decisions(con) -> int:
    return con.execute("SELECT count(*) FROM screening_decisions").fetchone()[0]


def write(tmp_path, name: str, text: str):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# ------------------------------------------------------------------------------------------ pure parts

def test_cohen_kappa_hand_computed():
    # 10 records: A includes 1-4, B includes 1-3 and 5. p_o = 8/10; p_e = .4*.4 + .6*.6 = .52;
    # kappa = (.8 - .52) / (1 - .52) = .58333...
    a = ["include"] * 4 + ["exclude"] * 6
    b = ["include"] * 3 + ["exclude", "include"] + ["exclude"] * 5
    assert cohen_kappa(zip(a, b)) == pytest.approx(0.28 / 0.48, abs=1e-12)
    assert cohen_kappa([("include", "include"), ("exclude", "exclude")]) == pytest.approx(1.0)
    assert cohen_kappa([("include", "include")]) is None  # one label only: undefined
    assert cohen_kappa([]) is None


def test_record_ids_people_write():
    assert canonical_record_id("33766992") == "pubmed:33766992"
    assert canonical_record_id("nct02915263") == "ctgov:NCT02915263"
    assert canonical_record_id("ctgov:NCT02915263") == "ctgov:NCT02915263"
    assert canonical_record_id("PMID: 123") == "pubmed:123"


# ------------------------------------------------------------------------------------ decisions, undo

def test_decisions_are_append_only_and_undo_restores_the_previous_one(tmp_path):
    con = seeded(tmp_path)
    first = decide(con, "pubmed:1", "exclude", at=T0 + dt.timedelta(hours=1))
    second = decide(con, "pubmed:1", "include", at=T0 + dt.timedelta(hours=2))
    assert con.execute("SELECT decision FROM v_current_decisions WHERE record_id = 'pubmed:1'").fetchall() == [("include",)]
    assert queue(con)["pubmed:1"]["stage"] == "full_text"
    undo_decision(con, review_id=REVIEW, decision_id=second, reviewer="ana", now=T0 + dt.timedelta(hours=3))
    assert con.execute("SELECT decision FROM v_current_decisions WHERE record_id = 'pubmed:1'").fetchall() == [("exclude",)]
    assert (queue(con)["pubmed:1"]["stage"], queue(con)["pubmed:1"]["state"]) == ("title_abstract", "decided")
    undo_decision(con, review_id=REVIEW, decision_id=first, reviewer="ana", now=T0 + dt.timedelta(hours=4))
    assert con.execute("SELECT count(*) FROM v_current_decisions WHERE record_id = 'pubmed:1'").fetchone() == (0,)
    assert queue(con)["pubmed:1"]["state"] == "pending"
    assert n_decisions(con) == 2  # nothing was deleted
    with pytest.raises(ValueError, match="only they can undo"):
        undo_decision(con, review_id=REVIEW, decision_id=first, reviewer="bob", now=T0)


def test_title_abstract_exclude_needs_no_full_text_and_include_needs_one(tmp_path):
    con = seeded(tmp_path)
    con.execute("INSERT INTO study_links VALUES (?, 'pubmed:2', 'Trial2', 'pmid', NULL, ?)", [REVIEW, T0])
    decide(con, "pubmed:1", "exclude")
    decide(con, "pubmed:2", "include")
    s = dict((r, (ta, ft)) for r, ta, ft in con.execute(
        "SELECT record_id, title_abstract, full_text FROM v_record_screening").fetchall())
    assert s == {"pubmed:1": ("exclude", None), "pubmed:2": ("include", None)}
    assert con.execute("SELECT count(*) FROM v_included_studies").fetchone() == (0,)
    with pytest.raises(ValueError, match="needs a reason"):
        decide(con, "pubmed:2", "exclude", stage="full_text")
    decide(con, "pubmed:2", "include", stage="full_text", at=T0 + dt.timedelta(hours=2))
    assert con.execute("SELECT study_id FROM v_included_studies").fetchall() == [("Trial2",)]
    q = queue(con)
    assert q["pubmed:1"]["state"] == "decided" and q["pubmed:2"]["state"] == "decided"


# ------------------------------------------------------------------------------------------- imports

NATIVE = """record_id,reviewer,stage,decision,reason,decided_at
pubmed:1,ana,title_abstract,include,,2024-02-01
2,ana,title_abstract,exclude,not a trial,2024-02-01T10:00:00Z
NCT01234567,ana,full_text,exclude,wrong comparator,
"""


def test_native_import_and_importing_twice_changes_nothing(tmp_path):
    con = seeded(tmp_path)
    p = write(tmp_path, "decisions.csv", NATIVE)
    res = import_decisions(con, REVIEW, p, now=T0 + dt.timedelta(days=1))
    assert (res["format"], res["rows"], res["added"], res["already_imported"]) == ("native", 3, 3, 0)
    rows = con.execute("SELECT record_id, stage, decision, reason, decided_at, origin FROM screening_decisions "
                       "ORDER BY decision_id").fetchall()
    assert [r[:4] for r in rows] == [("pubmed:1", "title_abstract", "include", None),
                                     ("pubmed:2", "title_abstract", "exclude", "not a trial"),
                                     ("ctgov:NCT01234567", "full_text", "exclude", "wrong comparator")]
    assert rows[0][4] == dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc)
    assert rows[2][4] == T0 + dt.timedelta(days=1)  # no decided_at: the import time
    again = import_decisions(con, REVIEW, p, now=T0 + dt.timedelta(days=2))
    assert (again["added"], again["already_imported"]) == (0, 3)
    assert n_decisions(con) == 3


@pytest.mark.parametrize("body, line, column, words", [
    ("pubmed:1,ana,title_abstract,include,,\npubmed:999,ana,title_abstract,include,,\n", 3, "record_id", "unknown record"),
    ("pubmed:1,ana,title_abstract,yes,,\n", 2, "decision", "'yes' is not allowed"),
    ("pubmed:1,,title_abstract,include,,\n", 2, "reviewer", "no reviewer"),
    ("pubmed:1,ana,abstract,include,,\n", 2, "stage", "not allowed"),
    ("pubmed:1,ana,full_text,exclude,,\n", 2, "reason", "needs a reason"),
    ("pubmed:1,ana,title_abstract,include,,01/02/2024\n", 2, "decided_at", "not an ISO date"),
])
def test_a_bad_row_rejects_the_whole_file_and_names_it(tmp_path, body, line, column, words):
    con = seeded(tmp_path)
    decide(con, "pubmed:5", "include")
    before = con.execute("SELECT * FROM screening_decisions ORDER BY decision_id").fetchall()
    p = write(tmp_path, "bad.csv", "record_id,reviewer,stage,decision,reason,decided_at\n"
                                   "pubmed:3,ana,title_abstract,include,,\n" + body)
    with pytest.raises(DecisionFileError) as err:
        import_decisions(con, REVIEW, p)
    msg = str(err.value)
    assert f"bad.csv, line {line + 1}, column '{column}'" in msg and words in msg and "Nothing was imported" in msg
    assert con.execute("SELECT * FROM screening_decisions ORDER BY decision_id").fetchall() == before


def _asreview_export(included: list[str]) -> str:
    # what ASReview LAB writes back: our exported columns plus its label column
    lines = ["record_id,livingmeta_id,title,abstract,authors,year,journal,doi,keywords,included"]
    for k, (rid, label) in enumerate(zip(["pubmed:1", "pubmed:2", "ctgov:NCT01234567"], included), 1):
        lines.append(f'{k},{rid},"Title {k}",,,2020,,,,{label}')
    return "\n".join(lines) + "\n"


def test_asreview_export_needs_a_reviewer_and_maps_rows_back(tmp_path):
    con = seeded(tmp_path)
    p = write(tmp_path, "asreview_result.csv", _asreview_export(["1", "0", ""]))
    with pytest.raises(DecisionFileError, match="--reviewer"):
        import_decisions(con, REVIEW, p)
    assert n_decisions(con) == 0
    res = import_decisions(con, REVIEW, p, reviewer="ana")
    assert (res["format"], res["added"]) == ("asreview", 2)  # the blank label is not a decision
    assert con.execute("SELECT record_id, decision, reviewer, origin FROM screening_decisions ORDER BY record_id").fetchall() \
        == [("pubmed:1", "include", "ana", "asreview"), ("pubmed:2", "exclude", "ana", "asreview")]
    assert import_decisions(con, REVIEW, p, reviewer="ana")["added"] == 0
    bad = write(tmp_path, "bad_label.csv", _asreview_export(["1", "yes", ""]))
    with pytest.raises(DecisionFileError, match=r"line 3, column 'included'"):
        import_decisions(con, REVIEW, bad, reviewer="ana")


def test_asreview_row_numbers_are_never_taken_for_pmids(tmp_path):
    con = seeded(tmp_path)
    # livingmeta_id lost: record_id 1 is ASReview's row number, not PMID 1
    p = write(tmp_path, "lost.csv", "record_id,title,included\n1,Title 1,1\n")
    with pytest.raises(DecisionFileError, match="cannot map row"):
        import_decisions(con, REVIEW, p, reviewer="ana")


# -------------------------------------------------------------------------------- two reviewers

def test_two_reviewer_conflicts_kappa_and_a_third_decision(tmp_path):
    con = seeded(tmp_path, reviewers=2)
    a = ["include"] * 4 + ["exclude"] * 6
    b = ["include"] * 3 + ["exclude", "include"] + ["exclude"] * 5
    for k in range(10):
        decide(con, f"pubmed:{k + 1}", a[k], reviewer="ana", at=T0 + dt.timedelta(minutes=k))
        decide(con, f"pubmed:{k + 1}", b[k], reviewer="bob", at=T0 + dt.timedelta(hours=1, minutes=k))
    decide(con, "ctgov:NCT01234567", "include", reviewer="ana")
    assert screening_kappa(con, REVIEW) == pytest.approx(0.28 / 0.48, abs=1e-12)
    assert [(c["record_id"], c["decisions"]) for c in list_conflicts(con, REVIEW)] == [
        ("pubmed:4", ["ana=include", "bob=exclude"]), ("pubmed:5", ["ana=exclude", "bob=include"])]
    final = {r: (ta, state) for r, ta, state in con.execute(
        "SELECT record_id, title_abstract, title_abstract_state FROM v_record_screening").fetchall()}
    assert final["pubmed:1"] == ("include", "agreed") and final["pubmed:6"] == ("exclude", "agreed")
    assert final["pubmed:4"] == (None, "conflict") and final["ctgov:NCT01234567"] == (None, "awaiting_second")
    assert queue(con)["pubmed:4"]["state"] == "pending"
    # a third reviewer resolves pubmed:4; kappa still compares the first two reviewers only
    decide(con, "pubmed:4", "exclude", reviewer="cleo", at=T0 + dt.timedelta(hours=3))
    assert con.execute("SELECT title_abstract, title_abstract_state FROM v_record_screening "
                       "WHERE record_id = 'pubmed:4'").fetchone() == ("exclude", "resolved")
    assert [c["record_id"] for c in list_conflicts(con, REVIEW)] == ["pubmed:5"]
    assert screening_kappa(con, REVIEW) == pytest.approx(0.28 / 0.48, abs=1e-12)
    # a screener changing their mind to agree resolves pubmed:5 too, but kappa keeps measuring the
    # independent first decisions
    decide(con, "pubmed:5", "exclude", reviewer="bob", at=T0 + dt.timedelta(hours=4))
    assert list_conflicts(con, REVIEW) == []
    assert con.execute("SELECT title_abstract_state FROM v_record_screening WHERE record_id = 'pubmed:5'").fetchone() \
        == ("agreed",)
    st = screening_status(con, REVIEW)
    assert st["conflicts"] == 0 and st["kappa"] == pytest.approx(0.28 / 0.48, abs=1e-12)
    assert any("kappa 0.58" in line for line in st["guidance"])


def test_status_gives_stopping_guidance(tmp_path):
    con = seeded(tmp_path)
    decide(con, "pubmed:1", "include", at=T0 + dt.timedelta(minutes=1))
    for k in range(2, 6):
        decide(con, f"pubmed:{k}", "exclude", at=T0 + dt.timedelta(minutes=k))
    st = screening_status(con, REVIEW)
    assert (st["screened"], st["pending"], st["since_last_include"]) == (5, 6, 4)
    # pending x include share of the last decisions: 6 x 1/5
    assert st["expected_remaining"] == pytest.approx(1.2)
    assert st["ranker"] == "rules" and st["kappa"] is None and st["awaiting_full_text"] == 1
    assert any("4 decision(s) since the last include" in line for line in st["guidance"])


def test_two_reviewer_changed_record_needs_both_screeners_again(tmp_path):
    from warehouse.screening import records_to_screen

    cfg = make_config(reviewers=2)
    con = open_review(tmp_path, cfg)
    ingest(con, [pubmed(1, "IVIG trial in neuropathic pain", source_version="1")], T0)
    flag_candidates(con, REVIEW, cfg, T0)
    for who in ("ana", "bob"):
        decide(con, "pubmed:1", "include", reviewer=who, at=T0 + dt.timedelta(hours=1))
        decide(con, "pubmed:1", "include", reviewer=who, stage="full_text", at=T0 + dt.timedelta(hours=2))
    assert queue(con)["pubmed:1"]["state"] == "decided"
    ingest(con, [pubmed(1, "IVIG trial in neuropathic pain", source_version="1", retracted=True)], T0 + dt.timedelta(days=9))
    assert flag_candidates(con, REVIEW, cfg, T0 + dt.timedelta(days=9))["changed"] == 1
    assert {who: [r["record_id"] for r in records_to_screen(con, REVIEW, who, "full_text")] for who in ("ana", "bob")} \
        == {"ana": ["pubmed:1"], "bob": ["pubmed:1"]}
    # ana excludes after reading the retraction; bob's include from before the change must not close the record,
    # nor may an agreeing stale word: it stays pending for bob
    decide(con, "pubmed:1", "exclude", reviewer="ana", stage="full_text", reason="retracted", at=T0 + dt.timedelta(days=10))
    q = queue(con)["pubmed:1"]
    assert (q["state"], q["stage"]) == ("pending", "full_text")
    assert [r["record_id"] for r in records_to_screen(con, REVIEW, "bob", "full_text")] == ["pubmed:1"]
    assert records_to_screen(con, REVIEW, "ana", "full_text") == []
    decide(con, "pubmed:1", "exclude", reviewer="bob", stage="full_text", reason="retracted", at=T0 + dt.timedelta(days=11))
    assert queue(con)["pubmed:1"]["state"] == "decided"
    assert con.execute("SELECT full_text, full_text_state FROM v_record_screening WHERE record_id = 'pubmed:1'"
                       ).fetchone() == ("exclude", "agreed")


def test_two_reviewer_changed_record_not_closed_by_one_fresh_agreeing_word(tmp_path):
    cfg = make_config(reviewers=2)
    con = open_review(tmp_path, cfg)
    ingest(con, [pubmed(1, "IVIG trial", source_version="1")], T0)
    flag_candidates(con, REVIEW, cfg, T0)
    for who in ("ana", "bob"):
        decide(con, "pubmed:1", "exclude", reviewer=who, at=T0 + dt.timedelta(hours=1))
    ingest(con, [pubmed(1, "IVIG trial", "A new abstract naming a placebo arm.", source_version="2")],
           T0 + dt.timedelta(days=9))
    flag_candidates(con, REVIEW, cfg, T0 + dt.timedelta(days=9))
    assert (queue(con)["pubmed:1"]["state"], queue(con)["pubmed:1"]["stage"]) == ("pending", "title_abstract")
    decide(con, "pubmed:1", "exclude", reviewer="ana", at=T0 + dt.timedelta(days=10))
    assert queue(con)["pubmed:1"]["state"] == "pending"  # bob has not seen the new abstract yet
    decide(con, "pubmed:1", "include", reviewer="bob", at=T0 + dt.timedelta(days=10, hours=1))
    assert [c["record_id"] for c in list_conflicts(con, REVIEW)] == ["pubmed:1"]
    decide(con, "pubmed:1", "include", reviewer="cleo", at=T0 + dt.timedelta(days=11))
    q = queue(con)["pubmed:1"]
    assert (q["state"], q["stage"]) == ("pending", "full_text")  # resolved to include: on to full text


# ------------------------------------------------------------------------------ ASReview round trip

def _lab_export(exported: list[dict], labels: dict[str, str], version: int, notes: dict[str, str] | None = None) -> str:
    """What ASReview LAB writes after screening a file from `export_records` (rows in its ranking order).

    1.x: `record_id` first, our columns, its labels in `included` (1 / 0 / blank), `asreview_ranking`,
    `exported_notes_1`. 2.x: our columns kept as they were (so `included` still holds what we exported),
    plus `asreview_label`, `asreview_time`, `asreview_note`.
    """
    notes = notes or {}
    ranked = sorted(exported, key=lambda r: (labels.get(r["livingmeta_id"], "") == "", r["livingmeta_id"]))
    cols = ["record_id", "livingmeta_id", "title", "abstract", "authors", "year", "journal", "doi", "keywords",
            "included"]
    extra = ["asreview_ranking", "exported_notes_1"] if version == 1 else ["asreview_label", "asreview_time",
                                                                          "asreview_note"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols + extra)
    for k, r in enumerate(ranked, 1):
        lid = r["livingmeta_id"]
        base = [r[c] for c in cols]
        if version == 1:
            base[-1] = labels.get(lid, "")
            w.writerow(base + [k, notes.get(lid, "")])
        else:
            w.writerow(base + [labels.get(lid, ""), "2024-03-02 10:00:00.123456" if lid in labels else "",
                               notes.get(lid, "")])
    return buf.getvalue()


@pytest.mark.parametrize("version", [1, 2])
def test_asreview_lab_round_trip(tmp_path, version):
    from warehouse.screening import export_records

    con = seeded(tmp_path)
    decide(con, "pubmed:3", "exclude")  # exported as included=0: LAB 2.x keeps that column as it was
    exported = export_records(con, REVIEW)
    assert [r["included"] for r in exported if r["livingmeta_id"] == "pubmed:3"] == [0]
    labels = {"pubmed:1": "1", "pubmed:2": "0", "pubmed:3": "1", "ctgov:NCT01234567": "1"}
    p = write(tmp_path, "lab.csv", _lab_export(exported, labels, version, notes={"pubmed:2": "not neuropathy"}))
    res = import_decisions(con, REVIEW, p, reviewer="bob", now=T0 + dt.timedelta(days=1))
    assert (res["format"], res["rows"], res["added"]) == ("asreview", 4, 4)
    got = con.execute("SELECT record_id, decision, reason FROM screening_decisions WHERE reviewer = 'bob' "
                      "ORDER BY record_id").fetchall()
    # bob's relevant label on pubmed:3 wins over the stale 0 that 2.x leaves in `included`
    assert got == [("ctgov:NCT01234567", "include", None), ("pubmed:1", "include", None),
                   ("pubmed:2", "exclude", "not neuropathy"), ("pubmed:3", "include", None)]
    assert import_decisions(con, REVIEW, p, reviewer="bob")["added"] == 0


def test_two_reviewer_export_is_blind(tmp_path):
    from warehouse.screening import export_records

    con = seeded(tmp_path, reviewers=2)
    decide(con, "pubmed:3", "exclude", reviewer="ana")
    decide(con, "pubmed:3", "exclude", reviewer="bob")
    assert con.execute("SELECT title_abstract FROM v_record_screening WHERE record_id = 'pubmed:3'").fetchone() == ("exclude",)
    assert {r["included"] for r in export_records(con, REVIEW)} == {""}


def test_importing_decisions_retrains_the_ranking(tmp_path):
    cfg = make_config(min_decisions_to_train=4)
    con = open_review(tmp_path, cfg)
    ingest(con, [pubmed(k, f"Immunoglobulin for neuropathic pain {k}", "IVIG pain relief") for k in range(1, 6)]
           + [pubmed(k, f"Statins and heart attacks {k}", "cholesterol outcomes") for k in range(6, 12)], T0)
    assert flag_candidates(con, REVIEW, cfg, T0)["ranker"] == "rules"
    p = write(tmp_path, "d.csv", "record_id,reviewer,stage,decision,reason,decided_at\n"
              "1,ana,title_abstract,include,,\n2,ana,title_abstract,include,,\n"
              "6,ana,title_abstract,exclude,,\n7,ana,title_abstract,exclude,,\n")
    res = import_decisions(con, REVIEW, p, now=T0 + dt.timedelta(hours=1))
    assert res["ranker"].startswith(cfg.screening.model.name) and "trained on 4 decisions" in res["ranker"]
    assert screening_status(con, REVIEW)["ranker"] == res["ranker"]
    order = [r for (r,) in con.execute("SELECT record_id FROM v_screening_queue WHERE review_id = ? "
                                       "AND stage = 'title_abstract' ORDER BY rank", [REVIEW]).fetchall()]
    assert set(order[:3]) == {"pubmed:3", "pubmed:4", "pubmed:5"} and len(order) == 7
    assert import_decisions(con, REVIEW, p)["ranker"] is None  # nothing new: nothing retrained
