"""The schedule really fires: a real `prefect server start`, its scheduler, and the two ways of running reviews.

One server per module (tests/prefect_server.py). The sources are real HTTP servers on 127.0.0.1 (PubMed:
tests/ncbi_server.py; ClinicalTrials.gov: the fake of tests/test_ctgov_source.py), reached through
LIVINGMETA_EUTILS_URL / LIVINGMETA_CTGOV_URL, so every run is offline.

- `livingmeta serve REVIEW` (a subprocess, PREFECT_API_URL at the server) registers `update-review/ivig-pnp-serve`
  with review.toml's `interval` + `anchor_date` a few seconds ahead; the SERVER's scheduler must create that
  run (auto-scheduled, at the anchor) and serve must execute it to COMPLETED, filling the warehouse. The
  server log must hold no traceback: prefect 3.8.8's scheduler failed on every insert under SQLAlchemy 2.1,
  so no schedule ever fired.
- `prefect deploy --all` (the repository's prefect.yaml, from this checkout with LIVINGMETA_HOME in tmp) +
  `prefect worker start --pool livingmeta --type process` runs `update-review/ivig-pnp` to COMPLETED.
- Both deployments exist side by side; SIGTERM to serve lets the run in progress finish, then exits 0\n  without a traceback and with its schedule paused.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.ncbi_server import Fault, FakeNCBI, synthetic_articles
from tests.prefect_server import BIN, running_prefect_server, start_process, stop_process, tail, wait_for
from tests.test_ctgov_source import FakeCtgov, study

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "reviews" / "ivig-pnp"
# how far ahead the first scheduled run is: serve must import, register and the scheduler pick it up before then
LEAD_SECONDS = 40
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

pytestmark = pytest.mark.timeout(540)

ARTICLES = synthetic_articles(5)
STUDIES = ["NCT09000001_v1", "NCT09000002", "NCT09000003"]
EXPECTED_RECORDS = ({f"pubmed:{a.pmid}" for a in ARTICLES}
                    | {f"ctgov:{study(s)['protocolSection']['identificationModule']['nctId']}" for s in STUDIES})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One real Prefect server for the module, with the shared source rate limits the docs ask for."""
    with running_prefect_server(tmp_path_factory.mktemp("prefect-server")) as s:
        for name, limit in (("ncbi", 3), ("ctgov", 1)):
            r = s.request("POST", "v2/concurrency_limits/",
                          json={"name": name, "limit": limit, "slot_decay_per_second": float(limit)})
            assert r.status_code in (200, 201), r.text
        yield s


@pytest.fixture(scope="module")
def sources():
    """PubMed and ClinicalTrials.gov as HTTP servers on 127.0.0.1; the environment that points the flow at them."""
    ctgov = FakeCtgov()
    ctgov.studies = {s: study(s) for s in STUDIES}
    with FakeNCBI(ARTICLES) as ncbi:
        yield {"ncbi": ncbi, "env": {
            "LIVINGMETA_EUTILS_URL": ncbi.url, "LIVINGMETA_CTGOV_URL": ctgov.url,
            "LIVINGMETA_CTGOV_MIN_INTERVAL": "0", "LIVINGMETA_CTGOV_BACKOFF": "0.1",
            "LIVINGMETA_NCBI_EMAIL": "tests@example.org", "LIVINGMETA_NCBI_BACKOFF": "0.1"}}
    ctgov.close()


def deployment(server, name: str) -> dict | None:
    r = server.request("GET", f"deployments/name/update-review/{name}")
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return r.json()


def flow_runs(server, deployment_id: str) -> list[dict]:
    r = server.request("POST", "flow_runs/filter", json={"deployments": {"id": {"any_": [deployment_id]}}, "limit": 50})
    r.raise_for_status()
    return r.json()


def finished_run(server, deployment_id: str, timeout: float, alive) -> dict:
    """Wait for the deployment's first run to reach a terminal state (bounded); return it."""
    def done():
        for run in flow_runs(server, deployment_id):
            if (run.get("state") or {}).get("type") in TERMINAL:
                return run
        return None
    return wait_for(done, timeout, "a flow run of the deployment to finish", interval=1.0, alive=alive)


