"""The stopping rule on a live review: `status`, `screen next --sample` and the report's statement.

A real DuckDB warehouse seeded through warehouse.ingest; decisions through the CLI (CliRunner) and
record_decision. Expected p-values from scipy.stats.hypergeom (relative tolerance 1e-9, as in
test_screening_stopping.py).
"""

from __future__ import annotations

import datetime as dt

import pytest
from scipy.stats import hypergeom
from typer.testing import CliRunner

from flows.cli import app
from livingmeta.screening.stopping import RULE, automation_statement, sample_order
from test_screening_queue import REVIEW, T0, decide, ingest, make_config, open_review, pubmed
from warehouse import connect
from warehouse.screening import flag_candidates, screening_status

runner = CliRunner()
N_RECORDS = 51


def seeded(tmp_path):
    """51 records: 1-20 included and 21-25 excluded in ranked screening, 26-51 waiting."""
    folder = tmp_path / "review"
    folder.mkdir()
    (folder / "review.toml").write_text(
        f'id = "{REVIEW}"\ntitle = "IVIG"\n[sources.pubmed]\nquery = "q"\n', encoding="utf-8")
    cfg = make_config()
    con = open_review(tmp_path, cfg)
    ingest(con, [pubmed(k, f"Record {k} about immunoglobulin", f"Abstract {k}.") for k in range(1, N_RECORDS + 1)], T0)
    flag_candidates(con, REVIEW, cfg, T0)
    for k in range(1, 26):
        decide(con, f"pubmed:{k}", "include" if k <= 20 else "exclude", at=T0 + dt.timedelta(minutes=k))
    return con, folder, str(tmp_path / "wh.duckdb")


def test_status_before_the_sample_says_how_many_random_records_it_would_take(tmp_path):
    con, _folder, _wh = seeded(tmp_path)
    st = screening_status(con, REVIEW)["stopping"]
    # 20 found: K_tar = floor(20 / 0.95) - 20 + 1 = 2; 26 waiting; P(no include in n draws) = C(24, n) / C(26, n),
    # 30/650 < 0.05 at n = 20, 42/650 at n = 19 (26 waiting rather than 25 keeps p off 0.05 exactly)
    assert (st["phase"], st["rule"], st["r_ranked"], st["urn"], st["k_tar"]) == ("ranked", RULE, 20, 26, 2)
    n = next(n for n in range(26) if hypergeom.cdf(0, 26, 2, n) < 0.05)
    assert st["more_needed"] == n == 20 and not st["stop"]
    lines = screening_status(con, REVIEW)["guidance"]
    assert any("random sample of the 26 waiting would need about 20 record(s)" in line for line in lines)


def test_screen_next_sample_draws_at_random_and_status_tests_recall(tmp_path):
    con, folder, wh = seeded(tmp_path)
    con.close()
    waiting = [f"pubmed:{k}" for k in range(26, N_RECORDS + 1)]
    res = runner.invoke(app, ["screen", "next", str(folder), "-r", "ana", "-w", wh, "--sample"],
                        input="s\ne\n\ne\n\ni\n\nq\n")
    assert res.exit_code == 0, res.output
    assert "must not skip records" in res.output
    assert "Session over: 3 decision(s)" in res.output
    con = connect(wh)
    rows = con.execute("SELECT record_id, decision, origin FROM screening_decisions WHERE decided_at > ? "
                       "ORDER BY decision_id", [T0 + dt.timedelta(hours=1)]).fetchall()
    # the three records shown were the first three of the review's fixed random order, recorded as the sample
    assert [r[0] for r in rows] == sample_order(waiting, REVIEW)[:3]
    assert [r[1:] for r in rows] == [("exclude", "sample"), ("exclude", "sample"), ("include", "sample")]
    st = screening_status(con, REVIEW)
    stop = st["stopping"]
    # urn 26, 3 drawn, 1 include: K_tar = floor(21 / 0.95) - 20 + 1 = 3
    assert (stop["phase"], stop["urn"], stop["sampled"], stop["found_sampled"], stop["k_tar"]) == ("sampling", 26, 3, 1, 3)
    assert stop["p_value"] == pytest.approx(float(hypergeom.cdf(1, 26, 3, 3)), rel=1e-9)
    more = next(m for m in range(24) if hypergeom.cdf(1, 26, 3, 3 + m) < 0.05)
    assert stop["more_needed"] == more and not stop["stop"]
    assert any(f"screen about {more} more random record(s)" in line for line in st["guidance"])
    # the session ended with the same guidance
    assert f"screen about {more} more random record(s)" in res.output
    statement = automation_statement(stop, st["ranker"])
    assert "Callaghan & Müller-Hansen, Syst Rev 2020;9:273" in statement and "3 of the 26 remaining records" in statement
    con.close()


def test_sample_finished_stops_and_a_late_record_is_named(tmp_path):
    con, _folder, _wh = seeded(tmp_path)
    order = sample_order([f"pubmed:{k}" for k in range(26, N_RECORDS + 1)], REVIEW)
    for i, rid in enumerate(order[:20]):
        con.execute("INSERT INTO screening_decisions (review_id, record_id, reviewer, decided_at, stage, decision, "
                    "origin, recorded_at) VALUES (?, ?, 'ana', ?, 'title_abstract', 'exclude', 'sample', ?)",
                    [REVIEW, rid, T0 + dt.timedelta(hours=2, minutes=i), T0 + dt.timedelta(hours=2, minutes=i)])
    # a record arriving after the sample began is not in its urn
    ingest(con, [pubmed(99, "A late record", "Late.")], T0 + dt.timedelta(days=1))
    flag_candidates(con, REVIEW, make_config(), T0 + dt.timedelta(days=1))
    st = screening_status(con, REVIEW)
    stop = st["stopping"]
    assert (stop["urn"], stop["sampled"], stop["arrived_after_start"]) == (26, 20, 1)
    assert stop["p_value"] == pytest.approx(float(hypergeom.cdf(0, 26, 2, 20)), rel=1e-9) and stop["stop"]
    assert any("met (p = 0.046)" in line for line in st["guidance"])
    assert any("1 record(s) arrived after the random sample began" in line for line in st["guidance"])


def test_report_carries_the_automation_statement_in_html_and_markdown():
    from livingmeta.report import build_report, render_html, render_markdown
    from livingmeta.screening.stopping import recall_test

    stop = {**recall_test(20, 26, 20, 0).as_dict(), "phase": "sampling", "arrived_after_start": 0,
            "ranked_after_start": 0}
    text = automation_statement(stop, "tfidf-svm (C=0.11, balanced 9.8) trained on 45 decisions")
    assert text.startswith("Title/abstract screening was prioritised by a ranking model (tfidf-svm")
    assert "Callaghan & Müller-Hansen, Syst Rev 2020;9:273" in text and "target recall 95% at 95% confidence" in text
    assert "20 of the 26 remaining records were screened at random (0 include(s)): the target was met (p = 0.046)" in text
    doc = {"review": {"id": "r", "title": "R"}, "version": {"version": 1, "created_at": "2024-01-01T00:00:00"},
           "screening_automation": text}
    report = build_report(doc, plots=False)
    assert "<strong>Screening automation.</strong> Title/abstract screening" in render_html(report)
    assert "**Screening automation.** Title/abstract screening" in render_markdown(report)
    # a report without screening says nothing about it
    plain = build_report({k: v for k, v in doc.items() if k != "screening_automation"}, plots=False)
    assert "Screening automation" not in render_html(plain) and "Screening automation" not in render_markdown(plain)
