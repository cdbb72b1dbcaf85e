"""The update-review flow ends in an honest Prefect state, read back from the server:

- a cycle that published version N is COMPLETED and names it;
- a cycle that changed nothing is COMPLETED and says no new version was needed;
- a cycle whose ClinicalTrials.gov search failed (a real server on 127.0.0.1 refusing the request) is
  FAILED, names the source and the reason, after committing PubMed's records and delivering the alert; its
  search task run is FAILED too; the next cycle retries the same window and never re-sends the alert;
- `livingmeta update` with no network exits 1 with one line, no traceback.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests import prefect_reads as pr
from warehouse import opened

REVIEW = "ivig-states"  # its own review id: artifacts and events on the shared test server are per review
AS_OF = dt.datetime(2010, 12, 31, tzinfo=dt.timezone.utc)
SECRET = pr.SECRET


@pytest.fixture()
def refusing_ctgov(monkeypatch):
    with pr.refusing_ctgov(monkeypatch) as srv:
        yield srv


def test_published_and_unchanged_cycles_are_completed_with_messages(prefect_harness, tmp_path):
    from flows.update import update_review
    from tasks.observe import state_result

    review = pr.copy_review(tmp_path, REVIEW)
    wh, out = str(tmp_path / "wh.duckdb"), str(tmp_path / "out")
    snap = str(review / "snapshots" / "2010")
    first = update_review(str(review), wh, out, as_of=AS_OF, replay_dir=snap,
                          recorded_inputs=pr.step_inputs(review, "2010"), return_state=True)
    run = pr.flow_run_of(first)
    assert run.state.type.value == "COMPLETED"
    assert run.state.message == f"published version 1 of {REVIEW}"
    assert state_result(first)["version"]["version"] == 1

    again = update_review(str(review), wh, out, as_of=AS_OF, replay_dir=snap,
                          recorded_inputs=pr.step_inputs(review, "2010"), return_state=True)
    run = pr.flow_run_of(again)
    assert run.state.type.value == "COMPLETED"
    assert run.state.message == f"no new version: estimates unchanged (latest is version 1 of {REVIEW})"
    tasks = pr.task_runs(run.id)
    assert {r.state.type.value for name in ("search-pubmed", "search-ctgov") for r in tasks[name]} == {"COMPLETED"}


def test_a_failed_source_fails_the_run_after_committing_the_rest_and_the_next_run_retries(
        prefect_harness, tmp_path, refusing_ctgov):
    from flows.update import update_review
    from tasks.observe import state_result

    review = pr.live_ctgov_review(tmp_path, REVIEW)
    wh, out = tmp_path / "wh.duckdb", tmp_path / "out"
    state = update_review(str(review), str(wh), str(out), as_of=AS_OF, return_state=True)

    run = pr.flow_run_of(state)
    assert run.state.type.value == "FAILED"
    msg = run.state.message
    assert msg.startswith(f"update of {REVIEW} failed: ctgov search failed: ClinicalTrials.gov refused the search "
                          "(HTTP 400)"), msg
    assert "the next run retries the same window" in msg
    assert SECRET not in msg and "[REDACTED]" in msg
    tasks = pr.task_runs(run.id)
    (ct,), (pm,) = tasks["search-ctgov"], tasks["search-pubmed"]
    assert ct.state.type.value == "FAILED" and ct.state.message.startswith("ctgov search failed: ")
    assert SECRET not in ct.state.message
    assert pm.state.type.value == "COMPLETED"
    # the cycle went on: PubMed's records, linking, queue, analyses were committed; the summary says so
    summary = state_result(state)
    assert [s["status"] for s in summary["searches"]] == ["succeeded", "failed"]
    assert summary["queue"]["new"] > 0
    with opened(wh, read_only=True) as con:
        n_pubmed = con.execute("SELECT count(*) FROM records WHERE source = 'pubmed'").fetchone()[0]
        runs = dict(con.execute("SELECT source, status FROM search_runs").fetchall())
        upd = con.execute("SELECT status, error FROM update_runs").fetchall()
        alerts = con.execute("SELECT a.alert_id, a.body, d.channel, d.status FROM alerts a JOIN alert_deliveries d "
                             "USING (alert_id) WHERE a.kind = 'search_failed'").fetchall()
        watermark = con.execute("SELECT count(*) FROM source_watermarks WHERE source = 'ctgov'").fetchone()[0]
        n_studies = con.execute("SELECT count(*) FROM studies").fetchone()[0]
    assert n_pubmed > 0 and n_studies > 0
    assert runs == {"pubmed": "succeeded", "ctgov": "failed"}
    assert upd[0][0] == "failed" and "ctgov search failed" in upd[0][1]
    assert watermark == 0  # ClinicalTrials.gov's window did not move
    assert [(c, s) for _, _, c, s in alerts] == [("file:alerts.log", "delivered")]
    log = (out / REVIEW / "alerts.log").read_text()
    assert log.count("## [critical] ctgov search failed") == 1
    assert SECRET not in log and "[REDACTED]" in log  # what leaves the process is redacted

    # the server recovers: the next cycle searches the same window again and completes; no alert is re-sent
    refusing_ctgov.healed = True
    later = update_review(str(review), str(wh), str(out), as_of=AS_OF + dt.timedelta(days=1), return_state=True)
    assert pr.flow_run_of(later).state.type.value == "COMPLETED"
    ct2 = state_result(later)["searches"][1]
    assert ct2["status"] == "succeeded" and ct2["window_start"] == "2000-01-01"
    assert "2000-01-01" in refusing_ctgov.requests[-1].replace("%2C", ",")
    assert (out / REVIEW / "alerts.log").read_text().count("## [critical] ctgov search failed") == 1


def test_cli_update_without_network_exits_1_with_one_line(prefect_harness, tmp_path, monkeypatch):
    import socket

    from typer.testing import CliRunner

    from flows.cli import app

    with socket.socket() as s:  # a port nothing listens on: connections are refused, as with no network
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    # a deployment names its contact email (NCBI asks for one; without it EntrezClient warns, an error here)
    for k, v in {"LIVINGMETA_EUTILS_URL": dead + "/", "LIVINGMETA_NCBI_MAX_TRIES": "1",
                 "LIVINGMETA_NCBI_EMAIL": "tests@example.org",
                 "LIVINGMETA_CTGOV_URL": dead, "LIVINGMETA_CTGOV_MAX_TRIES": "1",
                 "LIVINGMETA_CTGOV_MIN_INTERVAL": "0"}.items():
        monkeypatch.setenv(k, v)
    review = pr.copy_review(tmp_path, REVIEW)
    wh = tmp_path / "wh.duckdb"
    result = CliRunner().invoke(app, ["update", str(review), "-w", str(wh), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    err = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(err) == 1, result.stderr
    assert err[0].startswith(f"error: update of {REVIEW} failed: pubmed search failed: ")
    assert "ctgov search failed: " in err[0] and "the next run retries the same window" in err[0]
    assert "[Errno 111]" in err[0]  # printed as text: brackets in a server's or the OS's words survive
    assert "Traceback" not in result.output
    print(result.stderr)
    with opened(wh, read_only=True) as con:
        assert con.execute("SELECT status FROM update_runs").fetchall() == [("failed",)]


def test_cycle_messages_for_people():
    from tasks.observe import cycle_message

    base = {"review_id": "r1", "searches": [{"source": "pubmed", "status": "succeeded"}], "analyses": {}}
    assert cycle_message({**base, "version": {"version": 4, "from_version": 3}}) == (False, "published version 4 of r1")
    assert cycle_message({**base, "version": {"version": None, "latest_version": 3}}) == (
        False, "no new version: estimates unchanged (latest is version 3 of r1)")
    assert cycle_message({**base, "version": {"version": None, "latest_version": None}}) == (
        False, "no new version: no analysis of r1 has data yet")
    # an analysis that cannot run fails the cycle too, but no search window is retried for it
    failed, msg = cycle_message({**base, "version": {"version": None, "latest_version": 2},
                                 "analyses": {"failed": [{"analysis": "or-mh", "error": "row 3: events > total."}]}})
    assert failed and msg == ("update of r1 failed: analysis or-mh failed: row 3: events > total; the rest of the cycle "
                              "was committed (no new version: estimates unchanged (latest is version 2 of r1))")
    # an alert that could not be delivered does not fail the cycle (it is tried again), but the message says so
    assert cycle_message({**base, "version": {"version": 4, "delivery_failures": [
        {"alert_id": 9, "kind": "estimate_change", "channel": "webhook:HOOK", "error": "HTTPStatusError: 500."}]}}) == (
        False, "published version 4 of r1; 1 alert delivery(ies) failed (webhook:HOOK: HTTPStatusError: 500), tried "
               "again next cycle")
    failed, msg = cycle_message({**base, "searches": [{"source": "ctgov", "status": "failed", "error": "HTTP 503."}],
                                 "version": {"version": 5}})
    assert failed and msg == ("update of r1 failed: ctgov search failed: HTTP 503; the next run retries the same window; "
                              "the rest of the cycle was committed (published version 5 of r1)")
