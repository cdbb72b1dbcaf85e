"""Impossible decisions are refused whole, on every path (native CSV, ASReview LAB 1.x/2.x, terminal).

Real DuckDB warehouses under tmp_path, records through warehouse.ingest (helpers of test_screening_queue).
A refused import must leave every table exactly as it was: `digests` hashes the rows of every base table.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from typer.testing import CliRunner

from livingmeta.screening.decisions import (MAX_CLOCK_SKEW, DecisionFileError, check_decision,
                                            validate_decision_file)
from test_screening_queue import REVIEW, T0, ctgov, decide, ingest, make_config, open_review, pubmed
from warehouse.reviews import upsert_review
from warehouse.screening import flag_candidates, import_decisions, record_decision

HEADER = "record_id,reviewer,stage,decision,reason,decided_at\n"
NOW = T0 + dt.timedelta(days=2)  # 2024-03-03 09:00 UTC
OTHER = "other-review"


def seeded(tmp_path, **screening):
    cfg = make_config(**screening)
    con = open_review(tmp_path, cfg)
    ingest(con, [pubmed(k, f"IVIG trial {k}") for k in range(1, 11)], T0)
    ingest(con, [ctgov("NCT01234567", "IVIG registry entry")], T0, source="ctgov")
    # a second review in the same warehouse, holding records this one does not
    upsert_review(con, make_config().model_copy(update={"id": OTHER}), str(tmp_path), T0)
    ingest(con, [pubmed(500, "Statins and stroke"), pubmed(501, "Statins and kidneys")], T0, review_id=OTHER)
    flag_candidates(con, REVIEW, cfg, T0)
    return con


def digests(con) -> dict[str, str]:
    """table -> sha256 of its rows (order-free): equal digests mean nothing was written."""
    out = {}
    for (table,) in con.execute("SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
                                "ORDER BY table_name").fetchall():
        rows = sorted(repr(r) for r in con.execute(f'SELECT * FROM "{table}"').fetchall())
        out[table] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return out


def write(tmp_path, name: str, text: str):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def refused(con, path, **kw) -> DecisionFileError:
    """Import that must be refused whole: returns the error after checking nothing changed."""
    before = digests(con)
    with pytest.raises(DecisionFileError) as err:
        import_decisions(con, REVIEW, path, now=NOW, **kw)
    assert digests(con) == before, "a refused import wrote something"
    return err.value


# ------------------------------------------------------------------------------ every problem, one message

def test_a_file_with_every_kind_of_problem_is_refused_whole_listing_each(tmp_path):
    con = seeded(tmp_path)
    decide(con, "pubmed:9", "include", at=T0 + dt.timedelta(hours=1))
    p = write(tmp_path, "bad.csv", HEADER +
              "pubmed:1,ana,title_abstract,include,,2024-03-01\n"          # 2 fine on its own
              "pubmed:1,ana,title_abstract,exclude,,2024-03-02\n"          # 3 contradicts line 2
              "pubmed:2,ana,title_abstract,include,,2030-01-01\n"          # 4 in the future
              "pubmed:3,ana,title_abstract,include,,yesterday\n"           # 5 not a date
              "pubmed:999,ana,title_abstract,include,,\n"                  # 6 no such record
              "pubmed:4,ana,screening,include,,\n"                          # 7 unknown stage
              "pubmed:5,ana,title_abstract,perhaps,,\n"                     # 8 unknown decision
              "pubmed:6,,title_abstract,include,,\n"                        # 9 no reviewer
              "pubmed:500,ana,title_abstract,include,,\n"                   # 10 another review's record
              "pubmed:7,ana,title_abstract,include,,2024-03-01\n"          # 11 fine
              "pubmed:7,ana,title_abstract,include,,2024-03-01\n")         # 12 harmless duplicate
    e = refused(con, p)
    got = {(q.line, q.column, q.record_id) for q in e.problems}
    assert got == {(3, "decision", "pubmed:1"), (4, "decided_at", "pubmed:2"), (5, "decided_at", "pubmed:3"),
                   (6, "record_id", "pubmed:999"), (7, "stage", "pubmed:4"), (8, "decision", "pubmed:5"),
                   (9, "reviewer", "pubmed:6"), (10, "record_id", "pubmed:500")}
    msg = str(e)
    assert msg.splitlines()[0] == f"{p}: Nothing was imported: 8 problem(s); fix them and import the file again"
    assert f"{p}, line 3, column 'decision', record 'pubmed:1': contradicts line 2" in msg
    assert f"{p}, line 4, column 'decided_at', record 'pubmed:2': decided_at 2030-01-01 00:00 UTC is in the future" in msg
    assert "'yesterday' is not an ISO date" in msg
    assert f"line 6, column 'record_id', record 'pubmed:999': unknown record" in msg
    assert "stage 'screening' is not allowed" in msg and "decision 'perhaps' is not allowed" in msg
    assert f"line 10, column 'record_id', record 'pubmed:500': record of another review ({OTHER})" in msg
    assert len(msg.splitlines()) == 9  # the summary and one line per problem; the duplicate is no problem


def test_more_than_twenty_problems_are_counted_not_all_listed(tmp_path):
    con = seeded(tmp_path)
    p = write(tmp_path, "many.csv", HEADER + "".join(f"pubmed:{900 + k},ana,title_abstract,include,,\n"
                                                     for k in range(25)))
    e = refused(con, p)
    lines = str(e).splitlines()
    assert len(e.problems) == 25 and "25 problem(s)" in lines[0]
    assert len(lines) == 1 + 20 + 1 and lines[-1] == "… and 5 more"
    assert lines[1].startswith(f"{p}, line 2, column 'record_id', record 'pubmed:900'")


def test_contradiction_is_refused_even_on_different_dates_and_for_full_text_reasons(tmp_path):
    con = seeded(tmp_path)
    p = write(tmp_path, "mind.csv", HEADER + "pubmed:1,ana,title_abstract,include,,2024-01-01\n"
                                             "pubmed:1,ana,title_abstract,maybe,,2024-02-01\n")
    assert [(q.line, q.column) for q in refused(con, p).problems] == [(3, "decision")]
    p = write(tmp_path, "reasons.csv", HEADER + "pubmed:1,ana,full_text,exclude,wrong population,2024-01-01\n"
                                                "pubmed:1,ana,full_text,exclude,wrong comparator,2024-01-01\n")
    e = refused(con, p)
    assert [(q.line, q.column) for q in e.problems] == [(3, "reason")] and "PRISMA" in str(e)
    # different reviewers, or different stages, are no contradiction
    p = write(tmp_path, "two.csv", HEADER + "pubmed:1,ana,title_abstract,include,,2024-01-01\n"
                                            "pubmed:1,bob,title_abstract,exclude,,2024-01-01\n"
                                            "pubmed:1,ana,full_text,exclude,no outcome,2024-01-02\n")
    assert import_decisions(con, REVIEW, p, now=NOW)["added"] == 3


def test_future_dates_allow_one_day_for_time_zones_only(tmp_path):
    con = seeded(tmp_path)
    tomorrow = (NOW + dt.timedelta(hours=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ok = write(tmp_path, "ok.csv", HEADER + f"pubmed:1,ana,title_abstract,include,,{tomorrow}\n"
                                            "pubmed:2,ana,title_abstract,include,,2024-03-04\n")  # NZ's "today"
    assert import_decisions(con, REVIEW, ok, now=NOW)["added"] == 2
    late = (NOW + MAX_CLOCK_SKEW + dt.timedelta(minutes=1)).isoformat()
    bad = write(tmp_path, "late.csv", HEADER + f"pubmed:3,ana,title_abstract,include,,{late}\n")
    assert [(q.line, q.column) for q in refused(con, bad).problems] == [(2, "decided_at")]


def test_the_same_decision_twice_is_stored_once_keeping_the_earliest(tmp_path):
    con = seeded(tmp_path)
    p = write(tmp_path, "dup.csv", HEADER + "pubmed:1,ana,title_abstract,include,,2024-02-05\n"
                                            "pubmed:1,ana,title_abstract,include,,2024-02-01\n"
                                            "pubmed:1,ana,title_abstract,include,,2024-02-05\n")
    res = import_decisions(con, REVIEW, p, now=NOW)
    assert (res["rows"], res["added"], res["duplicates"]) == (3, 1, 2)
    assert con.execute("SELECT decided_at FROM screening_decisions").fetchall() == [
        (dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc),)]


def test_importing_the_same_file_twice_writes_nothing_the_second_time(tmp_path):
    con = seeded(tmp_path)
    p = write(tmp_path, "d.csv", HEADER + "pubmed:1,ana,title_abstract,include,,2024-02-01\n"
                                          "pubmed:2,ana,title_abstract,exclude,,\n"
                                          "pubmed:2,ana,title_abstract,exclude,,\n")
    first = import_decisions(con, REVIEW, p, now=NOW)
    assert (first["added"], first["duplicates"]) == (2, 1)
    before = digests(con)
    again = import_decisions(con, REVIEW, p, now=NOW + dt.timedelta(days=1))
    assert (again["added"], again["already_imported"], again["duplicates"]) == (0, 2, 1)
    assert digests(con) == before


# --------------------------------------------------------------------------- against what is stored

def test_an_older_decision_never_silently_overrides_a_stored_later_one(tmp_path):
    con = seeded(tmp_path)
    later = T0 + dt.timedelta(days=1)  # 2024-03-02 09:00
    stored = decide(con, "pubmed:1", "include", at=later)
    # older and different: it could never be current (latest by date wins), so it is refused, naming the stored one
    old = write(tmp_path, "old.csv", HEADER + "pubmed:1,ana,title_abstract,exclude,,2024-03-01\n")
    e = refused(con, old)
    assert [(q.line, q.column, q.record_id) for q in e.problems] == [(2, "decided_at", "pubmed:1")]
    assert f"stored 'include' of 2024-03-02 09:00 UTC (decision {stored}), which stays current" in str(e)
    # the same time is no later either (a tie would be settled by import order, not by date)
    tie = write(tmp_path, "tie.csv", HEADER + "pubmed:1,ana,title_abstract,exclude,,2024-03-02T09:00:00Z\n")
    refused(con, tie)
    # older and the same word: nothing to add
    same = write(tmp_path, "same.csv", HEADER + "pubmed:1,ana,title_abstract,include,,2024-03-01\n")
    before = digests(con)
    res = import_decisions(con, REVIEW, same, now=NOW)
    assert (res["added"], res["unchanged"]) == (0, 1) and digests(con) == before
    # newer: a change of mind, added and reported as replacing the stored decision
    newer = write(tmp_path, "newer.csv", HEADER + "pubmed:1,ana,title_abstract,exclude,,2024-03-02T10:00:00Z\n")
    res = import_decisions(con, REVIEW, newer, now=NOW)
    assert (res["added"], res["replaced"]) == (1, 1)
    assert con.execute("SELECT decision FROM v_current_decisions WHERE record_id = 'pubmed:1'").fetchall() == [
        ("exclude",)]
    # another reviewer's older decision is theirs: no conflict with ana's
    bob = write(tmp_path, "bob.csv", HEADER + "pubmed:1,bob,title_abstract,include,,2024-01-01\n")
    assert import_decisions(con, REVIEW, bob, now=NOW)["added"] == 1


def test_a_previously_imported_file_stays_idempotent_after_a_later_change_of_mind(tmp_path):
    con = seeded(tmp_path)
    p = write(tmp_path, "d.csv", HEADER + "pubmed:1,ana,title_abstract,include,,2024-03-01\n")
    import_decisions(con, REVIEW, p, now=NOW)
    decide(con, "pubmed:1", "exclude", at=NOW)  # ana changes her mind in the terminal
    before = digests(con)
    res = import_decisions(con, REVIEW, p, now=NOW + dt.timedelta(hours=1))
    assert (res["added"], res["already_imported"]) == (0, 1) and digests(con) == before


# ------------------------------------------------------------------------------------------ ASReview

def _lab(rows: list[tuple[str, str]], version: int) -> str:
    if version == 1:
        lines = ["record_id,livingmeta_id,title,included,asreview_ranking,exported_notes_1"]
        lines += [f"{k},{rid},Title {k},{label},{k}," for k, (rid, label) in enumerate(rows, 1)]
    else:
        lines = ["record_id,livingmeta_id,title,included,asreview_label,asreview_time,asreview_note"]
        lines += [f"{k},{rid},Title {k},,{label},2024-03-02 10:00:00,"for k, (rid, label) in enumerate(rows, 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("version", [1, 2])
def test_asreview_exports_obey_the_same_rules(tmp_path, version):
    con = seeded(tmp_path)
    label = "included" if version == 1 else "asreview_label"
    p = write(tmp_path, "lab.csv", _lab([("pubmed:1", "1"), ("pubmed:1", "0"), ("pubmed:500", "1"),
                                         ("pubmed:999", "1"), ("pubmed:2", "yes"), ("pubmed:3", "1"),
                                         ("pubmed:3", "1")], version))
    e = refused(con, p, reviewer="bob")
    assert {(q.line, q.column, q.record_id) for q in e.problems} == {
        (3, "decision", "pubmed:1"), (4, "livingmeta_id", "pubmed:500"), (5, "livingmeta_id", "pubmed:999"),
        (6, label, "pubmed:2")}
    assert f"record of another review ({OTHER})" in str(e) and "unknown record" in str(e)
    good = write(tmp_path, "good.csv", _lab([("pubmed:1", "1"), ("pubmed:3", "0"), ("pubmed:3", "0")], version))
    res = import_decisions(con, REVIEW, good, reviewer="bob", now=NOW)
    assert (res["added"], res["duplicates"]) == (2, 1)
    before = digests(con)
    assert import_decisions(con, REVIEW, good, reviewer="bob", now=NOW)["added"] == 0 and digests(con) == before


# --------------------------------------------------------------------------- terminal writes, pure rules

def test_terminal_decisions_obey_the_same_rules(tmp_path):
    con = seeded(tmp_path)
    kw = dict(review_id=REVIEW, stage="title_abstract", reason=None, origin="terminal", now=NOW)
    before = digests(con)
    with pytest.raises(DecisionFileError, match="unknown record") as err:
        record_decision(con, record_id="pubmed:500", reviewer="ana", decision="include", **kw)
    assert str(err.value).startswith("decision on pubmed:500 by ana: not recorded\n")
    with pytest.raises(DecisionFileError, match="in the future"):
        record_decision(con, record_id="pubmed:1", reviewer="ana", decision="include",
                        decided_at=NOW + dt.timedelta(days=3), **kw)
    with pytest.raises(DecisionFileError, match="no reviewer"):
        record_decision(con, record_id="pubmed:1", reviewer="  ", decision="include", **kw)
    with pytest.raises(DecisionFileError, match="'perhaps' is not allowed"):
        record_decision(con, record_id="pubmed:1", reviewer="ana", decision="perhaps", **kw)
    assert digests(con) == before
    record_decision(con, record_id="pubmed:1", reviewer="ana", decision="include", **kw)
    with pytest.raises(DecisionFileError, match="stays current"):
        record_decision(con, record_id="pubmed:1", reviewer="ana", decision="exclude",
                        decided_at=NOW - dt.timedelta(days=1), **kw)


def test_validation_is_a_pure_function_of_the_text():
    known = {"pubmed:1", "pubmed:2"}.__contains__
    f = validate_decision_file(HEADER + "1,ana,,include,,2024-01-01\n2,ana,,exclude,,\n1,ana,,include,,2024-01-01\n",
                               source="x.csv", is_known=known, now=NOW)
    assert (f.format, f.read, [r.record_id for r in f.rows], f.duplicates) == (
        "native", 3, ["pubmed:1", "pubmed:2"], [(4, 2)])
    assert check_decision(record_id="pubmed:1", reviewer="ana", stage="full_text", decision="exclude", reason=None,
                          decided_at=None, now=NOW, is_known=known)[0].column == "reason"


def test_cli_import_of_a_bad_file_lists_every_problem_and_writes_nothing(tmp_path):
    from flows.cli import app
    from test_screening_cli import setup_review
    from warehouse import connect

    con, folder, wh = setup_review(tmp_path)
    before = digests(con)
    con.close()
    bad = write(tmp_path, "bad.csv", HEADER + "pubmed:1,ana,title_abstract,include,,\n"
                                              "pubmed:1,ana,title_abstract,exclude,,\n"
                                              "pubmed:77,ana,title_abstract,include,,2999-01-01\n")
    res = CliRunner().invoke(app, ["screen", "import", str(folder), str(bad), "-w", wh])
    assert res.exit_code == 2
    out = " ".join(res.output.split())
    assert "3 problem(s)" in out and "line 3, column 'decision', record 'pubmed:1'" in out
    assert "line 4, column 'record_id', record 'pubmed:77'" in out and "line 4, column 'decided_at'" in out
    con = connect(wh)
    try:
        assert digests(con) == before
    finally:
        con.close()


def test_a_late_third_reviewer_never_displaces_a_screener_in_hindsight(tmp_path):
    con = seeded(tmp_path, reviewers=2)
    decide(con, "pubmed:1", "include", reviewer="ana", at=T0 + dt.timedelta(hours=1))
    decide(con, "pubmed:1", "include", reviewer="bob", at=T0 + dt.timedelta(hours=2))
    agreed = con.execute("SELECT title_abstract, title_abstract_state FROM v_record_screening "
                         "WHERE record_id = 'pubmed:1'").fetchone()
    assert agreed == ("include", "agreed")
    # cleo's word dated before bob's would make ana and cleo the screeners: a conflict out of an agreement
    early = write(tmp_path, "cleo.csv", HEADER + "pubmed:1,cleo,title_abstract,exclude,,2024-03-01T09:30:00Z\n")
    e = refused(con, early)
    assert [(q.line, q.column, q.record_id) for q in e.problems] == [(2, "decided_at", "pubmed:1")]
    assert "screener in hindsight instead of bob" in str(e)
    with pytest.raises(DecisionFileError, match="in hindsight"):
        decide(con, "pubmed:1", "exclude", reviewer="cleo", at=T0 + dt.timedelta(minutes=30))
    # dated after the screeners, it is a third decision and resolves as such
    late = write(tmp_path, "cleo2.csv", HEADER + "pubmed:1,cleo,title_abstract,exclude,,2024-03-01T12:00:00Z\n")
    assert import_decisions(con, REVIEW, late, now=NOW)["added"] == 1
    assert con.execute("SELECT title_abstract, title_abstract_state FROM v_record_screening "
                       "WHERE record_id = 'pubmed:1'").fetchone() == ("exclude", "resolved")
    # a record with one screener so far takes a second one of any date
    decide(con, "pubmed:2", "include", reviewer="ana", at=T0 + dt.timedelta(hours=5))
    old = write(tmp_path, "bob.csv", HEADER + "pubmed:2,bob,title_abstract,include,,2024-02-01\n")
    assert import_decisions(con, REVIEW, old, now=NOW)["added"] == 1