def warehouse_rows(path: Path) -> tuple[set[str], list[tuple], list[tuple]]:
    from warehouse import opened

    with opened(path, read_only=True) as con:
        records = {r[0] for r in con.execute("SELECT record_id FROM records").fetchall()}
        runs = con.execute("SELECT status, flow_run_id, error FROM update_runs ORDER BY update_id").fetchall()
        searches = con.execute("SELECT source, mode, status FROM search_runs ORDER BY source").fetchall()
    return records, runs, searches


def scheduler_errors(server) -> list[str]:
    """The server log's errors from its scheduler services (schedule_deployments, schedule_recent_deployments).

    SQLite's "database is locked" is left out: under load any service may meet it once, and the scheduler
    retries on its next loop. Other services' errors (e.g. worker heartbeats meeting that lock) are not ours.
    """
    return [b for b in server.tracebacks()
            if re.search(r"schedule_(recent_)?deployments|services/scheduler\.py", b) and "database is locked" not in b]


def review_with_schedule(folder: Path, schedule: str) -> Path:
    """A copy of the example review whose [schedule] is `schedule` (TOML lines)."""
    review = folder / "ivig-pnp"
    review.mkdir(parents=True)
    text = (EXAMPLE / "review.toml").read_text(encoding="utf-8")
    head, sep, _ = text.partition("[schedule]")
    assert sep, "the example review has a [schedule] table"
    (review / "review.toml").write_text(head + "[schedule]\n" + schedule + "\n", encoding="utf-8")
    return review


@pytest.fixture(scope="module")
def serving(server, sources, tmp_path_factory):
    """`livingmeta serve` of a review whose first run is LEAD_SECONDS ahead, once it has registered its deployment."""
    tmp = tmp_path_factory.mktemp("serve")
    anchor = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=LEAD_SECONDS)).replace(microsecond=0)
    review = review_with_schedule(tmp, f'interval = 86400\nanchor_date = {anchor.strftime("%Y-%m-%dT%H:%M:%SZ")}\n'
                                       'timezone = "Europe/London"')
    wh_dir, out = tmp / "warehouses", tmp / "out"
    env = server.env(LIVINGMETA_HOME=str(tmp / "home"), **sources["env"])
    stdout, stderr = tmp / "serve.out.log", tmp / "serve.err.log"
    proc = start_process([str(BIN / "livingmeta"), "serve", str(review), "--warehouse-dir", str(wh_dir), "--out", str(out)],
                         stdout, env, stderr_log=stderr)

    def alive():
        if proc.poll() is not None:
            return f"livingmeta serve exited with {proc.returncode}:\n{tail(stdout)}\n{tail(stderr)}"
        if errors := scheduler_errors(server):  # e.g. failing to insert runs: no run will ever come
            return "the Prefect server's scheduler failed:\n" + errors[0]
        return server.alive()

    try:
        dep = wait_for(lambda: deployment(server, "ivig-pnp-serve"), LEAD_SECONDS, "serve to register ivig-pnp-serve",
                       alive=alive)
        registered_at = dt.datetime.now(dt.timezone.utc)
        assert registered_at < anchor, (f"serve took until {registered_at} to register; the anchor {anchor} had passed "
                                        "(raise LEAD_SECONDS)")
        yield {"proc": proc, "deployment": dep, "anchor": anchor, "warehouse": wh_dir / "ivig-pnp.duckdb",
               "out": out, "stdout": stdout, "stderr": stderr, "alive": alive}
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def served(server, serving):
    """The served deployment's first run, once it has finished (created by the server's scheduler, not by us)."""
    run = finished_run(server, serving["deployment"]["id"], LEAD_SECONDS + 150, serving["alive"])
    return {**serving, "run": run}


