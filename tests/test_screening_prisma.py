"""PRISMA 2020 counts: now (v_prisma_counts) and per review version (v_prisma_by_version), previous vs new."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from livingmeta.screening.prisma import shape_prisma
from test_screening_queue import REVIEW, T0, ctgov, decide, ingest, make_config, open_review, pubmed
from warehouse.screening import flag_candidates, import_decisions, prisma_by_version

H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)


def add_version(con, version: int, at: dt.datetime) -> None:
    con.execute("INSERT INTO review_versions (review_id, version, created_at) VALUES (?, ?, ?)", [REVIEW, version, at])


def build(tmp_path):
    cfg = make_config()
    con = open_review(tmp_path, cfg)
    ingest(con, [pubmed(1, "Trial one"), pubmed(2, "Cohort two"), pubmed(3, "Trial three")], T0)
    ingest(con, [ctgov("NCT01234567", "Registered trial")], T0, source="ctgov")
    flag_candidates(con, REVIEW, cfg, T0)
    decide(con, "pubmed:1", "include", at=T0 + H)
    decide(con, "pubmed:1", "include", stage="full_text", at=T0 + H)
    decide(con, "pubmed:2", "exclude", at=T0 + H)
    decide(con, "ctgov:NCT01234567", "include", at=T0 + H)
    decide(con, "ctgov:NCT01234567", "exclude", stage="full_text", reason="wrong comparator", at=T0 + H)
    add_version(con, 1, T0 + 2 * H)
    # the update: two new records, one of them a later report of the excluded cohort
    ingest(con, [pubmed(4, "Trial four"), pubmed(5, "Cohort two, follow-up")], T0 + D)
    con.executemany("INSERT INTO study_links VALUES (?, ?, 'Cohort2', 'manual', NULL, ?)",
                    [(REVIEW, "pubmed:2", T0), (REVIEW, "pubmed:5", T0)])
    flag_candidates(con, REVIEW, cfg, T0 + D)
    decide(con, "pubmed:3", "include", at=T0 + D + H)
    decide(con, "pubmed:3", "exclude", stage="full_text", reason="no placebo arm", at=T0 + D + H)
    decide(con, "pubmed:4", "include", at=T0 + D + H)
    decide(con, "pubmed:4", "include", stage="full_text", at=T0 + D + H)
    add_version(con, 2, T0 + D + 2 * H)
    return con


def rows(con, sql: str) -> list[dict]:
    cur = con.execute(sql, [REVIEW])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


KEYS = ("identified_pubmed", "identified_ctgov", "identified_total", "duplicates_removed", "screened",
        "excluded_title_abstract", "full_text_sought", "full_text_assessed", "excluded_full_text", "included_studies",
        "included_reports")


def test_prisma_counts_per_version_and_now(tmp_path):
    con = build(tmp_path)
    v1, v2 = rows(con, "SELECT * FROM v_prisma_by_version WHERE review_id = ? ORDER BY version")
    assert tuple(v1[k] for k in KEYS) == (3, 1, 4, 0, 3, 1, 2, 2, 1, 1, 1)
    assert json.loads(v1["excluded_full_text_reasons"]) == {"wrong comparator": 1}
    assert tuple(v2[k] for k in KEYS) == (5, 1, 6, 1, 5, 1, 4, 4, 2, 2, 2)
    assert json.loads(v2["excluded_full_text_reasons"]) == {"no placebo arm": 1, "wrong comparator": 1}
    assert (v2["previous_version"], v2["previous_included_studies"]) == (1, 1)
    (now,) = rows(con, "SELECT * FROM v_prisma_counts WHERE review_id = ?")
    assert tuple(now[k] for k in KEYS) == tuple(v2[k] for k in KEYS) and now["included"] == 2


def test_a_late_import_never_rewrites_an_older_version(tmp_path):
    con = build(tmp_path)
    csv = tmp_path / "late.csv"
    # decided (by the reviewer's own account) before version 1, but the warehouse learns it after version 2
    csv.write_text("record_id,reviewer,stage,decision,reason,decided_at\n5,ana,title_abstract,exclude,,2024-01-01\n",
                   encoding="utf-8")
    import_decisions(con, REVIEW, csv, now=T0 + 3 * D)
    v1, v2 = rows(con, "SELECT * FROM v_prisma_by_version WHERE review_id = ? ORDER BY version")
    assert (v1["screened"], v2["screened"]) == (3, 5)
    assert rows(con, "SELECT screened FROM v_prisma_counts WHERE review_id = ?")[0]["screened"] == 6


def test_prisma_shaped_as_previous_new_total(tmp_path):
    con = build(tmp_path)
    first, second = prisma_by_version(con, REVIEW)
    c1 = {c["key"]: c for c in first["counts"]}
    assert (first["version"], first["previous_version"]) == (1, None)
    assert (c1["included_studies"]["previous"], c1["included_studies"]["new"], c1["included_studies"]["total"]) == (0, 1, 1)
    c2 = {c["key"]: c for c in second["counts"]}
    assert (c2["identified_total"]["previous"], c2["identified_total"]["new"], c2["identified_total"]["total"]) == (4, 2, 6)
    assert (c2["duplicates_removed"]["new"], c2["included_studies"]["new"]) == (1, 1)
    assert second["excluded_reasons"] == [
        {"reason": "no placebo arm", "previous": 0, "new": 1, "total": 1},
        {"reason": "wrong comparator", "previous": 1, "new": 0, "total": 1},
    ]
    assert c2["full_text_assessed"]["label"] == "Reports assessed for eligibility"


def test_shape_prisma_without_a_previous_version():
    shaped = shape_prisma({"version": 1, "screened": 7, "excluded_full_text_reasons": None})
    screened = next(c for c in shaped["counts"] if c["key"] == "screened")
    assert (screened["previous"], screened["new"], screened["total"]) == (0, 7, 7)
    assert shaped["excluded_reasons"] == []


def test_frozen_counts_survive_a_later_merge_of_studies(tmp_path):
    from warehouse.screening import freeze_prisma

    con = build(tmp_path)
    assert freeze_prisma(con, REVIEW, 1, T0 + 3 * D)["frozen"] is True
    v2 = freeze_prisma(con, REVIEW, 2, T0 + 3 * D)
    assert (v2["frozen"], v2["included_studies"], v2["screened"]) == (True, 2, 5)
    assert freeze_prisma(con, REVIEW, 2, T0 + 4 * D)["frozen"] is False  # re-running keeps the first row
    # after version 2 a person finds that the two included reports are one trial and merges them
    con.executemany("INSERT INTO study_links VALUES (?, ?, 'Trial1', 'manual', NULL, ?)",
                    [(REVIEW, "pubmed:1", T0 + 4 * D), (REVIEW, "pubmed:4", T0 + 4 * D)])
    (now,) = rows(con, "SELECT * FROM v_prisma_counts WHERE review_id = ?")
    assert (now["included_studies"], now["included_reports"]) == (1, 2)
    recomputed = rows(con, "SELECT included_studies FROM v_prisma_as_of WHERE review_id = ? AND version = 2")
    assert recomputed == [{"included_studies": 1}]  # what an unfrozen version would now (wrongly) say
    v1, v2 = rows(con, "SELECT * FROM v_prisma_by_version WHERE review_id = ? ORDER BY version")
    assert tuple(v2[k] for k in KEYS) == (5, 1, 6, 1, 5, 1, 4, 4, 2, 2, 2)
    assert tuple(v1[k] for k in KEYS) == (3, 1, 4, 0, 3, 1, 2, 2, 1, 1, 1)
    assert v2["counts_frozen_at"] is not None and (v2["previous_version"], v2["previous_included_studies"]) == (1, 1)
    assert json.loads(v2["excluded_full_text_reasons"]) == {"no placebo arm": 1, "wrong comparator": 1}
    second = prisma_by_version(con, REVIEW)[1]
    assert {c["key"]: c["new"] for c in second["counts"]}["included_studies"] == 1


def test_freezing_a_version_that_does_not_exist_is_refused(tmp_path):
    from warehouse.screening import freeze_prisma

    con = build(tmp_path)
    with pytest.raises(ValueError, match="no version 7"):
        freeze_prisma(con, REVIEW, 7, T0 + 3 * D)
    assert con.execute("SELECT count(*) FROM prisma_versions").fetchone() == (0,)
