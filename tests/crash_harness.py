"""Helpers for the crash-safety tests: one real Prefect server, update subprocesses, warehouse and output digests.

Digests compare what a cycle produced, not how often it was tried: run ids, timestamps and the statuses of a
killed run are bookkeeping (listed per table below, with why); everything else must be equal to an
uninterrupted cycle.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
LIVINGMETA = str(Path(sys.executable).with_name("livingmeta"))
CYCLE = str(REPO / "tests" / "crash_cycle.py")


# ------------------------------------------------------------------------------------------- processes

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL a subprocess started with start_new_session=True and everything it started (its process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def prefect_server(home: Path):
    """A real `prefect server start` on 127.0.0.1 (own PREFECT_HOME, no UI); yields its API URL."""
    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", "127.0.0.1",
                             "--port", str(port), "--no-ui", "--no-scheduler", "--no-late-runs", "--log-level", "WARNING"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prefect server exited ({proc.returncode}): {(home / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("prefect server did not start within 120 s")
            time.sleep(0.3)
        yield url
    finally:
        kill_group(proc)
        proc.wait(timeout=30)
        log.close()


def subprocess_env(api_url: str | None, prefect_home: Path, kill_at: str | None = None, **extra: str) -> dict:
    """The environment of an update subprocess: its own PREFECT_HOME, the shared server (None: ephemeral)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVINGMETA_", "PREFECT_API_URL"))}
    env.update(PREFECT_HOME=str(prefect_home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="WARNING",
               PYTHONPATH=str(REPO))
    if api_url:
        env["PREFECT_API_URL"] = api_url
    if kill_at:
        env["LIVINGMETA_TEST_KILL_AT"] = kill_at
    env.update(extra)
    return env


def start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    """Start an update subprocess in its own session (so it and any server it spawns can be killed as a group)."""
    fh = log.open("ab")
    try:
        return subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO)
    finally:
        fh.close()


def run(cmd: list[str], env: dict, log: Path, timeout: float = 180) -> int:
    """Run an update subprocess to its end (or its own SIGKILL); returns the exit code (-9: killed)."""
    proc = start(cmd, env, log)
    try:
        return proc.wait(timeout=timeout)
    finally:
        kill_group(proc)  # a killed CLI may leave an ephemeral Prefect server behind in its group


def cycle_cmd(review: Path, wh: Path, out: Path, *steps: str) -> list[str]:
    return [PYTHON, CYCLE, str(review), str(wh), str(out), *steps]


def cli_cmd(review: Path, wh: Path, out: Path, replay: Path) -> list[str]:
    return [LIVINGMETA, "update", str(review), "--warehouse", str(wh), "--out", str(out), "--replay", str(replay)]


# ------------------------------------------------------------------------------------------- digests

# keys inside JSON values (summaries, diffs, results) that are run bookkeeping
# (content_digest: the snapshot manifest's digest of the warehouse, run ids and timestamps included)
BOOKKEEPING_KEYS = {"run_id", "analysis_run_id", "reused_run_id", "effective_run_id", "update_id", "alert_id",
                    "event_id", "raw_id", "flow_run_id", "content_digest"}
_TS = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?( UTC)?")