def checkout_state() -> tuple:
    """What `prefect deploy` could change in the checkout: prefect.yaml's bytes and the top-level entries."""
    return (ROOT / "prefect.yaml").read_bytes(), sorted(p.name for p in ROOT.iterdir())


@pytest.fixture(scope="module")
def deployed(serving, server, sources, tmp_path_factory):
    """`prefect deploy --all` from this checkout + a process worker on the `livingmeta` pool; one run to the end.

    It asks for `serving` first only to spend serve's lead time (until its scheduled run) deploying.
    """
    tmp = tmp_path_factory.mktemp("deploy")
    home = tmp / "home"
    env = server.env(LIVINGMETA_HOME=str(home), PREFECT_WORKER_QUERY_SECONDS="2",
                     PREFECT_WORKER_PREFETCH_SECONDS="5", **sources["env"])
    prefect = str(BIN / "prefect")
    # what `prefect work-pool create livingmeta --type process` sends (its CLI start-up alone takes ~15 s here)
    from prefect.workers.process import ProcessWorker

    pool = server.request("POST", "work_pools/", json={
        "name": "livingmeta", "type": "process", "base_job_template": ProcessWorker.get_default_base_job_template()})
    assert pool.status_code in (200, 201), pool.text
    log = tmp / "worker.log"
    # the worker starts (slow imports) while `prefect deploy` runs; it polls the pool, which is all it needs
    worker = start_process([prefect, "worker", "start", "--pool", "livingmeta", "--type", "process"], log, env, cwd=tmp)

    def alive():
        if worker.poll() is None:
            return server.alive()
        return f"the worker exited with {worker.returncode}:\n{tail(log)}"

    try:
        before = checkout_state()
        dep_cmd = subprocess.run([prefect, "--no-prompt", "deploy", "--all"], cwd=ROOT, env=env, capture_output=True,
                                 text=True, timeout=180)
        after = checkout_state()
        assert dep_cmd.returncode == 0, dep_cmd.stdout + dep_cmd.stderr
        dep = deployment(server, "ivig-pnp")
        assert dep is not None, dep_cmd.stdout
        r = server.request("POST", f"deployments/{dep['id']}/create_flow_run", json={})
        assert r.status_code in (200, 201), r.text
        created = r.json()
        run = finished_run(server, dep["id"], 180, alive)
        assert run["id"] == created["id"]
        yield {"deployment": dep, "run": run, "home": home, "log": log, "deploy_output": dep_cmd.stdout,
               "git_before": before, "git_after": after}
    finally:
        stop_process(worker)


def test_prefect_deploy_and_a_process_worker_run_the_review(deployed):
    dep, run = deployed["deployment"], deployed["run"]
    assert run["state"]["type"] == "COMPLETED", f"{run['state']}\nworker log:\n{tail(deployed['log'])}"
    assert dep["work_pool_name"] == "livingmeta" and dep["work_queue_name"] == "reviews"
    # prefect.yaml's paths filled in for this checkout (its build step), not the image layout
    assert dep["pull_steps"] == [{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}]
    assert dep["parameters"] == {"review_dir": str(EXAMPLE), "warehouse": str(deployed["home"] / "warehouses" / "ivig-pnp.duckdb"),
                                 "out_dir": str(deployed["home"] / "output" / "ivig-pnp")}
    assert [s["schedule"].get("cron") for s in dep["schedules"]] == ["0 2 * * *"]
    records, runs, searches = warehouse_rows(deployed["home"] / "warehouses" / "ivig-pnp.duckdb")
    assert records == EXPECTED_RECORDS
    assert runs == [("succeeded", run["id"], None)]
    assert searches == [("ctgov", "live", "succeeded"), ("pubmed", "live", "succeeded")]
    assert deployed["git_after"] == deployed["git_before"], "prefect deploy must not change the checkout"


