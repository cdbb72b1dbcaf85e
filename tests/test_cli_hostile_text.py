"""Text from sources and user files is printed as text: rich markup in a title or study id is shown as
written (never a MarkupError), control codes, ANSI escapes and bidi overrides never reach the terminal raw,
and secrets echoed by a server are never printed — through the real CLI on real warehouses."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from livingmeta.records import Record
from test_screening_queue import REVIEW, T0, ingest, make_config, open_review
from warehouse import connect, opened
from warehouse.screening import flag_candidates

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
SECRET = "k3y9secretvalue42"
# markup rich would interpret, an emoji code, ANSI colour, a bell, a right-to-left override, a lone CR
HOSTILE = f"[/] [bold]bold?[/bold] [link=x]l[/link] :smile: \x1b[31mred\x1b[0m ding\x07 \u202eevil cr\rX"
RAW = ("\x1b", "\x07", "\u202e", "\r")


def assert_safe(out: str, *must_show: str) -> None:
    """Nothing raw reached the output, the markup is shown literally, no secret is printed."""
    for c in RAW:
        assert c not in out, f"{c!r} reached the terminal raw:\n{out!r}"
    assert SECRET not in out
    assert "Traceback" not in out
    for s in must_show:
        assert s in out, f"{s!r} not shown in:\n{out}"


def hostile_review(tmp_path, reviewers: int = 1):
    folder = tmp_path / "review"
    folder.mkdir()
    (folder / "review.toml").write_text(
        f'id = "{REVIEW}"\ntitle = "IVIG"\n[sources.pubmed]\nquery = "q"\n[screening]\nreviewers = {reviewers}\n'
        'include_publication_types = ["Randomized Controlled Trial"]\n', encoding="utf-8")
    con = open_review(tmp_path, make_config(reviewers=reviewers))
    ingest(con, [
        Record(source="pubmed", source_id="1", title="Title " + HOSTILE, abstract="Abstract " + HOSTILE,
               journal="J " + HOSTILE, publication_types=["Randomized Controlled Trial"], year=2021,
               doi="10.1/x[/]"),
        # a record id holding markup and an escape (record ids are the source's ids, not ours)
        Record(source="pubmed", source_id="2[/]\x1b[2J", title="[bold]Second[/] title", year=2020),
    ], T0)
    flag_candidates(con, REVIEW, make_config(reviewers=reviewers), T0)
    return con, folder, str(tmp_path / "wh.duckdb")


def test_screen_next_shows_hostile_titles_and_ids_as_text(tmp_path):
    con, folder, wh = hostile_review(tmp_path)
    con.close()
    res = runner.invoke(app, ["screen", "next", str(folder), "-r", "ana", "-w", wh],
                        input="i\n[/] reason \x1b[31m\ni\n\n")
    assert res.exit_code == 0, res.output
    assert_safe(res.output, "Title [/] [bold]bold?[/bold] [link=x]l[/link] :smile:", "Abstract [/]", "J [/]",
                "pubmed:2[/]", "[bold]Second[/] title", "\\x07", "\\u202e", "Session over: 2 decision(s)")
    assert "red" in res.output and "[31m" not in res.output  # the colour sequence is removed whole
    with opened(wh, read_only=True) as c:
        ids = {r for (r,) in c.execute("SELECT record_id FROM screening_decisions").fetchall()}
    assert ids == {"pubmed:1", "pubmed:2[/]\x1b[2J"}  # the data itself is stored as it came


def test_screen_conflicts_export_and_import_errors(tmp_path):
    con, folder, wh = hostile_review(tmp_path, reviewers=2)
    con.close()
    for who, key in (("ana", "i"), ("bo", "e")):
        r = runner.invoke(app, ["screen", "next", str(folder), "-r", who, "-w", wh], input=f"{key}\n\nq\n")
        assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["screen", "conflicts", str(folder), "-w", wh])
    assert r.exit_code == 0, r.output
    assert_safe(r.output, "Title [/] [bold]bold?[/bold]")
    r = runner.invoke(app, ["screen", "export", str(folder), "-w", wh, "--format", "ris"])
    assert r.exit_code == 0 and "Title [/]" in r.output  # file-like output to a pipe is the data itself
    # a decisions file naming an unknown record whose id is markup: one clean error line, nothing stored
    bad = tmp_path / "decisions.csv"
    bad.write_text("record_id,decision,reviewer,stage\n[bold]x[/]\x1b[31m,include,ana,title_abstract\n", encoding="utf-8")
    r = runner.invoke(app, ["screen", "import", str(folder), str(bad), "-w", wh])
    assert r.exit_code == 2, r.output
    assert_safe(r.output, "[bold]x[/]", "error:")


def test_studies_list_and_link_with_hostile_ids(tmp_path):
    con, folder, wh = hostile_review(tmp_path)
    con.close()
    from tasks.linking import link_studies

    link_studies.fn(REVIEW, wh)
    r = runner.invoke(app, ["studies", "list", str(folder), "-w", wh])
    assert r.exit_code == 0, r.output
    assert_safe(r.output, "pubmed:2[/]", "[bold]Second[/] title")
    r = runner.invoke(app, ["studies", "list", str(folder), "-w", wh], env={"COLUMNS": "40"})  # narrow layout
    assert r.exit_code == 0, r.output
    assert_safe(r.output, "pubmed:2[/]")
    r = runner.invoke(app, ["studies", "link", str(folder), "pubmed:1", "[red]nope[/]\u202e", "-w", wh])
    assert r.exit_code == 2
    assert_safe(r.output, "[red]nope[/]", "error:")


def test_extract_import_hostile_study_id_and_header(tmp_path):
    from living_seed import HEADER, register, write_review

    review = write_review(tmp_path / "review")
    wh = tmp_path / "warehouse.duckdb"
    register(review, wh)
    bad = tmp_path / "x.csv"
    bad.write_text(HEADER + "[/]\x1b[31mStudy\u202e,responders,treatment,IVIG,3,10,,,,,,,,,,AB,2024-01-02,t2,\n",
                   encoding="utf-8")
    r = runner.invoke(app, ["extract", "import", str(review), str(bad), "-w", str(wh)])
    assert r.exit_code == 2, r.output
    assert_safe(r.output, "[/]", "Study", "error:")
    bad.write_text("study,[bold]col[/],\x07\n", encoding="utf-8")
    r = runner.invoke(app, ["extract", "import", str(review), str(bad), "-w", str(wh)])
    assert r.exit_code == 2, r.output
    assert_safe(r.output, "[bold]col[/]")


def test_status_and_json_never_print_a_secret_or_raw_escape(tmp_path):
    from living_seed import ingest as seed_ingest, new_update, register, write_review

    review = write_review(tmp_path / "review")
    wh = tmp_path / "warehouse.duckdb"
    rid = register(review, wh)
    uid = new_update(wh, rid, T0)
    seed_ingest(wh, rid, uid, [], T0, fail=f"HTTP 500 from server [/] \x1b[31m for ?db=pubmed&api_key={SECRET}")
    r = runner.invoke(app, ["status", str(review), "-w", str(wh)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert_safe(r.output, "HTTP 500 from server [/]", "[REDACTED]")
    r = runner.invoke(app, ["status", str(review), "-w", str(wh), "--json"])
    assert r.exit_code == 0, r.output
    assert_safe(r.output)
    assert "HTTP 500" in json.dumps(json.loads(r.output))


def test_update_summary_table_prints_server_errors_as_text(capsys):
    from flows.cli.review import print_summary

    summary = {"review_id": "rv", "as_of": "2024-03-01T00:00:00",
               "searches": [{"source": "pubmed", "status": "failed", "error": f"[/] boom api_key={SECRET} \x1b[2J"}],
               "studies": {}, "queue": {}, "analyses": {}, "version": {}, "outputs": {}}
    print_summary(summary)
    assert_safe(capsys.readouterr().out, "[/] boom", "[REDACTED]")


def test_config_error_with_markup_in_a_key(tmp_path):
    folder = tmp_path / "review"
    folder.mkdir()
    (folder / "review.toml").write_text('id = "rv"\ntitle = "t"\n"[bold]x[/]\\u001b[31m" = 1\n'
                                        '[sources.pubmed]\nquery = "q"\n', encoding="utf-8")
    for cmd in (["status", str(folder)], ["update", str(folder)], ["extract", "template", str(folder), "o"]):
        r = runner.invoke(app, [*cmd, "-w", str(tmp_path / "wh.duckdb")])
        assert r.exit_code == 2, (cmd, r.output)
        assert_safe(r.output, "[bold]x[/]", "unknown key")


def test_meta_hostile_study_names_and_cells(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text("study,treat_events,treat_total,control_events,control_total\n"
                 "\"[/]A\x1b[31m\",3,20,5,20\n[bold]B[/bold]\u202e,4,20,6,21\n:smile:C,2,19,5,20\n", encoding="utf-8")
    r = runner.invoke(app, ["meta", str(f)])
    assert r.exit_code == 0, r.output
    assert_safe(r.output, "[/]A", "[bold]B[/bold]", ":smile:C")
    f.write_text("study,treat_events,treat_total,control_events,control_total\nA,[/]\x07,20,5,20\n", encoding="utf-8")
    r = runner.invoke(app, ["meta", str(f)])
    assert r.exit_code == 2
    assert_safe(r.output, "error:")
    # a file name holding markup, in an error message
    r = runner.invoke(app, ["meta", str(tmp_path / "[bold]nope[/].csv")])
    assert r.exit_code == 2
    assert_safe(r.output, "[bold]nope[/].csv", "file not found")


def test_colour_terminal_gets_our_styles_but_not_the_sources_escapes(tmp_path):
    """In a real process with colours forced on, rich still styles our text; the data's ESC codes are gone."""
    f = tmp_path / "m.csv"
    f.write_text("study,treat_events,treat_total,control_events,control_total\n"
                 "\"\x1b]8;;http://evil\x1b\\\\A\x1b[5m\",3,20,5,20\nB\u202e,4,20,6,21\n", encoding="utf-8")
    env = {**os.environ, "FORCE_COLOR": "1", "TERM": "xterm-256color", "COLUMNS": "120"}
    p = subprocess.run([sys.executable, "-m", "flows.cli", "meta", str(f)], capture_output=True, text=True,
                       env=env, cwd=REPO, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "\x1b[" in p.stdout  # rich's own styling is still there (the table's bold header)
    for bad in ("\x1b]8;;http://evil", "\x1b[5m", "\u202e"):
        assert bad not in p.stdout
    assert "B\\u202e" in p.stdout


@pytest.mark.parametrize("value", ["[/]", "[bold]", "[link=x]", "\x1b[31m", "\x07", "\u202e"])
def test_clean_neutralises_each_hostile_string(value):
    from flows.cli.output import clean, make_console

    c = make_console(width=80)
    with c.capture() as cap:
        c.print(f"a{value}b")
        c.print(clean(f"a{value}b"))
    out = cap.get()
    assert_safe(out)
    assert out.count("a") == 2 and out.count("b") >= 2


def test_estimates_diff_and_report_with_a_hostile_study_id(tmp_path, monkeypatch):
    """A study id (from an author name in a source) holding markup and escapes, through two published versions."""
    import living_seed as seed
    from tasks.analysis import analyze
    from tasks.versions import record_review_version

    hostile = "[/]Novak\x1b[31m\u202e2023"
    monkeypatch.setitem(seed.TRIALS, hostile, seed.TRIALS["Novak2023"])
    wh_path = tmp_path / "warehouse.duckdb"
    review = seed.write_review(tmp_path / "review")
    rid = seed.register(review, wh_path)
    wh = str(wh_path)
    for i, (studies, new) in enumerate(((["Jann2020", "Geerts2021"], ["Jann2020", "Geerts2021"]),
                                        (["Jann2020", "Geerts2021", hostile], [hostile]))):
        when = T0 + dt.timedelta(days=30 * i)
        uid = seed.new_update(wh_path, rid, when)
        seed.ingest(wh_path, rid, uid, [seed.record_for(s) for s in new], when)
        seed.link_and_include(wh_path, rid, new, when)
        f = seed.binary_csv(tmp_path / f"x{i}.csv", studies)
        r = runner.invoke(app, ["extract", "import", str(review), str(f), "-w", wh])
        assert r.exit_code == 0, r.output
        assert_safe(r.output)
        analyze.fn(str(review), rid, wh, uid)
        record_review_version(str(review), rid, wh, uid, when, now=when, environ={})
    for argv in (["estimates", rid], ["diff", rid], ["diff", rid, "--from", "1", "--to", "2"],
                 ["report", rid, "--out", str(tmp_path / "out")], ["status", rid]):
        r = runner.invoke(app, [*argv, "-w", wh], env={"COLUMNS": "160"})
        assert r.exit_code == 0, (argv, r.output)
        assert_safe(r.output)
    r = runner.invoke(app, ["diff", rid, "-w", wh])
    assert "studies added: [/]Novak" in r.output