# Per table: the columns left out of the digest, and why. A table missing here fails the test (new tables must
# be classified). Columns typed TIMESTAMP WITH TIME ZONE are listed too: each is a "when this ran" stamp.
EXCLUDE: dict[str, dict[str, str]] = {
    "_migrations": {"applied_at": "when the migration ran"},
    "alerts": {"alert_id": "surrogate id; alerts are compared by content", "created_at": "when raised",
               "run_id": "which search run raised it"},
    "alert_deliveries": {"delivered_at": "when sent"},  # alert_id is mapped to the alert's kind/title (below)
    "analysis_runs": {"analysis_run_id": "run id", "update_id": "run id", "started_at": "when run",
                      "reused_run_id": "run id"},  # and see ANALYSIS_RUNS below: reuse rows are per-attempt
    "estimate_diffs": {},
    "estimate_studies": {},  # analysis_run_id is mapped to the run's analysis and input hash
    "estimates": {},  # idem
    "extraction_rows": {"created_at": "when imported"},
    "prisma_versions": {"version_created_at": "when the version was made", "frozen_at": "when frozen"},
    "raw_records": {"run_id": "which search run stored it (a killed run's commit counts)", "fetched_at": "when fetched"},
    "record_versions": {"run_id": "which search run stored it", "recorded_at": "when stored"},
    "records": {"first_seen_at": "when", "updated_at": "when", "last_run_id": "which run stored it last"},
    "registry_events": {"run_id": "which search run observed it", "occurred_at": "when observed"},
    "registry_results_reads": {"read_at": "when read"},
    "registry_suggestions": {"created_at": "when", "retired_at": "when"},
    "review_records": {"first_run_id": "run id", "last_run_id": "run id", "first_seen_at": "when"},
    "review_version_runs": {},  # analysis_run_id is mapped to the run's content
    "review_versions": {"created_at": "when published", "as_of": "the CLI's as_of is the current time",
                        "update_id": "which update made it (a killed one may have)"},
    "reviews": {"created_at": "when", "updated_at": "when"},
    "screening_decisions": {"decided_at": "import time for recorded inputs", "recorded_at": "when stored"},
    "screening_queue": {"entered_at": "when queued"},
    # what the queue was last ranked from (a fingerprint of its inputs): the same after a rerun
    "screening_rank_state": {"ranked_at": "when"},
    # what `livingmeta screen export` gave away: no update writes them
    "screening_exports": {"exported_at": "when"},
    "screening_export_labels": {},
    "screening_undos": {"undone_at": "when"},
    "search_definitions": {"first_used_at": "when"},
    # search_runs and update_runs are the run log itself: see RUN_LOGS
    "search_runs": {},
    "update_runs": {},
    # a skip is recorded by every run that meets the record: see CUSTOM
    "source_record_skips": {},
    "source_watermarks": {"watermark": "as_of of the CLI cycle is the current time", "run_id": "run id",
                          "updated_at": "when"},
    "studies": {"created_at": "when"},
    "study_aliases": {"created_at": "when"},
    # incremental linking's inputs and keys: a killed linking run rolls back, the rerun's equal a full relink
    "study_link_inputs": {},
    "study_link_keys": {},
    "study_link_state": {"linked_at": "when"},
    "study_link_conflicts": {"found_at": "when"},
    "study_link_decisions": {"decided_at": "when"},
    "study_link_evidence": {},
    "study_links": {"linked_at": "when linked"},
}

