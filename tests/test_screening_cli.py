"""`livingmeta screen next|export|import|conflicts` and the status guidance, driven through CliRunner."""

from __future__ import annotations

import csv
import datetime as dt
import io

from typer.testing import CliRunner

from flows.cli import app
from test_screening_queue import REVIEW, T0, decide, ingest, make_config, open_review, pubmed
from warehouse import connect
from warehouse.screening import flag_candidates

runner = CliRunner()


def setup_review(tmp_path, reviewers: int = 1):
    folder = tmp_path / "review"
    folder.mkdir()
    (folder / "review.toml").write_text(
        f'id = "{REVIEW}"\ntitle = "IVIG"\n[sources.pubmed]\nquery = "q"\n[screening]\nreviewers = {reviewers}\n'
        'include_publication_types = ["Randomized Controlled Trial"]\n', encoding="utf-8")
    cfg = make_config(reviewers=reviewers)
    con = open_review(tmp_path, cfg)
    ingest(con, [
        pubmed(1, "IVIG versus placebo for painful neuropathy", "A randomised trial.",
               publication_types=["Randomized Controlled Trial"], year=2021, journal="Pain", doi="10.1/one",
               authors=["Geerts M", "Smith J"], keywords=["IVIG"]),
        pubmed(2, "Immunoglobulin in small fibre neuropathy", "Open-label case series.", year=2019),
        pubmed(3, "Kawasaki disease outcomes", "Not about pain.", year=2015),
    ], T0)
    flag_candidates(con, REVIEW, cfg, T0)
    return con, folder, str(tmp_path / "wh.duckdb")


def current(wh: str) -> dict[str, str]:
    con = connect(wh)
    try:
        return dict(con.execute("SELECT record_id || '/' || stage, decision FROM v_current_decisions").fetchall())
    finally:
        con.close()


def test_terminal_screening_with_scripted_keys_and_undo(tmp_path):
    con, folder, wh = setup_review(tmp_path)
    con.close()
    keys = "\n".join([
        "i", "",                 # include the best-ranked record, no reason
        "e", "case series",      # exclude the next
        "u",                     # undo that exclusion: the same record is shown again
        "m", "unsure",           # maybe instead
        "x",                     # an unknown key is explained, nothing recorded
        "s",                     # skip the last one
    ]) + "\n"
    res = runner.invoke(app, ["screen", "next", str(folder), "--reviewer", "ana", "--warehouse", wh], input=keys)
    assert res.exit_code == 0, res.output
    out = res.output
    assert "IVIG versus placebo for painful neuropathy" in out and "publication type: Randomized Controlled Trial" in out
    assert "Undone: decision on pubmed:2" in out and "Unknown key 'x'" in out
    assert "Session over: 2 decision(s) recorded by ana, 1 undone." in out
    assert current(wh) == {"pubmed:1/title_abstract": "include", "pubmed:2/title_abstract": "maybe"}
    con = connect(wh)
    assert con.execute("SELECT count(*) FROM screening_decisions").fetchone() == (3,)  # append-only
    assert con.execute("SELECT count(*) FROM screening_undos").fetchone() == (1,)
    assert con.execute("SELECT reason FROM screening_decisions WHERE decision = 'maybe'").fetchone() == ("unsure",)
    con.close()
    # the next session starts where this one stopped: only the skipped record waits at title/abstract
    res = runner.invoke(app, ["screen", "next", str(folder), "--reviewer", "ana", "--warehouse", wh], input="q\n")
    assert "1 record(s) wait" in res.output and "Kawasaki disease outcomes" in res.output


def test_full_text_exclusion_asks_again_for_a_reason(tmp_path):
    con, folder, wh = setup_review(tmp_path)
    decide(con, "pubmed:1", "include")
    con.close()
    res = runner.invoke(app, ["screen", "next", str(folder), "-r", "ana", "--stage", "full_text", "-w", wh],
                        input="e\n\nwrong population\n")
    assert res.exit_code == 0, res.output
    assert "a full-text exclusion needs a reason" in res.output
    con = connect(wh)
    assert con.execute("SELECT decision, reason FROM screening_decisions WHERE stage = 'full_text'").fetchall() == [
        ("exclude", "wrong population")]
    con.close()


def test_two_reviewer_review_needs_a_reviewer_name(tmp_path):
    con, folder, wh = setup_review(tmp_path, reviewers=2)
    con.close()
    res = runner.invoke(app, ["screen", "next", str(folder), "-w", wh], input="q\n")
    assert res.exit_code == 2 and "--reviewer" in res.output


