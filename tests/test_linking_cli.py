"""`livingmeta studies list|link|unlink|merge` through the real CLI and a real warehouse."""

from __future__ import annotations

import datetime as dt
import json

from typer.testing import CliRunner

from flows.cli import app
from livingmeta.records import Record
from tasks.linking import link_studies
from warehouse import opened
from warehouse.ingest import Fetched, finish_search_run, start_search_run
from warehouse.reviews import upsert_review

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
TITLE = "Intravenous immunoglobulin in painful idiopathic small fibre neuropathy: a randomised trial"
TOML = '''id = "rv"
title = "Linking CLI test"
[sources.ctgov]
condition = "neuropathy"
'''

runner = CliRunner()


def setup(tmp_path, wh):
    from livingmeta.config import load_review

    d = tmp_path / "review"
    d.mkdir()
    (d / "review.toml").write_text(TOML, encoding="utf-8")
    recs = [Record(source="pubmed", source_id="1", title=TITLE, authors=["Geerts M"], year=2021),
            Record(source="pubmed", source_id="2", title=TITLE + " (abstract)", authors=["Geerts M"], year=2021),
            Record(source="pubmed", source_id="3", title="Something else entirely about pain relief", authors=["Lee K"], year=2019),
            Record(source="ctgov", source_id="NCT09000002", title="IVIG in diabetic neuropathy", registry_ids=["NCT09000002"])]
    with opened(wh) as con:
        upsert_review(con, load_review(d), str(d), T0)
        run = start_search_run(con, review_id="rv", source="pubmed", query="q", mode="replay", window_start=None,
                               window_end=T0, now=T0)
        finish_search_run(con, run_id=run, review_id="rv", source="pubmed",
                          fetched=[Fetched(r, json.dumps(r.to_dict())) for r in recs], watermark=T0, now=T0)
    link_studies.fn("rv", str(wh))
    return str(d)


def links(wh):
    with opened(wh) as con:
        return dict(con.execute("SELECT record_id, study_id FROM study_links").fetchall())


def test_list_link_unlink_merge(tmp_path, warehouse_path):
    review = setup(tmp_path, warehouse_path)
    wh = ["--warehouse", str(warehouse_path)]
    res = runner.invoke(app, ["studies", "list", review, *wh, "--json"])
    assert res.exit_code == 0, res.output
    listed = {s["study_id"]: [r["record_id"] for r in s["records"]] for s in json.loads(res.output)["studies"]}
    assert listed["Geerts2021"] == ["pubmed:1", "pubmed:2"]

    res = runner.invoke(app, ["studies", "unlink", "rv", "pubmed:2", *wh, "--by", "ann"])
    assert res.exit_code == 0, res.output
    assert "Geerts2021a" in res.output and links(warehouse_path)["pubmed:2"] == "Geerts2021a"

    res = runner.invoke(app, ["studies", "link", review, "3", "NCT09000002", *wh, "--by", "ann", "--note", "same trial"])
    assert res.exit_code == 0, res.output
    assert links(warehouse_path)["pubmed:3"] == "NCT09000002"

    res = runner.invoke(app, ["studies", "merge", review, "Geerts2021", "Geerts2021a", *wh, "--by", "ann"])
    assert res.exit_code == 0, res.output
    assert links(warehouse_path)["pubmed:2"] == "Geerts2021"
    # people's decisions hold on the next automatic run
    link_studies.fn("rv", str(warehouse_path))
    after = links(warehouse_path)
    assert after["pubmed:2"] == "Geerts2021" and after["pubmed:3"] == "NCT09000002"
    res = runner.invoke(app, ["studies", "list", review, *wh])
    assert res.exit_code == 0 and "Geerts2021" in res.output and "manual" in res.output


def test_user_errors_are_one_message(tmp_path, warehouse_path):
    review = setup(tmp_path, warehouse_path)
    wh = ["--warehouse", str(warehouse_path)]
    before = links(warehouse_path)
    res = runner.invoke(app, ["studies", "link", review, "pubmed:999", "Geerts2021", *wh])
    assert res.exit_code == 2 and "not among the records of review rv" in res.output
    res = runner.invoke(app, ["studies", "link", review, "pubmed:1", "Nobody1999", *wh])
    assert res.exit_code == 2 and "no study 'Nobody1999'" in res.output
    res = runner.invoke(app, ["studies", "unlink", review, "pubmed:3", *wh])
    assert res.exit_code == 2 and "only record of study" in res.output
    res = runner.invoke(app, ["studies", "list", "no-such-review", *wh])
    assert res.exit_code == 2 and "neither a review folder nor a review id" in res.output
    assert links(warehouse_path) == before
    with opened(warehouse_path) as con:
        assert con.execute("SELECT count(*) FROM study_link_decisions").fetchone()[0] == 0