# Tables compared by a query instead of their raw rows, with why.
CUSTOM: dict[str, str] = {
    # a killed search run is 'interrupted' and a rerun after a committed-but-killed search finds its records
    # unchanged (n_new/n_changed/n_unchanged move to the killed run): compare the runs of SUCCEEDED updates by
    # what they searched and found
    "search_runs": "SELECT s.source, s.query, s.mode, s.status, s.n_found, s.n_skipped, s.n_unrequested, s.error "
                   "FROM search_runs s JOIN update_runs u USING (update_id) WHERE u.status = 'succeeded'",
    # what the searches of succeeded updates set aside (a rerun meets a skipped record again and records it again)
    "source_record_skips": "SELECT k.* EXCLUDE (run_id, recorded_at) FROM source_record_skips k JOIN search_runs s "
                           "USING (run_id) JOIN update_runs u ON u.update_id = s.update_id WHERE u.status = 'succeeded'",
    # the update log: how many cycles succeeded (killed ones are 'interrupted', checked separately)
    "update_runs": "SELECT review_id, status FROM update_runs WHERE status = 'succeeded'",
    # what was computed, once per input: a rerun records a reuse ('unchanged') of what the killed run computed,
    # and a no_data/failed analysis is recorded again by every attempt
    "analysis_runs": "SELECT analysis_id, input_hash, engine_version, settings, status, result, error FROM analysis_runs "
                     "WHERE status = 'computed' UNION ALL SELECT DISTINCT analysis_id, input_hash, engine_version, "
                     "settings, status, result, error FROM analysis_runs WHERE status IN ('no_data', 'failed')",
    "estimates": "SELECT r.input_hash, e.* EXCLUDE (analysis_run_id) FROM estimates e JOIN analysis_runs r "
                 "USING (analysis_run_id)",
    "estimate_studies": "SELECT r.analysis_id, r.input_hash, e.* EXCLUDE (analysis_run_id) FROM estimate_studies e "
                        "JOIN analysis_runs r USING (analysis_run_id)",
    "review_version_runs": "SELECT v.review_id, v.version, v.analysis_id, r.status, r.input_hash FROM "
                           "review_version_runs v JOIN analysis_runs r USING (analysis_run_id)",
    "alert_deliveries": "SELECT a.kind, a.version, a.title, d.* EXCLUDE (alert_id, delivered_at) FROM alert_deliveries d "
                        "JOIN alerts a USING (alert_id)",
    # the dedupe key embeds update/run/event ids ("new_candidates:update:7", "registry_event:12")
    "alerts": "SELECT * EXCLUDE (alert_id, created_at, dedupe_key, run_id), regexp_replace(dedupe_key, "
              "'(update|registry_event|search_failed):[0-9]+', '\\1:#') AS dedupe_kind FROM alerts",
}


def normalize(value):
    """A value with bookkeeping keys dropped from JSON and timestamps in text replaced by <ts>."""
    if isinstance(value, str):
        s = value.strip()
        if s[:1] in "[{":
            try:
                return normalize(json.loads(s))
            except ValueError:
                pass
        return _TS.sub("<ts>", value)
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in sorted(value.items()) if k not in BOOKKEEPING_KEYS}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, float):
        return round(value, 12)
    return value


def _rows_digest(cur) -> tuple[int, str, list]:
    cols = [d[0] for d in cur.description]
    rows = sorted(json.dumps([normalize(v) for v in r], default=str, sort_keys=True) for r in cur.fetchall())
    h = hashlib.sha256(("\n".join([json.dumps(cols)] + rows)).encode()).hexdigest()
    return len(rows), h, rows


