"""Extraction import: validation messages name file, line and column; a bad file changes nothing;
re-import adds nothing; a changed row supersedes; registry suggestions are accepted with one call."""

from __future__ import annotations

import datetime as dt

import pytest

from living_seed import HEADER, T0, binary_csv, ingest, link_and_include, new_update, record_for, register, write_review
from livingmeta.extraction import ExtractionError, parse_extraction
from warehouse import opened
from warehouse.extraction import accept_suggestions, import_extraction, list_suggestions

OUTCOMES = {"responders": "binary", "relief-share": "proportion", "pain": "continuous", "hr": "generic"}
NOW = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)


@pytest.fixture()
def seeded(tmp_path, warehouse_path):
    review_dir = write_review(tmp_path / "review")
    rid = register(review_dir, warehouse_path)
    uid = new_update(warehouse_path, rid, T0)
    ingest(warehouse_path, rid, uid, [record_for("Jann2020"), record_for("Geerts2021")], T0)
    link_and_include(warehouse_path, rid, ["Jann2020", "Geerts2021"], T0)
    return tmp_path, warehouse_path, rid


def _count(wh):
    with opened(wh) as con:
        return con.execute("SELECT count(*) FROM extraction_rows").fetchone()[0]


def test_validation_lists_every_problem_with_line_and_column():
    text = HEADER + (
        "A,responders,treatment,,12,10,,,,,,,,,,AB,,,\n"        # line 2: events > total
        "A,responders,placebo,,1,10,,,,,,,,,,AB,,,\n"           # line 3: unknown arm
        "A,pain,treatment,,,,5,0,20,,,,,,,AB,,,\n"               # line 4: sd 0
        "A,pain,control,,,,5,x,20,,,,,,,AB,,,\n"                 # line 5: not a number
        "A,nope,control,,,,,,,,,,,,,AB,,,\n"                     # line 6: unknown outcome
        "A,hr,contrast,,,,,,,0.8,,0.9,0.7,ratio,,AB,,,\n"        # line 7: ci_lower >= ci_upper
        "A,relief-share,single,,3,0,,,,,,,,,,,,,\n"              # line 8: total 0, no extractor
        "A,responders,control,,1,10,,,,,,,,,,AB,2024-13-01,,\n"  # line 9: bad date
    )
    with pytest.raises(ExtractionError) as e:
        parse_extraction(text, OUTCOMES, source="x.csv")
    msg = str(e.value)
    for expected in ("x.csv, line 2, column 'events': 12 events out of 10",
                     "x.csv, line 3, column 'arm'", "x.csv, line 4, column 'sd'", "x.csv, line 5, column 'sd': 'x' is not a number",
                     "x.csv, line 6, column 'outcome': unknown outcome 'nope'", "x.csv, line 7, column 'ci_lower'",
                     "x.csv, line 8, column 'total'", "x.csv, line 8, column 'extractor'",
                     "x.csv, line 9, column 'extracted_on'", "nothing was imported"):
        assert expected in msg


def test_header_and_duplicate_rows_are_refused():
    with pytest.raises(ExtractionError, match="line 1 \\(header\\): unknown column\\(s\\) 'event'"):
        parse_extraction("study,outcome,arm,event,extractor\n", OUTCOMES, source="x.csv")
    dup = HEADER + "A,responders,treatment,,1,10,,,,,,,,,,AB,,,\n" * 2
    with pytest.raises(ExtractionError, match="line 3: the same study"):
        parse_extraction(dup, OUTCOMES, source="x.csv")
    ok = parse_extraction(HEADER + "A,hr,contrast,,,,,,,0.8,,0.6,1.1,ratio,,AB,2024-01-02,p4,\n\n", OUTCOMES)
    assert ok[0].scale == "ratio" and ok[0].extracted_on == dt.date(2024, 1, 2)


def test_bad_file_changes_nothing_and_unknown_study_names_line(seeded):
    tmp, wh, rid = seeded
    good = binary_csv(tmp / "good.csv", ["Jann2020"])
    with opened(wh) as con:
        import_extraction(con, rid, good, OUTCOMES, now=NOW)
    before = _count(wh)
    bad = binary_csv(tmp / "bad.csv", ["Geerts2021"], extra="Nobody1999,responders,treatment,,1,2,,,,,,,,,,AB,,,\n")
    with opened(wh) as con, pytest.raises(ExtractionError) as e:
        import_extraction(con, rid, bad, OUTCOMES, now=NOW)
    assert "line 4, column 'study': 'Nobody1999' is not a study" in str(e.value)
    assert _count(wh) == before


def test_reimport_is_idempotent_and_corrections_supersede(seeded):
    tmp, wh, rid = seeded
    f = binary_csv(tmp / "x.csv", ["Jann2020", "Geerts2021"])
    with opened(wh) as con:
        first = import_extraction(con, rid, f, OUTCOMES, now=NOW)
        again = import_extraction(con, rid, f, OUTCOMES, now=NOW)
    assert (first["added"], again["added"], again["corrected"], again["unchanged"]) == (4, 0, 0, 4)
    fixed = f.read_text().replace("Geerts2021,responders,treatment,IVIG,12,30", "Geerts2021,responders,treatment,IVIG,13,30")
    (tmp / "fixed.csv").write_text(fixed)
    with opened(wh) as con:
        corr = import_extraction(con, rid, tmp / "fixed.csv", OUTCOMES, now=NOW)
        cur = con.execute("SELECT events, supersedes IS NOT NULL FROM v_current_extraction WHERE study_id = "
                          "'Geerts2021' AND arm = 'treatment'").fetchall()
        total = con.execute("SELECT count(*) FROM extraction_rows").fetchone()[0]
        # reverting to the first values is a correction too (the current row is compared, not history)
        back = import_extraction(con, rid, f, OUTCOMES, now=NOW)
    assert corr["corrected"] == 1 and corr["unchanged"] == 3
    assert cur == [(13.0, True)] and total == 5
    assert back["corrected"] == 1


def test_accept_registry_suggestions(seeded):
    tmp, wh, rid = seeded
    with opened(wh) as con:
        for arm, ev, tot in (("treatment", 7, 11), ("control", 0, 12)):
            con.execute("INSERT INTO extraction_rows (review_id, study_id, outcome_id, arm, events, total, extractor, "
                        "origin, status, source_ref, created_at) VALUES (?, 'Jann2020', 'NCT:primary', ?, ?, ?, "
                        "'ctgov', 'registry', 'suggested', 'NCT00000001 outcome 1', ?)", [rid, arm, ev, tot, NOW])
        sugg = list_suggestions(con, rid)
        ids = [s["row_id"] for s in sugg]
        with pytest.raises(ExtractionError, match="no extraction row with this id"):
            accept_suggestions(con, rid, ids + [999], outcome="responders", outcomes=OUTCOMES, extractor="AB", now=NOW)
        res = accept_suggestions(con, rid, ids, outcome="responders", outcomes=OUTCOMES, extractor="AB", now=NOW)
        cur = con.execute("SELECT arm, events, origin, derived_from, source_ref FROM v_current_extraction ORDER BY arm"
                          ).fetchall()
        left = list_suggestions(con, rid)
    assert res["accepted"] == 2 and left == []
    assert [c[:3] for c in cur] == [("control", 0.0, "registry"), ("treatment", 7.0, "registry")]
    assert {c[3] for c in cur} == set(ids) and "registry suggestion row" in cur[0][4]
