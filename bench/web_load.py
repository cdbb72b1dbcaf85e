"""Screening on the web while the nightly update runs: N reviewers deciding for T seconds (httpx against the
running app) while update cycles run in another process on the same warehouse.

    python bench/web_load.py [--reviewers 20] [--seconds 60]

Builds the bundled example's warehouse (demo steps 2010 and 2020), starts `livingmeta web` on it (a real
uvicorn process) and one real `prefect server start`, then runs the recorded update steps (2021, 2023, and
again) one after another in subprocesses while every reviewer signs in and, as fast as the app answers,
loads the screening page and sends a decision on a record of the review (each decision's form nonce sent
twice, as a double click or a retry would). Prints per request kind p50/p95/max latency, decisions per second,
and checks that every acknowledged decision is stored exactly once and every cycle completed.
The test tests/test_web_concurrency.py runs the same driver smaller.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
REVIEW_DIR = REPO / "reviews" / "ivig-pnp"
PASSWORD = "load-test-password"


def prepare(base: Path, reviewers: int, mkenv) -> tuple[Path, Path, str]:
    """The demo warehouse after steps 2010 and 2020, with `reviewers` accounts; returns (warehouse, out, review id)."""
    from crash_harness import cycle_cmd, run
    from warehouse.accounts import accounts, add_user

    wh, out = base / "warehouse.duckdb", base / "out"
    out.mkdir(parents=True, exist_ok=True)
    rc = run(cycle_cmd(REVIEW_DIR, wh, out, "2010", "2020"), mkenv(), base / "prepare.log", timeout=600)
    if rc != 0:
        raise RuntimeError(f"preparing the warehouse failed ({rc}): {(base / 'prepare.log').read_text()[-3000:]}")
    with accounts(wh) as con:
        for i in range(reviewers):
            add_user(con, f"rev{i:02d}", PASSWORD, review_id="ivig-pnp", role="reviewer")
    return wh, out, "ivig-pnp"


def start_web(wh: Path, out: Path, port: int, log: Path, env: dict) -> subprocess.Popen:
    cmd = [str(Path(sys.executable).with_name("livingmeta")), "web", "--warehouse", str(wh), "--out", str(out),
           "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"livingmeta web exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("livingmeta web did not answer within 60 s")


class Reviewer(threading.Thread):
    """Signs in, then loads the screening page and sends a decision (twice, same nonce) until told to stop."""

    def __init__(self, base: str, name: str, record_ids: list[str], stop: threading.Event, seed: int):
        super().__init__(daemon=True)
        self.base, self.name, self.records, self.stop = base, name, record_ids, stop
        self.rng = random.Random(seed)
        self.latency: dict[str, list[float]] = {"page": [], "decide": [], "retry": []}
        self.acknowledged: list[str] = []  # nonces the app answered 303 for
        self.failures: list[str] = []

    def timed(self, kind: str, fn):
        t0 = time.monotonic()
        r = fn()
        self.latency[kind].append(time.monotonic() - t0)
        return r

    def run(self) -> None:
        c = httpx.Client(base_url=self.base, follow_redirects=False, timeout=120)
        try:
            page = c.get("/login").text
            tok = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
            r = c.post("/login", data={"csrf_token": tok, "username": self.name, "password": PASSWORD})
            if r.status_code != 303:
                self.failures.append(f"sign-in {r.status_code}")
                return
            while not self.stop.is_set():
                page = self.timed("page", lambda: c.get("/r/ivig-pnp/screen"))
                if page.status_code != 200:
                    self.failures.append(f"page {page.status_code}")
                    continue
                tok = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
                m = re.search(r'data-record-id="([^"]+)"', page.text)
                rid = m.group(1) if m else self.rng.choice(self.records)  # nothing queued: re-decide a record
                nonce = secrets.token_urlsafe(12)
                form = {"csrf_token": tok, "record_id": rid, "decision": self.rng.choice(["include", "maybe"]),  # never un-includes a study the cycle extracts
                        "stage": "title_abstract", "nonce": nonce}
                r = self.timed("decide", lambda: c.post("/r/ivig-pnp/screen", data=form))
                if r.status_code != 303:
                    self.failures.append(f"decide {r.status_code}: {r.text[:200]}")
                    continue
                self.acknowledged.append(nonce)
                r = self.timed("retry", lambda: c.post("/r/ivig-pnp/screen", data=form))  # same form again
                if r.status_code != 303:
                    self.failures.append(f"retry {r.status_code}: {r.text[:200]}")
        except Exception as e:  # a reviewer thread must report, not die silently
            self.failures.append(f"{type(e).__name__}: {e}")
        finally:
            c.close()


def load(base_dir: Path, reviewers: int, seconds: float, mkenv, cycles: list[str]) -> dict:
    """Run the load while `cycles` (recorded step names) run in turn; returns the figures and the checks."""
    from crash_harness import cycle_cmd, start
    from warehouse import opened

    wh, out, review = prepare(base_dir, reviewers, mkenv)
    with opened(wh) as con:
        records = [r for (r,) in con.execute("SELECT record_id FROM review_records WHERE review_id = ? "
                                             "ORDER BY record_id", [review]).fetchall()]
    from web_server import free_port
    port = free_port()
    web = start_web(wh, out, port, base_dir / "web.log", {**mkenv(), "LIVINGMETA_WEB_SECRET": "s" * 48})
    stop = threading.Event()
    threads = [Reviewer(f"http://127.0.0.1:{port}", f"rev{i:02d}", records, stop, seed=i) for i in range(reviewers)]
    cycle_results = []
    t0 = time.monotonic()
    try:
        for t in threads:
            t.start()
        i = 0
        while time.monotonic() - t0 < seconds or i == 0:
            step = cycles[i % len(cycles)]
            c0 = time.monotonic()
            proc = start(cycle_cmd(REVIEW_DIR, wh, out, step), mkenv(), base_dir / f"cycle-{i}.log")
            rc = proc.wait(timeout=900)
            cycle_results.append({"step": step, "rc": rc, "seconds": round(time.monotonic() - c0, 1)})
            i += 1
        stop.set()
        for t in threads:
            t.join(timeout=180)
        wall = time.monotonic() - t0
    finally:
        stop.set()
        web.terminate()
        try:
            web.wait(timeout=20)
        except subprocess.TimeoutExpired:
            web.kill()
    acknowledged = [f"web:{t.name}:{n}" for t in threads for n in t.acknowledged]
    with opened(wh) as con:
        stored = dict(con.execute("SELECT import_key, count(*) FROM screening_decisions WHERE origin = 'web' "
                                  "GROUP BY import_key").fetchall())
        (completed,) = con.execute("SELECT count(*) FROM update_runs WHERE status = 'succeeded'").fetchone()
    lat: dict[str, list[float]] = {}
    for t in threads:
        for k, v in t.latency.items():
            lat.setdefault(k, []).extend(v)

    def pct(v: list[float], q: float) -> float | None:
        return round(statistics.quantiles(v, n=100)[q - 1] * 1000, 1) if len(v) >= 2 else None

    return {
        "reviewers": reviewers, "seconds": round(wall, 1), "cycles": cycle_results,
        "decisions_acknowledged": len(acknowledged),
        "decisions_stored_once": sum(1 for k in acknowledged if stored.get(k) == 1),
        "decisions_missing": [k for k in acknowledged if k not in stored],
        "decisions_duplicated": [k for k, n in stored.items() if n > 1],
        "stored_not_acknowledged": len(set(stored) - set(acknowledged)),
        "succeeded_update_runs": completed,
        "failures": [f for t in threads for f in t.failures],
        "decisions_per_second": round(len(acknowledged) / wall, 2),
        "latency_ms": {k: {"n": len(v), "p50": pct(v, 50), "p95": pct(v, 95),
                           "max": round(max(v) * 1000, 1) if v else None} for k, v in lat.items()},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reviewers", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--keep", action="store_true", help="keep the working folder")
    args = ap.parse_args()
    from crash_harness import prefect_server, subprocess_env

    base = Path(tempfile.mkdtemp(prefix="livingmeta-web-load-"))
    try:
        home = base / "prefect-server"
        home.mkdir()
        with prefect_server(home) as url:
            client_home = base / "prefect-client"
            client_home.mkdir()
            res = load(base / "run", args.reviewers, args.seconds,
                       lambda: subprocess_env(url, client_home), ["2021", "2023"])
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(res, indent=2))
    print(f"\n{res['reviewers']} reviewers for {res['seconds']} s beside {len(res['cycles'])} update cycle(s) "
          f"(all completed: {all(c['rc'] == 0 for c in res['cycles'])}): {res['decisions_acknowledged']} decisions "
          f"acknowledged, {res['decisions_stored_once']} stored exactly once, {len(res['decisions_missing'])} missing, "
          f"{len(res['decisions_duplicated'])} duplicated, {len(res['failures'])} failed requests")
    for k, v in res["latency_ms"].items():
        print(f"  {k:7s} n={v['n']:5d}  p50 {v['p50']} ms  p95 {v['p95']} ms  max {v['max']} ms")
    print(f"reproduce: python bench/web_load.py --reviewers {args.reviewers} --seconds {args.seconds:g}"
          f"  (machine: {os.cpu_count()} cores)")
    ok = (res["decisions_stored_once"] == res["decisions_acknowledged"] and not res["failures"]
          and all(c["rc"] == 0 for c in res["cycles"]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
