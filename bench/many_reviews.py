"""Many reviews on one Prefect server: one work pool, N process workers, source rate limits shared through Prefect.

What it does, all on 127.0.0.1 and with real processes:
  1. starts `prefect server start` (its own PREFECT_HOME in a temp folder, a free port) on Prefect's default
     SQLite file, or with `--database postgres` on a throw-away local PostgreSQL cluster (as in production);
  2. creates the `ncbi` / `ctgov` global concurrency limits with slot decay through
     `flows.deployments.ensure_rate_limits` (the definitions `livingmeta limits` and `livingmeta serve` use);
  3. starts a fake NCBI E-utilities server (tests/ncbi_server.py) and a fake ClinicalTrials.gov v2 server
     (tests/test_ctgov_source.py), both holding synthetic records written here, and records when every
     request arrives;
  4. writes R synthetic review folders (review.toml, each with its own warehouse file and out dir),
     creates a process work pool and deploys one `update-review` deployment per review to it
     (`Flow.from_source(<repo>, ENTRYPOINT)`, `prefect.deploy`, concurrency_limit=1 per deployment);
  5. starts W `prefect worker start --type process` workers, triggers all R runs at once and waits until
     every run is terminal;
  6. prints the total wall time, each run's duration, how many runs COMPLETED (and whether each review's
     warehouse holds a succeeded PubMed and CT.gov search), and the requests per second each fake source
     saw: the most requests in any 1-second window and the mean rate;
  7. stops everything it started (try/finally), by process group id.

How many requests may a source see in one second? Prefect's server grants a slot of a slot-decay limit while
`active_slots + 1 <= limit`, where active slots decay by floor(slot_decay_per_second * seconds since the limit's
row was last updated), and every grant or denial updates that row. A token bucket, then: after a quiet spell
`limit` grants at once, then one more each 1/decay s, so any 1-second window [t, t + 1) holds at most
limit - 1 + ceil(decay) grants. The project's limits (flows/deployments.py RATE_LIMITS) are limit 1 with a
decay of 80% of the source's rate (NCBI 2.4/s, 8/s with a key; CT.gov 0.8/s): grants at least 0.42 s apart
for NCBI, so at most 3 in any second (10 with a key, 1 for CT.gov), i.e. the source's own rule. A request
leaves a moment after its grant, and that moment varies (process scheduling on a busy machine, the server's
clock), so the rate a source sees keeps that bound while the delay varies by less than
ceil(decay) / decay - 1 s (0.25 s here). With NCBI's 3/s as the decay, 4 requests landed within one second
on PostgreSQL; with limit 3, 5. `check_rates` applies the bound to the grants (the server's
`prefect.concurrency-limit.acquired` events) and to the requests the fake servers received.

Prints figures only; nothing passes or fails on time (tests/test_many_reviews.py runs a small version and
asserts the completions and the rate bound).

Run:  .venv/bin/python bench/many_reviews.py --reviews 20 --workers 2 [--ncbi-api-key] [--database postgres]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for p in (str(REPO), str(REPO / "tests")):
    if p not in sys.path:
        sys.path.insert(0, p)

PREFECT = str(Path(sys.executable).with_name("prefect"))
POOL = "livingmeta-bench"
FAKE_API_KEY = "bench-not-a-real-key"  # the fake NCBI ignores it; it makes clients and limits use NCBI's keyed budget
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

REVIEW_TOML = '''# synthetic review written by bench/many_reviews.py
id = "{id}"
title = "Bench review {n}: immunoglobulin in painful neuropathy"

[sources.pubmed]
query = "immunoglobulin AND neuropathy AND review{n}"
earliest_date = 2020-01-01

[sources.ctgov]
condition = "neuropathy"
intervention = "immunoglobulin"
earliest_date = 2020-01-01
page_size = {page_size}

[schedule]
cron = "{minute} 3 * * *"
timezone = "UTC"
'''


class TimedList(list):
    """A list that notes when each item was appended: the fake servers append every request they receive."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []
        self._lock = threading.Lock()

    def append(self, item) -> None:
        with self._lock:
            self.times.append(time.time())
            super().append(item)


