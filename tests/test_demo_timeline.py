"""`livingmeta demo` end to end: the bundled review replayed through the real flow gives the published numbers."""

from __future__ import annotations

import json

import pytest
from warehouse import opened


@pytest.fixture(scope="module")
def demo_out(demo_run):
    return demo_run


def _estimates(con, version):
    rows = con.execute(
        "SELECT analysis_id, k, estimate, ci_lower, ci_upper, p_value FROM v_estimate_history "
        "WHERE review_id = 'ivig-pnp' AND version = ? ORDER BY analysis_id", [version]).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_each_step_ingests_and_the_last_adds_no_version(demo_out):
    _, steps = demo_out
    assert [s["step"] for s in steps] == ["2010", "2020", "2021", "2023"]
    for s in steps:
        assert all(x["status"] == "succeeded" for x in s["searches"]), s["searches"]
        assert sum(x.get("new", 0) + x.get("changed", 0) for x in s["searches"]) > 0, s["step"]
    assert [s["version"]["version"] for s in steps] == [1, 2, 3, None]
    # 2023: nothing changes the analyses, so they are skipped, not recomputed
    assert steps[-1]["analyses"]["computed"] == []
    assert sorted(steps[-1]["analyses"]["unchanged"]) == ["relief-share-pft", "responders-or-mh", "responders-rr-re"]


def test_jann_and_geerts_give_the_seed_odds_ratio(demo_out):
    # Jann 2020 (7/11 vs 0/12) + Geerts 2021 (12/30 vs 9/30): Mantel-Haenszel OR 2.91 (95% CI 1.16-7.31), p = 0.023
    # (shared/reviews/ivig-pnp/README.md); tolerance: the published figures' rounding (0.005 on the OR scale)
    out, _ = demo_out
    with opened(out / "warehouse.duckdb", read_only=True) as con:
        v3 = _estimates(con, 3)
        k, est, lo, hi, p = v3["responders-or-mh"]
        assert k == 2
        assert est == pytest.approx(2.91, abs=0.005)
        assert lo == pytest.approx(1.16, abs=0.005)
        assert hi == pytest.approx(7.31, abs=0.005)
        assert p == pytest.approx(0.023, abs=0.0005)
        # with Jann alone (version 2) the MH odds ratio is not estimable (no placebo responders): no number invented
        v2 = _estimates(con, 2)
        assert v2["responders-or-mh"][0] == 1 and v2["responders-or-mh"][1] is None
        # the current view shows the latest version
        cur = con.execute("SELECT max(version) FROM v_current_estimates WHERE review_id = 'ivig-pnp'").fetchone()[0]
        assert cur == 3


def test_registry_status_change_alerts_and_outputs_exist(demo_out):
    out, steps = demo_out
    with opened(out / "warehouse.duckdb", read_only=True) as con:
        ev = con.execute("SELECT record_id, old_value, new_value FROM registry_events WHERE kind = 'status_change'").fetchall()
        assert ("ctgov:NCT02915263", "RECRUITING", "TERMINATED") in ev
        kinds = {k for (k,) in con.execute("SELECT kind FROM v_alerts WHERE review_id = 'ivig-pnp'").fetchall()}
        assert {"estimate_change", "registry_event"} <= kinds
        failed = con.execute("SELECT count(*) FROM v_alerts WHERE failed > 0").fetchone()[0]
        assert failed == 0
    alerts_log = (out / "ivig-pnp" / "alerts.log").read_text()
    assert "TERMINATED" in alerts_log and "version 3" in alerts_log
    report = out / "ivig-pnp" / "v3" / "report.html"
    assert report.exists() and steps[-1]["outputs"]["report"] == str(report)
    html = report.read_text()
    assert "2.91" in html and "<svg" in html
    assert (out / "snapshot" / "warehouse.duckdb").exists()
    with opened(out / "snapshot" / "warehouse.duckdb", read_only=True) as snap:
        assert snap.execute("SELECT max(version) FROM review_versions").fetchone()[0] == 3


def test_cumulative_order_follows_publication_not_registration(demo_out):
    # Geerts 2021's trial was registered (NCT02637700) in 2015 but published in 2021, after Jann 2020:
    # the cumulative analysis (and so the TSA) must add it second
    out, _ = demo_out
    with opened(out / "warehouse.duckdb", read_only=True) as con:
        (result,) = con.execute(
            "SELECT r.result FROM v_estimate_history h JOIN analysis_runs r USING (analysis_run_id) "
            "WHERE h.review_id = 'ivig-pnp' AND h.version = 3 AND h.analysis_id = 'responders-or-mh'").fetchone()
    steps = json.loads(result)["cumulative"]
    assert [(s["added"], s["year"]) for s in steps] == [("Jann2020", 2020), ("NCT02637700", 2021)]


def test_change_log_artifact_has_one_entry_per_version(demo_out):
    # the review's markdown artifact is its change log: one entry per published version, newest latest
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["ivig-pnp-changes"])))

    arts = asyncio.run(read())
    assert len(arts) == 3
    assert all(a.type == "markdown" for a in arts)
    bodies = sorted(a.data for a in arts)
    assert any("version 3" in b and "2.91" in b for b in bodies)


def test_each_versions_report_lists_the_studies_included_when_it_was_published(demo_out):
    # the 2023 step includes Gibbons 2023 (no responder data, so no new version): re-publishing version 3's
    # report afterwards must not add it, and each report's study list must agree with its PRISMA count
    out, _ = demo_out
    for v in (1, 2, 3):
        doc = json.loads((out / "ivig-pnp" / f"v{v}" / "report.json").read_text())["document"]
        ids = [s["study_id"] for s in doc["studies"]]
        assert len(ids) == doc["prisma"]["current"]["studies_included"], (v, ids)
        assert not any(i.startswith("Gibbons") for i in ids), (v, ids)
    assert ids == ["Jann2020", "Liu2018", "NCT02637700", "NCT02915263", "NCT03401073", "PMID19168191"]
