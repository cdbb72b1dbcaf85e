"""The living report: escaping, section order, figures, number agreement across HTML/Markdown/JSON, CLI, task."""

from __future__ import annotations

import copy
import json
import math
import re

import pytest

from livingmeta.report import ReportInputError, build_report, render_html, render_json, render_markdown
from test_report_seed import REVIEW_TITLE, SCRIPT_TITLE, seed_review
from warehouse import connect, opened
from warehouse.publish import report_document

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    path = tmp_path_factory.mktemp("wh") / "warehouse.duckdb"
    info = seed_review(path)
    with opened(path, read_only=True) as con:
        doc = report_document(con, "rev")
    report = build_report(doc)
    return {"path": path, "info": info, "doc": doc, "report": report, "html": render_html(report),
            "md": render_markdown(report), "json": json.loads(render_json(report))}


def test_source_text_is_escaped_everywhere(seeded):
    html, md = seeded["html"], seeded["md"]
    assert re.search(r"<script", html, re.I) is None
    assert "Immunoglobulin &lt;script&gt;alert(1)&lt;/script&gt; review" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; IVIG &amp; pain: a &lt;b&gt;trial&lt;/b&gt;" in html
    assert "<b>trial</b>" not in html and "<em>pooled</em>" not in html  # version summary is source text too
    assert "not randomised &lt;i&gt;" in html
    assert re.search(r"<script", md, re.I) is None and "&lt;script&gt;" in md
    assert seeded["json"]["review"]["title"] == REVIEW_TITLE  # JSON keeps the text as it is (it is data)


def test_sections_come_in_the_documented_order(seeded):
    html = seeded["html"]
    ids = ["changes", "findings", "analyses", "prisma", "searches", "studies"]
    positions = [html.index(f'<section id="{i}">') for i in ids]
    assert positions == sorted(positions)
    md = seeded["md"]
    heads = ["## What changed since version 1", "## Summary of findings", "## Plots", "## PRISMA 2020 flow",
             "## Search log", "## Included studies (12)"]
    assert [md.index(h) for h in heads] == sorted(md.index(h) for h in heads)


def test_every_figure_is_inline_svg_and_png(seeded):
    report, html = seeded["report"], seeded["html"]
    kinds = [p.kind for p in report.plots]
    assert kinds == ["forest", "cumulative", "versions", "tsa", "funnel", "prisma"]
    assert html.count("<svg") == len(kinds)
    for p in report.plots:
        assert p.png.startswith(PNG_MAGIC) and len(p.png) > 5000
        assert f'data-kind="{p.kind}"' in html and f"({p.filename})" in seeded["md"]
    # nothing is fetched: no external stylesheet, image, font or script
    assert not re.search(r'(src|href)="(?!https://(pubmed|doi\.org|clinicaltrials))[a-z]+://', html)
    ids = re.findall(r' id="(fig\d+-[^"]+)"', html)
    assert len(ids) == len(set(ids))  # figures' internal ids never collide


def _doc_with_k(doc: dict, k: int) -> dict:
    d = copy.deepcopy(doc)
    a = d["analyses"][0]
    a["result"]["meta"]["studies"] = a["result"]["meta"]["studies"][:k]
    a["result"]["tsa"] = None
    a["history"] = []
    a["result"]["cumulative"] = []
    d["analyses"] = [a]
    d["prisma"] = None
    return d


def test_funnel_plot_only_from_ten_studies(seeded):
    assert [p.kind for p in build_report(_doc_with_k(seeded["doc"], 9)).plots] == ["forest"]
    assert [p.kind for p in build_report(_doc_with_k(seeded["doc"], 10)).plots] == ["forest", "funnel"]


def _cells(html: str, analysis_id: str) -> dict:
    row = re.search(rf'<tr data-analysis="{analysis_id}">(.*?)</tr>', html.split('id="sof-table"')[1], re.S).group(1)
    return {c: re.search(rf'<td class="num {c}">([^<]*)</td>', row).group(1) for c in ("est", "ci", "pi", "k", "n", "p")}


