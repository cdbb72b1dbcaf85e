"""The update-review flow runs for real under Prefect and records one search run per source."""

from __future__ import annotations

import datetime as dt
import shutil

from tests.conftest import REPO_ROOT
from warehouse import opened

EXAMPLE = REPO_ROOT / "reviews" / "ivig-pnp"


def test_update_review_flow_records_a_run_per_source_and_is_safe_to_rerun(prefect_harness, tmp_path):
    from flows.update import update_review

    review = tmp_path / "ivig-pnp"
    shutil.copytree(EXAMPLE, review)
    wh = tmp_path / "wh.duckdb"
    as_of = dt.datetime(2010, 12, 31, tzinfo=dt.timezone.utc)
    first = update_review(str(review), str(wh), str(tmp_path / "out"), as_of=as_of,
                          replay_dir=str(review / "snapshots" / "2010"))
    assert [s["source"] for s in first["searches"]] == ["pubmed", "ctgov"]
    assert all(s["status"] == "succeeded" for s in first["searches"]), first["searches"]
    with opened(wh, read_only=True) as con:
        runs = con.execute("SELECT source, status, mode FROM search_runs ORDER BY source").fetchall()
        assert runs == [("ctgov", "succeeded", "replay"), ("pubmed", "succeeded", "replay")]
        assert con.execute("SELECT status FROM update_runs").fetchall() == [("succeeded",)]
        n_records = con.execute("SELECT count(*) FROM records").fetchone()[0]
    second = update_review(str(review), str(wh), str(tmp_path / "out"), as_of=as_of,
                           replay_dir=str(review / "snapshots" / "2010"))
    assert all(s.get("new", 0) == 0 for s in second["searches"])
    with opened(wh, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM records").fetchone()[0] == n_records
        assert con.execute("SELECT count(*) FROM update_runs WHERE status = 'succeeded'").fetchone()[0] == 2