def test_the_servers_scheduler_creates_the_run_and_serve_completes_it(server, served):
    run, dep = served["run"], served["deployment"]
    logs = f"\nserve log:\n{tail(served['stdout'])}\n{tail(served['stderr'])}"
    assert run["state"]["type"] == "COMPLETED", f"{run['state']}{logs}"
    # the server's scheduler made it (nobody asked for a run), for the time the schedule named
    assert run["auto_scheduled"] is True
    expected = dt.datetime.fromisoformat(run["expected_start_time"].replace("Z", "+00:00"))
    assert abs((expected - served["anchor"]).total_seconds()) < 1, (expected, served["anchor"])
    assert dep["schedules"][0]["schedule"]["interval"] == 86400
    assert dep["work_pool_name"] is None  # served, not in a pool
    records, runs, searches = warehouse_rows(served["warehouse"])
    assert records == EXPECTED_RECORDS
    assert runs == [("succeeded", run["id"], None)]
    assert searches == [("ctgov", "live", "succeeded"), ("pubmed", "live", "succeeded")]
    assert (served["out"] / "ivig-pnp").is_dir()


def test_the_server_log_has_no_scheduler_traceback(server, served):
    # the regression: under SQLAlchemy 2.1 the scheduler logged "Can't evaluate bulk DML statement" and made nothing
    assert scheduler_errors(server) == [], "\n\n".join(scheduler_errors(server))


def test_serve_and_prefect_deploy_keep_their_own_deployments(server, served, deployed):
    serve_dep, pool_dep = deployment(server, "ivig-pnp-serve"), deployment(server, "ivig-pnp")
    assert serve_dep and pool_dep and serve_dep["id"] != pool_dep["id"]
    assert serve_dep["flow_id"] == pool_dep["flow_id"]  # the same flow, update-review
    # deploying did not overwrite what serve registered (and the other way round)
    assert serve_dep["id"] == served["deployment"]["id"] and serve_dep["work_pool_name"] is None
    assert serve_dep["parameters"]["warehouse"] == str(served["warehouse"])
    assert pool_dep["work_pool_name"] == "livingmeta"
    assert pool_dep["parameters"]["warehouse"] != serve_dep["parameters"]["warehouse"]


def test_sigterm_lets_the_run_in_progress_finish_then_stops_serve_cleanly(server, served, sources):
    proc, ncbi = served["proc"], sources["ncbi"]
    assert proc.poll() is None, "serve must still be running before the signal"
    release = threading.Event()
    ncbi.add_fault("esearch.fcgi", Fault(hold=release))  # the next PubMed search waits until released
    searches_before = len(ncbi.calls("esearch.fcgi"))
    r = server.request("POST", f"deployments/{served['deployment']['id']}/create_flow_run", json={})
    assert r.status_code in (200, 201), r.text
    run_id = r.json()["id"]
    wait_for(lambda: len(ncbi.calls("esearch.fcgi")) > searches_before, 150, "the manual run to reach its PubMed search",
             alive=served["alive"])

    os.kill(proc.pid, signal.SIGTERM)
    time.sleep(3)
    # the run cannot finish while its search is held: serve must be waiting for it, not have killed it
    assert proc.poll() is None, f"serve exited with {proc.returncode} while a run was in progress"
    release.set()
    try:
        code = proc.wait(90)
    except subprocess.TimeoutExpired:
        pytest.fail(f"serve still running 90 s after SIGTERM and the run's release:\n{tail(served['stderr'])}")
    err = served["stderr"].read_text(encoding="utf-8", errors="replace")
    assert code == 0, f"exit code {code}\n{err[-3000:]}"
    assert "Traceback" not in err and "Warning" not in err, err[-3000:]
    assert "SIGTERM received" in err  # it was the signal, handled, not a crash

    run = server.request("GET", f"flow_runs/{run_id}").json()
    assert run["state"]["type"] == "COMPLETED", run["state"]
    _, runs, _ = warehouse_rows(served["warehouse"])
    assert runs == [("succeeded", served["run"]["id"], None), ("succeeded", run_id, None)]
    # prefect.serve pauses what it served: no run is created for a process that is gone
    assert deployment(server, "ivig-pnp-serve")["paused"] is True