def test_numbers_agree_across_formats_and_with_the_data(seeded):
    meta = seeded["info"]["results"][2]["meta"]
    html = _cells(seeded["html"], "resp-or")
    assert html["est"] == f"{math.exp(meta['estimate']):.2f}"
    assert html["ci"] == f"{math.exp(meta['ci_lower']):.2f} to {math.exp(meta['ci_upper']):.2f}"
    assert html["k"] == "12" and html["n"] == f"{meta['participants']:,}"
    sof = seeded["md"].split("## Summary of findings")[1].split("## Plots")[0]
    md_row = next(line for line in sof.splitlines() if line.startswith("| Responders: odds ratio |"))
    cells = [c.strip() for c in md_row.strip("|").split("|")]
    assert cells[2:8] == [html["est"], html["ci"], html["pi"], html["k"], html["n"], html["p"]]
    js = next(s for s in seeded["json"]["summary"] if s["analysis_id"] == "resp-or")
    assert js["fmt"]["estimate"] == html["est"] and js["fmt"]["ci"] == html["ci"] and js["fmt"]["p_value"] == html["p"]
    assert abs(js["estimate"] - math.exp(meta["estimate"])) < 1e-12
    # the analysis without a run in this version is listed, not silently dropped
    assert "pain-md" in [s["analysis_id"] for s in seeded["json"]["summary"]]
    assert 'data-analysis="pain-md"' in seeded["html"]


def test_what_changed_compares_with_the_previous_version(seeded):
    v1 = seeded["info"]["results"][1]["meta"]
    change = next(c for c in seeded["report"].changes if c["analysis_id"] == "resp-or")
    assert change["fmt_old"].startswith(f"{math.exp(v1['estimate']):.2f} (") and change["fmt_old"].endswith("k = 9")
    assert change["studies_added"] == ["Author2009", "Author2010", "Author2011"]
    assert "ci narrowed" in seeded["html"].split('id="changes-table"')[1].split("</table>")[0]


def test_included_studies_link_their_identifiers(seeded):
    html = seeded["html"]
    assert 'href="https://pubmed.ncbi.nlm.nih.gov/33766990/"' in html
    assert 'href="https://doi.org/10.1000/x0"' in html
    assert 'href="https://clinicaltrials.gov/study/NCT02637700"' in html
    assert 'data-study="Excluded1999"' not in html  # excluded at full text


def test_a_document_without_a_review_is_refused_with_the_field_named():
    with pytest.raises(ReportInputError, match=r"document\.review is missing"):
        build_report({"version": {"version": 1}})
    with pytest.raises(ReportInputError, match=r"version\.version"):
        build_report({"review": {"id": "x", "title": "t"}, "version": {}})


def test_report_command_writes_every_format(seeded, tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    runner = CliRunner()
    out = tmp_path / "out"
    res = runner.invoke(app, ["report", "rev", "--warehouse", str(seeded["path"]), "--out", str(out), "--version", "1"])
    assert res.exit_code == 0, res.output
    v1 = out / "rev" / "v1"
    assert {p.name for p in v1.iterdir()} >= {"report.html", "report.md", "report.json", "resp-or-forest.png"}
    assert json.loads((v1 / "report.json").read_text())["version"]["version"] == 1
    assert 'href="v1/report.html"' in (out / "rev" / "index.html").read_text()
    res = runner.invoke(app, ["report", "rev", "--warehouse", str(seeded["path"]), "--out", str(out), "--version", "7"])
    assert res.exit_code == 2 and "has no version 7; versions: 1, 2" in " ".join(res.output.split())


def test_publish_task_writes_report_index_and_snapshot(tmp_path):
    from tasks.publish import publish

    wh, out = tmp_path / "warehouse.duckdb", tmp_path / "out"
    seed_review(wh)
    first = publish.fn("unused", "rev", str(wh), str(out))
    assert first["report"] == str(out / "rev" / "v2" / "report.html") and first["version"] == 2
    index = (out / "rev" / "index.html").read_text()
    assert 'href="v2/report.html"' in index and "version 1" in index and "--version 1" in index
    html = (out / "rev" / "v2" / "report.html").read_bytes()
    again = publish.fn("unused", "rev", str(wh), str(out))  # re-running is safe and yields the same report
    assert again["report"] == first["report"] and (out / "rev" / "v2" / "report.html").read_bytes() == html
    with opened(again["snapshot"], read_only=True) as snap:
        assert snap.execute("SELECT max(version) FROM review_versions").fetchone() == (2,)


def test_publish_task_without_a_version_still_publishes_the_snapshot(tmp_path):
    from tasks.publish import publish

    wh, out = tmp_path / "warehouse.duckdb", tmp_path / "out"
    con = connect(wh)
    con.execute("INSERT INTO reviews VALUES ('new', 'A new review', NULL, '{}', 'h', now(), now())")
    con.close()
    res = publish.fn("unused", "new", str(wh), str(out))
    assert res["report"] is None and (out / "snapshot" / "warehouse.duckdb").exists()
    assert "No version published yet" in (out / "new" / "index.html").read_text()