def ctgov_study(i: int) -> dict:
    """One synthetic ClinicalTrials.gov v2 study (written here, not copied from the registry)."""
    day = dt.date(2021, 1, 1) + dt.timedelta(days=7 * i)
    return {"protocolSection": {
        "identificationModule": {"nctId": f"NCT{10000000 + i}", "briefTitle": f"Immunoglobulin trial number {i}",
                                 "officialTitle": f"Immunoglobulin versus placebo in painful neuropathy, trial {i}"},
        "statusModule": {"overallStatus": "COMPLETED", "studyFirstPostDateStruct": {"date": day.isoformat()},
                         "lastUpdatePostDateStruct": {"date": day.isoformat()}},
        "sponsorCollaboratorsModule": {"leadSponsor": {"name": "Bench Hospital", "class": "OTHER"}},
        "designModule": {"studyType": "INTERVENTIONAL", "designInfo": {"allocation": "RANDOMIZED"},
                         "enrollmentInfo": {"count": 40 + i}}}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def window_stats(times: list[float]) -> dict:
    """Requests seen: count, most in any 1-second window [t, t + 1) and the mean rate from first to last."""
    ts = sorted(times)
    peak, j = 0, 0
    for i in range(len(ts)):  # a busiest window can always be slid to start at a request
        while j < len(ts) and ts[j] < ts[i] + 1.0:
            j += 1
        peak = max(peak, j - i)
    span = ts[-1] - ts[0] if len(ts) > 1 else 0.0
    gaps = [b - a for a, b in zip(ts, ts[1:])]
    return {"requests": len(ts), "max_in_1s": peak, "span_s": round(span, 2),
            "mean_per_s": round((len(ts) - 1) / span, 2) if span > 0 else None,
            "min_gap_s": round(min(gaps), 3) if gaps else None}


def rate_bound(limit: dict) -> int:
    """The most grants Prefect's slot-decay bucket allows in any 1-second window (module docstring)."""
    return int(limit["limit"] - 1 + math.ceil(limit["slot_decay_per_second"]))


@dataclass
class Procs:
    """Every process this bench started (each in its own session, so its group can be stopped by id)."""

    items: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def start(self, name: str, cmd: list[str], env: dict, log: Path, cwd: Path = REPO) -> subprocess.Popen:
        out = open(log, "wb")
        p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        out.close()
        self.items.append((name, p))
        return p

    def stop_all(self) -> None:
        """Workers first, then the server (a worker reports its exit to the server), each by its group id."""
        for _, p in reversed(self.items):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(5)


def child_env(home: Path, api_url: str, extra: dict) -> dict:
    """The environment of the server and workers: none of the caller's Prefect settings, our own home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k not in ("NCBI_API_KEY",)}
    env.update({"PREFECT_HOME": str(home), "PREFECT_API_URL": api_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_UI_ENABLED": "false", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def wait_healthy(api_url: str, server: subprocess.Popen, log: Path, timeout: float = 180.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"prefect server exited with {server.returncode}; see {log}")
        try:
            with urllib.request.urlopen(api_url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"prefect server did not answer {api_url}/health within {timeout:g} s; see {log}")


def postgres_bin() -> Path | None:
    """PostgreSQL's server programs (initdb, postgres): on PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    import shutil

    if shutil.which("initdb"):
        return Path(shutil.which("initdb")).parent
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def start_postgres(work: Path, procs: Procs, log: Path) -> str:
    """A throw-away PostgreSQL cluster on 127.0.0.1 for the Prefect server; returns its SQLAlchemy URL."""
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError("--database postgres needs PostgreSQL's initdb and postgres programs "
                           "(e.g. apt-get install postgresql); or use --database sqlite")
    data, as_user = work / "pg", []
    data.mkdir()
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root: run them as the postgres user
        import pwd

        pw = pwd.getpwnam("postgres")
        os.chmod(work, 0o755)
        os.chown(data, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    with open(log, "ab") as out:
        subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "prefect"],
                       check=True, stdout=out, stderr=subprocess.STDOUT)
    port = free_port()
    procs.start("postgres", [*as_user, str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data),
                             "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"],
                dict(os.environ), log)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            time.sleep(1.0)  # accepting connections can come a moment before recovery is done
            return f"postgresql+asyncpg://prefect@127.0.0.1:{port}/postgres"
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"PostgreSQL did not start within 60 s; see {log}")


def write_reviews(root: Path, n: int, page_size: int) -> list[Path]:
    dirs = []
    for i in range(1, n + 1):
        d = root / f"review-{i:02d}"
        d.mkdir(parents=True)
        (d / "review.toml").write_text(REVIEW_TOML.format(id=f"bench-{i:02d}", n=i, page_size=page_size,
                                                          minute=(3 * i) % 60), encoding="utf-8")
        dirs.append(d)
    return dirs


