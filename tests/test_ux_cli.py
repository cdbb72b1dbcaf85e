"""What a review team sees: terminal tables that stay readable at 80 columns, numbers at 3 significant digits,
the report's "what changed" as a list (not raw Markdown), a readable update summary, a warning when extracted
rows belong to studies no analysis uses yet, and a locked warehouse refused in one line before the flow starts."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest
from rich.console import Console
from typer.testing import CliRunner

from flows.cli import app
from flows.cli.review import summary_lines
from flows.cli.layout import print_table
from living_seed import TRIALS, binary_csv, build_two_versions, ingest, new_update, record_for, write_review
from livingmeta.alerting import fmt_p as alert_fmt_p
from livingmeta.report.document import fmt_p, fmt_value
from livingmeta.report.render import render_index, summary_headline, summary_outline, _summary_html
from warehouse import opened

T1 = dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc)
runner = CliRunner()


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("ux")
    return (*build_two_versions(tmp_path), tmp_path)


def test_numbers_have_three_significant_digits_and_p_values_read_as_p_values():
    assert [fmt_value(x) for x in (2.908212, 1.1571, 7.3094, 0.0369149, 0.6765, 33.45, 254.98, 1.0, 0.99951, 1234.5)] == \
        ["2.91", "1.16", "7.31", "0.0369", "0.676", "33.5", "255", "1.00", "1.00", "1,234"]
    assert fmt_value(None) == "–" and fmt_value(float("nan")) == "–" and fmt_value(0.0) == "0"
    assert [fmt_p(p) for p in (0.02319, 0.3278, 4.1e-07, None)] == ["0.023", "0.328", "<0.001", "–"]
    assert [alert_fmt_p(p) for p in (6.15e-07, 0.0472)] == ["<0.001", "0.047"]


def test_wide_tables_turn_into_blocks_instead_of_ellipses():
    cols = ["analysis", "model", "estimate", "95% CI", "95% PI", "p", "I²", "tau²", "note", "more"]
    row = ["responders-rr-re", "RR REML", "3.22", "0.310 to 33.5", "0.0822 to 126", "0.328", "66.4%", "2.08",
           "something long enough", "to overflow eighty columns"]
    narrow = Console(width=80, record=True)
    print_table(narrow, cols, [row], title="t")
    text = narrow.export_text()
    assert "…" not in text and "── responders-rr-re" in text
    for c, v in zip(cols[1:], row[1:]):
        assert any(line.split() == [*c.split(), *v.split()] for line in text.splitlines()), (c, v, text)
    wide = Console(width=200, record=True)
    print_table(wide, cols, [row], title="t")
    assert "┃ analysis" in wide.export_text() and "…" not in wide.export_text()


@pytest.mark.parametrize("columns", ["80", "120"])
def test_estimates_diff_studies_status_readable_at_80_and_120_columns(two_versions, columns):
    review_dir, wh, rid, _ = two_versions
    for args in (["estimates", rid], ["diff", rid], ["studies", "list", rid], ["status", rid]):
        r = runner.invoke(app, [*args, "--warehouse", wh], env={"COLUMNS": columns})
        assert r.exit_code == 0, (args, r.output)
        assert "…" not in r.output, (args, columns, r.output)
        assert max(len(line.rstrip()) for line in r.output.splitlines()) <= int(columns), (args, r.output)
    studies = runner.invoke(app, ["studies", "list", rid, "--warehouse", wh], env={"COLUMNS": columns}).output
    assert all(f"pubmed:{TRIALS[s]['pmid']}" in studies and s in studies for s in ("Jann2020", "Geerts2021"))  # ids whole
    est = runner.invoke(app, ["estimates", rid, "--warehouse", wh, "--version", "1"], env={"COLUMNS": columns}).output
    # the published Zis 2022 pooled OR of Jann 2020 and Geerts 2021: 2.91 (1.16 to 7.31); p = 0.023
    assert "2.91" in est and "1.16 to 7.31" in est and "0.023" in est and "2.908" not in est
    diff = runner.invoke(app, ["diff", rid, "--warehouse", wh], env={"COLUMNS": columns}).output
    assert "version 1" in diff and "version 2" in diff and "studies added: Novak2023" in diff


def test_report_what_changed_is_a_list_not_raw_markdown():
    summary = ("**IVIG: version 3**\n\nWhy: new studies: NCT1\n\n- `responders-or-mh`: estimate moved\n"
               "  - before: OR 1.5 <b>x</b>\n  - now: OR 2.91\n- `other`: studies added\n")
    assert summary_outline(summary) == [(-1, "Why: new studies: NCT1"), (0, "responders-or-mh: estimate moved"),
                                        (1, "before: OR 1.5 <b>x</b>"), (1, "now: OR 2.91"), (0, "other: studies added")]
    html = str(_summary_html(summary))
    assert "**" not in html and "`" not in html and "<b>" not in html and "&lt;b&gt;" in html
    assert html.count("<ul") == html.count("</ul>") == 2 and html.count("<li>") == html.count("</li>") == 4
    assert summary_headline(summary) == "Why: new studies: NCT1"
    index = render_index({"id": "r", "title": "R"}, [{"version": 3, "created_at": "2024-01-01", "as_of": "2024-01-01",
                                                       "summary": summary, "href": "v3/report.html"}])
    assert "Why: new studies: NCT1" in index and "**" not in index and "estimate moved" not in index


def test_update_summary_is_sentences_not_python_dicts():
    lines = summary_lines({
        "studies": {"records": 9, "studies": 8, "new_studies": 2, "merged": [], "conflicts": 0},
        "queue": {"new": 2, "pending": 5, "ranker": "rules"},
        "inputs": {"applied": [{"file": "d.csv", "rows": 4, "added": 3}]},
        "analyses": {"computed": ["a"], "unchanged": ["b"], "no_data": [], "failed": []},
        "version": {"version": 4, "latest_version": 4}, "outputs": {"report": "/o/r/v4/report.html"}})
    text = "\n".join(lines)
    assert "{" not in text and "[" not in text
    assert "9 records in 8 studies (2 new" in text and "5 waiting (ranked by rules)" in text
    assert "recomputed a; unchanged b; no data –" in text and "version 4 published" in text
    assert "d.csv: 3 added of 4" in text and "report: /o/r/v4/report.html" in text
    none = "\n".join(summary_lines({"version": {"version": None, "latest_version": None}}))
    assert "none published yet" in none


def test_extract_import_names_studies_no_analysis_uses_yet(two_versions):
    review_dir, wh, rid, tmp_path = two_versions
    when = T1 + dt.timedelta(days=90)
    uid = new_update(tmp_path / "warehouse.duckdb", rid, when)
    ingest(tmp_path / "warehouse.duckdb", rid, uid, [record_for("Novak2023")], when)
    # a linked study with no full-text include (Bertolasi-like): its rows are stored but enter no analysis
    with opened(wh) as con:
        con.execute("INSERT INTO studies VALUES (?, 'Solo2024', 'Solo2024', ?) ON CONFLICT DO NOTHING", [rid, when])
        con.execute("INSERT INTO study_links VALUES (?, ?, 'Solo2024', 'pmid', 1.0, ?) ON CONFLICT DO NOTHING",
                    [rid, f"pubmed:{TRIALS['Novak2023']['pmid']}", when])
        con.execute("DELETE FROM study_links WHERE review_id = ? AND study_id = 'Novak2023'", [rid])
    f = tmp_path / "solo.csv"
    binary_csv(f, ["Jann2020"])
    f.write_text(f.read_text() + "Solo2024,responders,treatment,IVIG,3,9,,,,,,,,,,AB,2024-01-02,Table 2,\n")
    r = runner.invoke(app, ["extract", "import", str(review_dir), str(f), "--warehouse", wh], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "not included at full text yet" in r.output and "Solo2024" in r.output and "Jann2020" not in \
        r.output.split("note:")[1]
    j = runner.invoke(app, ["extract", "import", str(review_dir), str(f), "--warehouse", wh, "--json"])
    assert json.loads(j.output)["not_included"] == ["Solo2024"]


def test_update_refuses_a_locked_warehouse_in_one_line(tmp_path):
    review_dir = write_review(tmp_path / "review")
    wh = tmp_path / "locked.duckdb"
    with opened(wh):
        pass
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(wh)!r}); "
                               "print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        r = runner.invoke(app, ["update", str(review_dir), "--warehouse", str(wh), "--out", str(tmp_path / "out")])
        assert r.exit_code == 2, r.output
        assert f"PID {holder.pid}" in r.output and "wait for the running update" in r.output
        assert "Traceback" not in r.output and "Flow run" not in r.output  # refused before any flow started
    finally:
        holder.kill()
        holder.wait()