def warehouse_rows(path: Path) -> dict[str, tuple[int, str, list]]:
    """table -> (rows, digest, normalized rows) for every table of a warehouse file (read-only)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        tables = [t for (t,) in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
                                            "AND table_type = 'BASE TABLE' ORDER BY 1").fetchall()]
        unknown = sorted(set(tables) - set(EXCLUDE))
        assert not unknown, f"tables not classified for the crash digest (add them to EXCLUDE): {unknown}"
        out = {}
        for t in tables:
            if t in CUSTOM:
                cur = con.execute(CUSTOM[t])
            else:
                cols = [c for (c,) in con.execute("SELECT column_name FROM information_schema.columns WHERE "
                                                  "table_name = ? ORDER BY ordinal_position", [t]).fetchall()]
                missing = set(EXCLUDE[t]) - set(cols)
                assert not missing, f"{t}: excluded columns no longer exist: {missing}"
                keep = [c for c in cols if c not in EXCLUDE[t]]
                cur = con.execute(f"SELECT {', '.join(chr(34) + c + chr(34) for c in keep)} FROM \"{t}\"")
            out[t] = _rows_digest(cur)
        return out
    finally:
        con.close()


def _search_totals(searches: list[dict]) -> dict:
    """A report's search log reduced to what does not depend on how often a cycle was attempted.

    The log lists every search run up to the version's update, killed attempts included (an honest log: the run
    that stored the records may be one whose process died later). Each record is counted new (changed,
    deleted) by exactly one run, so the totals per source must match an uninterrupted cycle."""
    out: dict = {}
    for s in searches:
        t = out.setdefault(s["source"], {"queries": set(), "modes": set(), "new": 0, "changed": 0, "deleted": 0})
        t["queries"].add(s["query"])
        t["modes"].add(s["mode"])
        for k in ("new", "changed", "deleted"):
            t[k] += s.get(f"n_{k}") or 0
    return {src: {k: sorted(v) if isinstance(v, set) else v for k, v in t.items()} for src, t in sorted(out.items())}


_SEARCH_LOG = {".md": re.compile(r"^## Search log$.*?(?=^## )", re.S | re.M),
               ".html": re.compile(r"<h2>Search log.*?(?=<h2)", re.S)}


def _report_text(path: Path) -> object:
    text = path.read_text(encoding="utf-8")
    if path.name == "report.json":
        doc = json.loads(text)
        doc["document"]["searches"] = _search_totals(doc["document"]["searches"])
        return normalize(doc)
    if path.name in ("report.md", "report.html"):  # the search log table is the run log: see _search_totals
        text = _SEARCH_LOG[path.suffix].sub("<search log>", text)
    return normalize(text)


def output_digest(out: Path) -> dict[str, object]:
    """What a review's output folder publishes, normalized: per-version reports, index, alerts file, snapshot."""
    res: dict[str, object] = {}
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() or p.is_symlink())
    link = out / "snapshot" / "parquet"
    current = link.resolve().name if link.is_symlink() else None
    # temporary files (".name.tmp", ".warehouse-*.duckdb") must never be left behind; Parquet generations other
    # than the current one are older exports kept for readers (their number is checked, not their contents)
    res["files"] = [f.replace(current, "parquet-CURRENT") if current else f for f in files
                    if not (f.startswith("snapshot/parquet-") and not f.startswith(f"snapshot/{current}"))]
    res["parquet_generations"] = len([p for p in (out / "snapshot").glob("parquet-*") if p.is_dir()])
    for f in files:
        p = out / f
        if f.endswith((".json", ".md", ".html", ".log")) and not f.startswith("snapshot/parquet-"):
            res[f] = _report_text(p)
        elif f.endswith(".png"):
            res[f] = hashlib.sha256(p.read_bytes()).hexdigest()
    if current:
        con = duckdb.connect()
        for pq in sorted(link.glob("*.parquet")):
            cur = con.execute("SELECT * FROM read_parquet(?)", [str(pq)])
            types = [str(d[1]) for d in cur.description]
            cols = [d[0] for d in cur.description]
            keep = [c for c, t in zip(cols, types) if "TIMESTAMP" not in t.upper() and c not in BOOKKEEPING_KEYS]
            cur = con.execute(f"SELECT {', '.join(chr(34) + c + chr(34) for c in keep)} FROM read_parquet(?)", [str(pq)])
            res[f"parquet/{pq.name}"] = _rows_digest(cur)[1]
        con.close()
    snap = out / "snapshot" / "warehouse.duckdb"
    if snap.exists():
        res["snapshot"] = {t: d[1] for t, d in warehouse_rows(snap).items()}
    return res


def diff_digests(a: dict, b: dict) -> list[str]:
    """Readable differences between two warehouse_rows() results."""
    out = []
    for t in sorted(set(a) | set(b)):
        if t not in a or t not in b:
            out.append(f"{t}: only in {'second' if t not in a else 'first'}")
        elif a[t][1] != b[t][1]:
            ra, rb = set(a[t][2]), set(b[t][2])
            out.append(f"{t}: {a[t][0]} vs {b[t][0]} rows; only first: {sorted(ra - rb)[:3]}; only second: "
                       f"{sorted(rb - ra)[:3]}")
    return out


def interrupted_updates(path: Path) -> list[tuple]:
    """(status, error) of every update that did not succeed."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT status, error FROM update_runs WHERE status <> 'succeeded' ORDER BY update_id").fetchall()
    finally:
        con.close()