def test_export_csv_and_ris_then_import_asreview_result(tmp_path):
    con, folder, wh = setup_review(tmp_path)
    decide(con, "pubmed:3", "exclude")
    con.close()
    res = runner.invoke(app, ["screen", "export", str(folder), "-w", wh])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert list(rows[0]) == ["record_id", "livingmeta_id", "title", "abstract", "authors", "year", "journal", "doi",
                             "keywords", "included", "livingmeta_export"]
    assert [(r["record_id"], r["livingmeta_id"], r["included"], r["livingmeta_export"]) for r in rows] == [
        ("1", "pubmed:1", "", "1"), ("2", "pubmed:2", "", "1"), ("3", "pubmed:3", "0", "1")]
    assert rows[0]["authors"] == "Geerts M; Smith J" and rows[0]["doi"] == "10.1/one"

    ris = tmp_path / "records.ris"
    res = runner.invoke(app, ["screen", "export", str(folder), "--format", "ris", "--out", str(ris), "-w", wh])
    assert res.exit_code == 0, res.output
    text = ris.read_text(encoding="utf-8")
    assert text.startswith("TY  - JOUR\nTI  - IVIG versus placebo for painful neuropathy\nAB  - A randomised trial.\n"
                           "AU  - Geerts M\nAU  - Smith J\nPY  - 2021\nJO  - Pain\nDO  - 10.1/one\nKW  - IVIG\n"
                           "N1  - ASReview_not_seen\nN1  - livingmeta_export: 2\nAN  - 1\n"
                           "UR  - https://pubmed.ncbi.nlm.nih.gov/1/\nID  - pubmed:1\nER  - \n")
    assert text.count("ER  - ") == 3
    assert "N1  - ASReview_irrelevant\nN1  - livingmeta_export: 2\nAN  - 3\n" in text  # the exclusion, as a label

    # what ASReview LAB 1.x gives back after screening the exported file: its labels in `included`, where
    # pubmed:3 still carries the exclusion livingmeta gave it as prior knowledge
    rows[0]["included"], rows[1]["included"] = "1", "0"
    back = tmp_path / "asreview_export.csv"
    with back.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    res = runner.invoke(app, ["screen", "import", str(folder), str(back), "-w", wh])
    assert res.exit_code == 2 and "--reviewer" in res.output
    res = runner.invoke(app, ["screen", "import", str(folder), str(back), "--reviewer", "bob", "-w", wh])
    assert res.exit_code == 0, res.output
    assert "2 decision(s) read, 2 added, 0 already imported" in res.output
    assert "1 label(s) repeat what livingmeta exported (ASReview's prior knowledge): not imported" in res.output
    res = runner.invoke(app, ["screen", "import", str(folder), str(back), "--reviewer", "bob", "-w", wh])
    assert "0 added, 2 already imported" in res.output
    con = connect(wh)
    assert con.execute("SELECT record_id, reviewer, decision FROM screening_decisions ORDER BY decision_id").fetchall() \
        == [("pubmed:3", "ana", "exclude"), ("pubmed:1", "bob", "include"), ("pubmed:2", "bob", "exclude")]
    con.close()


def test_import_of_a_bad_file_exits_2_naming_the_line(tmp_path):
    con, folder, wh = setup_review(tmp_path)
    con.close()
    bad = tmp_path / "bad.csv"
    bad.write_text("record_id,reviewer,stage,decision,reason,decided_at\npubmed:1,ana,title_abstract,include,,\n"
                   "pubmed:2,ana,title_abstract,perhaps,,\n", encoding="utf-8")
    res = runner.invoke(app, ["screen", "import", str(folder), str(bad), "-w", wh])
    assert res.exit_code == 2
    assert "line 3" in res.output and "'perhaps' is not allowed" in res.output
    assert current(wh) == {}


def test_conflicts_and_status_guidance(tmp_path):
    con, folder, wh = setup_review(tmp_path, reviewers=2)
    decide(con, "pubmed:1", "include", reviewer="ana", at=T0 + dt.timedelta(minutes=1))
    decide(con, "pubmed:1", "exclude", reviewer="bob", at=T0 + dt.timedelta(minutes=2))
    decide(con, "pubmed:2", "exclude", reviewer="ana", at=T0 + dt.timedelta(minutes=3))
    decide(con, "pubmed:2", "exclude", reviewer="bob", at=T0 + dt.timedelta(minutes=4))
    con.close()
    res = runner.invoke(app, ["screen", "conflicts", str(folder), "-w", wh])
    assert res.exit_code == 0, res.output
    assert "1 conflict(s)" in res.output and "pubmed:1" in res.output and "ana=include, bob=exclude" in res.output
    assert "Cohen's kappa at title_abstract: 0.000" in res.output
    res = runner.invoke(app, ["status", str(folder), "-w", wh])
    assert res.exit_code == 0, res.output
    assert "1 conflict(s) between reviewers" in res.output and "screening: 1 screened" in res.output


def test_terminal_screening_shows_markup_and_escapes_from_sources_as_text(tmp_path):
    """A PubMed title holding `[/]` once stopped `screen next` for the whole review (MarkupError)."""
    con, folder, wh = setup_review(tmp_path)
    ingest(con, [pubmed(9, "Pain [/] relief with [bold]IVIG[/bold] \x1b[31mred\x1b[0m\u202e", "Abstract [link=x]y[/link]\x07",
                        publication_types=["Randomized Controlled Trial"], year=2022)], T0)
    flag_candidates(con, REVIEW, make_config(), T0)
    con.close()
    res = runner.invoke(app, ["screen", "next", str(folder), "--reviewer", "ana", "--warehouse", wh],
                        input="i\n[/] why\n" * 4)
    assert res.exit_code == 0, res.output
    assert "Pain [/] relief with [bold]IVIG[/bold] red\\u202e" in res.output
    assert "Abstract [link=x]y[/link]\\x07" in res.output
    assert not any(c in res.output for c in ("\x1b", "\x07", "\u202e"))
    assert current(wh)["pubmed:9/title_abstract"] == "include"
    con = connect(wh)
    assert con.execute("SELECT DISTINCT reason FROM screening_decisions").fetchall() == [("[/] why",)]
    con.close()