def deploy_reviews(review_dirs: list[Path], work: Path, pool: str) -> dict[str, str]:
    """One update-review deployment per review in the work pool; returns {review id: deployment id}."""
    from prefect import deploy
    from prefect.flows import Flow

    from flows.deployments import ENTRYPOINT, deployment_specs

    specs = deployment_specs(review_dirs, warehouse_dir=work / "warehouses", out_root=work / "out")
    for s in specs:
        Path(s.parameters["warehouse"]).parent.mkdir(parents=True, exist_ok=True)
        Path(s.parameters["out_dir"]).mkdir(parents=True, exist_ok=True)
    # the workers run the flow from this checkout (pull step: set_working_directory to the repository)
    remote = Flow.from_source(str(REPO), ENTRYPOINT)
    # work-pool deployments are named by the bare review id, like prefect.yaml's (`serve` adds a suffix)
    deployments = [remote.to_deployment(name=s.review_id, parameters=s.parameters, tags=s.tags, description=s.description,
                                        concurrency_limit=1) for s in specs]
    ids = deploy(*deployments, work_pool_name=pool, build=False, push=False, print_next_steps_message=False,
                 ignore_warnings=True)
    return {s.review_id: str(i) for s, i in zip(specs, ids)}


def review_outcome(warehouse: str) -> dict:
    """What one review's warehouse says about its update: each search's status and the records it holds."""
    from warehouse import opened

    with opened(warehouse, read_only=True) as con:
        searches = dict(con.execute("SELECT source, status FROM search_runs ORDER BY source").fetchall())
        records = dict(con.execute("SELECT source, count(*) FROM records GROUP BY source ORDER BY source").fetchall())
        update = [r[0] for r in con.execute("SELECT status FROM update_runs").fetchall()]
    return {"searches": searches, "records": records, "update_runs": update}


def slot_grants(client, limit_name: str, expected: int, wait: float = 30.0) -> list[float]:
    """When each slot of a global limit was granted, from the server's `prefect.concurrency-limit.acquired`
    events (the client emits one per grant; the server persists them in batches, so wait for `expected`)."""
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    lim = client.read_global_concurrency_limit_by_name(limit_name)
    flt = EventFilter(event=EventNameFilter(name=["prefect.concurrency-limit.acquired"]),
                      resource=EventResourceFilter(id=[f"prefect.concurrency-limit.{lim.id}"]))
    deadline = time.time() + wait
    while True:
        page = client.read_events(filter=flt, limit=50)  # the most the API serves a page
        events = list(page.events)
        while page.next_page:
            page = client.read_events_page(page.next_page)
            events += page.events
        if len(events) >= expected or time.time() > deadline:
            return sorted(e.occurred.timestamp() for e in events)
        time.sleep(1.0)


def run_bench(reviews: int = 20, workers: int = 2, worker_limit: int = 4, ncbi_api_key: bool = False,
              database: str = "sqlite",
              pubmed_records: int = 30, ctgov_records: int = 30, ctgov_page_size: int = 10,
              poll_seconds: float | None = None, timeout: float = 1200.0, keep: Path | None = None,
              log=print) -> dict:
    """Run the whole scenario once and return its figures (see the module docstring)."""
    from ncbi_server import FakeNCBI, synthetic_articles
    from test_ctgov_source import FakeCtgov

    from flows.deployments import ensure_rate_limits, rate_limits

    tmp = tempfile.TemporaryDirectory(prefix="livingmeta-many-")
    work = Path(keep) if keep else Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    home, logs = work / "prefect-home", work / "logs"
    home.mkdir(exist_ok=True)
    logs.mkdir(exist_ok=True)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    procs = Procs()
    ncbi = FakeNCBI(synthetic_articles(pubmed_records)).__enter__()
    ctgov = None
    try:
        ctgov = FakeCtgov()
        ncbi.requests = TimedList()
        ctgov.requests = TimedList()
        for i in range(ctgov_records):
            s = ctgov_study(i)
            ctgov.studies[s["protocolSection"]["identificationModule"]["nctId"]] = s
        extra = {"LIVINGMETA_EUTILS_URL": ncbi.url, "LIVINGMETA_CTGOV_URL": ctgov.url,
                 "LIVINGMETA_NCBI_EMAIL": "bench@example.org", "LIVINGMETA_HOME": str(work / "livingmeta-home")}
        if ncbi_api_key:
            extra["NCBI_API_KEY"] = FAKE_API_KEY
        if poll_seconds is not None:
            extra["PREFECT_WORKER_QUERY_SECONDS"] = f"{poll_seconds:g}"
            extra["PREFECT_WORKER_PREFETCH_SECONDS"] = f"{poll_seconds:g}"
        t_setup = time.time()
        if database == "postgres":
            # the server's database, as in production (docs/operating.md §9); SQLite is Prefect's default
            extra["PREFECT_API_DATABASE_CONNECTION_URL"] = start_postgres(work, procs, logs / "postgres.log")
            log(f"PostgreSQL up after {time.time() - t_setup:.1f} s")
        elif database != "sqlite":
            raise ValueError(f"database must be sqlite or postgres, not {database!r}")
        env = child_env(home, api_url, extra)

        server_log = logs / "server.log"
        server = procs.start("server", [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                             env, server_log)
        wait_healthy(api_url, server, server_log)
        log(f"prefect server up at {api_url} after {time.time() - t_setup:.1f} s")

        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: api_url}):
            limits_done = ensure_rate_limits(ncbi_api_key)
            log(f"rate limits: {limits_done}")
            subprocess.run([PREFECT, "work-pool", "create", POOL, "--type", "process", "--overwrite"], env=env,
                           cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            dirs = write_reviews(work / "reviews", reviews, ctgov_page_size)
            t_dep = time.time()
            dep_ids = deploy_reviews(dirs, work, POOL)
            log(f"{len(dep_ids)} deployments in work pool {POOL!r} ({time.time() - t_dep:.1f} s)")
            for w in range(1, workers + 1):
                procs.start(f"worker-{w}", [PREFECT, "worker", "start", "--pool", POOL, "--type", "process",
                                            "--name", f"bench-worker-{w}", "--limit", str(worker_limit)],
                            env, logs / f"worker-{w}.log")

            with get_client(sync_client=True) as client:
                t0 = time.time()
                runs = {rid: client.create_flow_run_from_deployment(dep).id for rid, dep in dep_ids.items()}
                log(f"triggered {len(runs)} runs at once; waiting for them (timeout {timeout:g} s)")
                states: dict[str, object] = {}
                while time.time() - t0 < timeout:
                    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

                    got = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(runs.values()))))
                    states = {str(fr.id): fr for fr in got}
                    if len(states) == len(runs) and all(fr.state and fr.state.type.value in TERMINAL for fr in got):
                        break
                    time.sleep(1.0)
                wall = time.time() - t0
            limits_after, grants = {}, {}
            seen = {"ncbi": len(ncbi.requests.times), "ctgov": len(ctgov.requests.times)}
            with get_client(sync_client=True) as client:
                for name in rate_limits(ncbi_api_key):
                    lim = client.read_global_concurrency_limit_by_name(name)
                    limits_after[name] = {"limit": lim.limit, "slot_decay_per_second": lim.slot_decay_per_second}
                    grants[name] = slot_grants(client, name, seen[name])

        per_run = []
        for rid, fid in runs.items():
            fr = states.get(str(fid))
            state = fr.state.type.value if fr and fr.state else "UNKNOWN"
            dur = None
            if fr and fr.start_time and fr.end_time:
                dur = (fr.end_time - fr.start_time).total_seconds()
            done_after = (fr.end_time.timestamp() - t0) if fr and fr.end_time else None
            wh = str((work / "warehouses" / f"{rid}.duckdb").resolve())
            outcome = review_outcome(wh) if state == "COMPLETED" and Path(wh).exists() else {}
            per_run.append({"review": rid, "state": state, "run_s": round(dur, 1) if dur is not None else None,
                            "finished_after_s": round(done_after, 1) if done_after is not None else None, **outcome})
        rates = {"ncbi": window_stats(ncbi.requests.times), "ctgov": window_stats(ctgov.requests.times)}
        for name in rates:
            rates[name]["bound_1s"] = rate_bound(limits_after[name])
            rates[name]["limit"] = limits_after[name]
            # the same figures for the grants themselves (no network or scheduling delay between grant and request)
            rates[name]["slots"] = window_stats(grants[name])
        return {"reviews": reviews, "workers": workers, "worker_limit": worker_limit, "ncbi_api_key": ncbi_api_key,
                "database": database,
                "wall_s": round(wall, 1), "completed": sum(r["state"] == "COMPLETED" for r in per_run),
                "searches_ok": sum(set(r.get("searches", {}).values()) == {"succeeded"} and len(r.get("searches", {})) == 2
                                   for r in per_run),
                "runs": per_run, "rates": rates, "work_dir": str(work) if keep else None}
    finally:
        procs.stop_all()
        ncbi.__exit__(None, None, None)
        if ctgov is not None:
            ctgov.close()
        tmp.cleanup()


def check_rates(result: dict) -> list[str]:
    """Breaches of the slot-decay bound (module docstring): an empty list when every source kept to it."""
    bad = []
    for name, r in result["rates"].items():
        if r["requests"] and r["max_in_1s"] > r["bound_1s"]:
            bad.append(f"{name}: {r['max_in_1s']} requests in one second > {r['bound_1s']} (limit - 1 + ceil(decay))")
        if r["slots"]["max_in_1s"] > r["bound_1s"]:
            bad.append(f"{name}: {r['slots']['max_in_1s']} slots granted in one second > {r['bound_1s']} (limit - 1 + ceil(decay))")
        if r["span_s"] and r["requests"] > r["limit"]["limit"] + r["limit"]["slot_decay_per_second"] * r["span_s"] + 1:
            bad.append(f"{name}: {r['requests']} requests in {r['span_s']} s exceed limit + decay * span")
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reviews", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--worker-limit", type=int, default=4, help="flow runs at once per worker (prefect worker --limit)")
    ap.add_argument("--ncbi-api-key", action="store_true", help="give the workers a (fake) NCBI key: NCBI budget 10/s")
    ap.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite",
                    help="the Prefect server's database: Prefect's default SQLite file, or a throw-away local PostgreSQL")
    ap.add_argument("--pubmed-records", type=int, default=30)
    ap.add_argument("--ctgov-records", type=int, default=30)
    ap.add_argument("--ctgov-page-size", type=int, default=10)
    ap.add_argument("--poll-seconds", type=float, default=None,
                    help="PREFECT_WORKER_QUERY_SECONDS for the workers (default: Prefect's, 10 s)")
    ap.add_argument("--timeout", type=float, default=1200.0)
    ap.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it (logs, warehouses)")
    ap.add_argument("--json", action="store_true", help="also print the figures as JSON")
    a = ap.parse_args(argv)
    cmd = " ".join([".venv/bin/python bench/many_reviews.py", *(argv if argv is not None else sys.argv[1:])])
    # this process's own Prefect client settings: a throw-away home, never the user's ~/.prefect
    client_home = tempfile.TemporaryDirectory(prefix="livingmeta-many-client-")
    os.environ["PREFECT_HOME"] = client_home.name
    os.environ.pop("PREFECT_API_URL", None)
    r = run_bench(a.reviews, a.workers, a.worker_limit, a.ncbi_api_key, a.database, a.pubmed_records,
                  a.ctgov_records, a.ctgov_page_size, a.poll_seconds, a.timeout, a.keep)
    print()
    print(f"reviews {r['reviews']}, process workers {r['workers']} (--limit {r['worker_limit']} each), "
          f"NCBI key: {'yes' if r['ncbi_api_key'] else 'no'}, Prefect database: {r['database']}")
    print(f"total wall time (trigger -> all terminal): {r['wall_s']} s")
    print(f"COMPLETED: {r['completed']}/{r['reviews']}; both searches succeeded in the warehouse: {r['searches_ok']}/{r['reviews']}")
    print(f"{'review':<10} {'state':<10} {'run s':>6} {'done at s':>9}  records (pubmed, ctgov)")
    for run in r["runs"]:
        rec = run.get("records", {})
        print(f"{run['review']:<10} {run['state']:<10} {run['run_s'] if run['run_s'] is not None else '-':>6} "
              f"{run['finished_after_s'] if run['finished_after_s'] is not None else '-':>9}  "
              f"{rec.get('pubmed', 0)}, {rec.get('ctgov', 0)}")
    durations = sorted(x["run_s"] for x in r["runs"] if x["run_s"] is not None)
    if durations:
        print(f"run durations: min {durations[0]} s, median {durations[len(durations) // 2]} s, max {durations[-1]} s")
    for name, s in r["rates"].items():
        lim = s["limit"]
        print(f"{name}: {s['requests']} requests over {s['span_s']} s; max in any 1-s window {s['max_in_1s']} "
              f"(bound {s['bound_1s']}: Prefect limit {lim['limit']}, decay {lim['slot_decay_per_second']:g}/s); "
              f"mean {s['mean_per_s']}/s; closest two {s['min_gap_s']} s apart")
        g = s["slots"]
        print(f"{'':<{len(name)}}  {g['requests']} slots granted by the Prefect limit {name!r}; max in any 1-s window "
              f"{g['max_in_1s']}; mean {g['mean_per_s']}/s; closest two {g['min_gap_s']} s apart")
    bad = check_rates(r)
    print("rate bound kept" if not bad else "RATE BOUND BROKEN: " + "; ".join(bad))
    if a.json:
        print(json.dumps(r, indent=2, default=str))
    print(f"reproduce: {cmd}")
    client_home.cleanup()
    if a.keep:
        (a.keep / "result.json").write_text(json.dumps(r, indent=2, default=str), encoding="utf-8")
    return 0 if r["completed"] == r["reviews"] and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
