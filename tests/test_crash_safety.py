"""Crash safety, measured: `kill -9` of an update at many points, then a rerun, gives the same warehouse and
the same published outputs as an uninterrupted cycle; two updates on one warehouse never run at once.

Real subprocesses against one real `prefect server start` (started once for this module): the update-review
flow through tests/crash_cycle.py (the demo's recorded steps: fixed as_of, recorded sources and inputs) and
the real `livingmeta update` CLI. Kill points are named places in the code (`tasks.runtime.kill_point`, armed
by $LIVINGMETA_TEST_KILL_AT=<point>[:<nth>]) plus `kill -9` from outside at seeded random moments.

To keep the cost down, one chain of processes covers many points: the first run is killed at the first point,
its rerun at the next, and so on, and a last clean run finishes the cycle. Every process must really die at
its point (exit -9 and the hook's line in its log), so a point that is no longer reached fails the test.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from tests.crash_harness import (REPO, cli_cmd, cycle_cmd, diff_digests, interrupted_updates, kill_group,
                                 output_digest, prefect_server, run, start, subprocess_env, warehouse_rows)
from warehouse.lock import lock_path

REVIEW = REPO / "reviews" / "ivig-pnp"
CLI_REPLAY = REVIEW / "snapshots" / "2023"  # replayed by the real CLI (as_of = now, no recorded inputs)

# Step 2021 through the flow: searches, linking, queue, recorded decisions and extraction, three analyses,
# version 3 with its alert to alerts.log, reports and snapshot. In cycle order; each is reached by the rerun
# of the run killed at the one before it.
FLOW_CHAIN = ["pubmed-fetched", "pubmed-stored", "ctgov-stored", "linking-relinked", "screening-flagged",
              "input-applied:1", "analysis-stored:1", "version-stored", "alert-sent:1", "snapshot-replaced",
              "report-file-written:2"]
# Step 2023 through `livingmeta update`: new records, NCT02915263 terminated (a registry event, alerted and
# delivered), no new version.
CLI_CHAIN = ["ctgov-stored", "alerts-raised", "alert-sent:1", "published"]


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """(PREFECT_API_URL of one real server, a factory of subprocess environments)."""
    home = tmp_path_factory.mktemp("prefect-server")
    with prefect_server(home) as url:
        client_home = tmp_path_factory.mktemp("prefect-client")
        yield url, lambda kill_at=None, api=url: subprocess_env(api, client_home, kill_at)


def _state(d: Path) -> tuple[Path, Path]:
    return d / "warehouse.duckdb", d / "out"


def _must_run(cmd, environ, log) -> None:
    rc = run(cmd, environ, log)
    assert rc == 0, f"{cmd} exited {rc}:\n{log.read_text()[-3000:]}"


@pytest.fixture(scope="module")
def states(env, tmp_path_factory):
    """Uninterrupted reference: after steps 2010+2020 (start), after 2021 (flow), after 2023 (CLI)."""
    _, mkenv = env
    base = tmp_path_factory.mktemp("reference")
    start_dir = base / "start"
    wh, out = _state(start_dir)
    out.mkdir(parents=True)
    _must_run(cycle_cmd(REVIEW, wh, out, "2010", "2020"), mkenv(), base / "start.log")
    flow_dir = _copy(start_dir, base / "flow")
    t0 = time.monotonic()
    _must_run(cycle_cmd(REVIEW, *_state(flow_dir), "2021"), mkenv(), base / "flow.log")
    flow_seconds = time.monotonic() - t0
    cli_dir = _copy(flow_dir, base / "cli")
    _must_run(cli_cmd(REVIEW, *_state(cli_dir), CLI_REPLAY), mkenv(), base / "cli.log")
    return {"start": start_dir, "flow": flow_dir, "cli": cli_dir, "flow_seconds": flow_seconds}


def _assert_same(reference: Path, crashed: Path) -> None:
    ref_wh, crash_wh = warehouse_rows(_state(reference)[0]), warehouse_rows(_state(crashed)[0])
    problems = diff_digests(ref_wh, crash_wh)
    assert not problems, "warehouse differs from the uninterrupted cycle:\n" + "\n".join(problems)
    ref_out, crash_out = output_digest(_state(reference)[1]), output_digest(_state(crashed)[1])
    assert ref_out["files"] == crash_out["files"], "output files differ (temporary files left behind?)"
    different = [k for k in sorted(set(ref_out) | set(crash_out)) if ref_out.get(k) != crash_out.get(k)]
    assert not different, f"published outputs differ from the uninterrupted cycle: {different}"
    for status, error in interrupted_updates(_state(crashed)[0]):
        assert status == "interrupted" and "interrupted: the process stopped" in error, (status, error)


def _kill_chain(cmd, points, mkenv, logs: Path) -> int:
    for n, point in enumerate(points):
        log = logs / f"{n:02d}-{point.replace(':', '_')}.log"
        rc = run(cmd, mkenv(point), log)
        text = log.read_text(errors="replace")
        assert rc == -9, f"run {n} was to be killed at {point} but exited {rc}:\n{text[-3000:]}"
        assert f"SIGKILL at {point if ':' in point else point + ':1'}" in text, text[-3000:]
    rc = run(cmd, mkenv(), logs / "final.log")
    assert rc == 0, (logs / "final.log").read_text()[-3000:]
    return len(points)


def test_flow_killed_at_every_named_point_then_rerun_equals_uninterrupted(env, states, tmp_path):
    _, mkenv = env
    crashed = _copy(states["start"], tmp_path / "crashed")
    kills = _kill_chain(cycle_cmd(REVIEW, *_state(crashed), "2021"), FLOW_CHAIN, mkenv, tmp_path)
    _assert_same(states["flow"], crashed)
    assert len(interrupted_updates(_state(crashed)[0])) == kills
    # the version's alert reached alerts.log exactly once although a process died right after writing it
    log = (_state(crashed)[1] / "ivig-pnp" / "alerts.log").read_text()
    assert log.count("version 3 (") == 1


def test_cli_killed_at_named_points_then_rerun_equals_uninterrupted(env, states, tmp_path):
    _, mkenv = env
    crashed = _copy(states["flow"], tmp_path / "crashed")
    _kill_chain(cli_cmd(REVIEW, *_state(crashed), CLI_REPLAY), CLI_CHAIN, mkenv, tmp_path)
    _assert_same(states["cli"], crashed)
    # the registry event of this cycle was committed by a killed run: it is still alerted, once
    log = (_state(crashed)[1] / "ivig-pnp" / "alerts.log").read_text()
    assert log.count("NCT02915263: status changed from RECRUITING to TERMINATED") == 2  # title line and body


def test_kill_9_from_outside_at_seeded_random_moments(env, states, tmp_path):
    _, mkenv = env
    crashed = _copy(states["start"], tmp_path / "crashed")
    rng = random.Random(20261203)
    cmd = cycle_cmd(REVIEW, *_state(crashed), "2021")
    # a subprocess spends its first ~2 s importing; the cycle itself runs in the rest of the reference time
    span = max(states["flow_seconds"], 4.0)
    delays = sorted(rng.uniform(1.5, span) for _ in range(4))
    done_before = _succeeded(_state(crashed)[0])
    outcomes = []
    for n, delay in enumerate(delays):
        proc = start(cmd, mkenv(), tmp_path / f"outside-{n}.log")
        try:
            try:
                rc = proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                proc.kill()  # SIGKILL, as `kill -9 PID`
                rc = proc.wait(timeout=30)
        finally:
            kill_group(proc)
        outcomes.append((round(delay, 2), rc))
        if rc != -9 or _succeeded(_state(crashed)[0]) > done_before:
            break  # the cycle completed before its kill moment came (running it again would be another cycle)
    assert outcomes[0][1] == -9, f"the first run was not killed: {outcomes}"
    assert all(rc in (0, -9) for _, rc in outcomes), outcomes
    if _succeeded(_state(crashed)[0]) == done_before:  # the cycle has not completed yet
        rc = run(cmd, mkenv(), tmp_path / "final.log")
        assert rc == 0, (tmp_path / "final.log").read_text()[-3000:]
    _assert_same(states["flow"], crashed)


def _succeeded(wh: Path) -> int:
    con = duckdb.connect(str(wh), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM update_runs WHERE status = 'succeeded'").fetchone()[0]
    finally:
        con.close()


def _counts(wh: Path) -> tuple[int, int]:
    con = duckdb.connect(str(wh), read_only=True)
    try:
        return (con.execute("SELECT count(*) FROM update_runs").fetchone()[0],
                con.execute("SELECT count(*) FROM search_runs").fetchone()[0])
    finally:
        con.close()


def test_second_update_on_a_busy_warehouse_says_so_and_writes_nothing(env, states, tmp_path):
    url, mkenv = env
    d = _copy(states["flow"], tmp_path / "busy")
    wh, out = _state(d)
    before = _counts(wh)
    # the holder: a real CLI update with its own temporary Prefect server (slow to start: it holds the lock
    # for that whole time, since the CLI takes it before starting the flow)
    holder = start(cli_cmd(REVIEW, wh, out, CLI_REPLAY), mkenv(api=None), tmp_path / "holder.log")
    try:
        deadline = time.monotonic() + 60
        while lock_path(wh).read_text().strip() != str(holder.pid) if lock_path(wh).exists() else True:
            assert holder.poll() is None and time.monotonic() < deadline, (tmp_path / "holder.log").read_text()
            time.sleep(0.05)
        # a user's `livingmeta update` while the holder runs, and the flow itself (what `serve` and workers run);
        # each with its own output folder, which must stay unmade
        second = subprocess.run(cli_cmd(REVIEW, wh, tmp_path / "out-cli", CLI_REPLAY), env=mkenv(),
                                capture_output=True, text=True, timeout=120, cwd=REPO)
        flow = subprocess.run(cycle_cmd(REVIEW, wh, tmp_path / "out-flow", "2023"), env=mkenv(), capture_output=True,
                              text=True, timeout=120, cwd=REPO)
        still_holding = holder.poll() is None
        assert holder.wait(timeout=180) == 0, (tmp_path / "holder.log").read_text()[-3000:]
    finally:
        kill_group(holder)
    assert still_holding, "the holder finished before the second update tried: the test proved nothing"
    lines = [line for line in (second.stdout + second.stderr).splitlines() if line.strip()]
    assert second.returncode != 0 and len(lines) == 1, second.stdout + second.stderr
    assert (f"warehouse {wh} is busy (held by PID {holder.pid}): another update is running; try again later"
            in lines[0]), lines
    assert flow.returncode != 0 and f"is busy (held by PID {holder.pid})" in flow.stdout + flow.stderr, (
        flow.stdout + flow.stderr)[-3000:]
    # only the holder's cycle is in the warehouse: one update run, two search runs
    assert _counts(wh) == (before[0] + 1, before[1] + 2)
    assert not (tmp_path / "out-cli").exists() and not (tmp_path / "out-flow").exists()


# ------------------------------------------------------------------ the mechanisms, in-process (no Prefect)

NOW = __import__("datetime").datetime(2024, 3, 1, tzinfo=__import__("datetime").timezone.utc)
HOLD = ("import sys, time; sys.path.insert(0, {repo!r}); from warehouse.lock import update_lock\n"
        "with update_lock({wh!r}):\n    print('held', flush=True); sys.stdin.read()")


def test_update_lock_is_exclusive_across_processes_names_the_holder_and_dies_with_it(tmp_path):
    import sys

    from warehouse.lock import WarehouseBusy, update_lock

    wh = tmp_path / "wh.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", HOLD.format(repo=str(REPO), wh=str(wh))], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseBusy) as e:
            with update_lock(wh):
                pass
        assert str(e.value) == (f"warehouse {wh} is busy (held by PID {holder.pid}): another update is running; "
                                "try again later")
        assert not wh.exists()  # refused before anything was written
        holder.kill()  # kill -9: the kernel drops the lock with its holder
        holder.wait(timeout=10)
    finally:
        holder.kill()
    with update_lock(wh):
        with update_lock(wh):  # re-entrant within a process (the CLI holds it, then the flow takes it again)
            assert lock_path(wh).read_text().strip() == str(__import__("os").getpid())
    assert lock_path(wh).read_text() == ""  # released: no stale PID


def _queued_alert(con, channels):
    from warehouse.alerts import raise_alert

    return raise_alert(con, channels=channels, review_id="r1", kind="estimate_change", severity="warning",
                       title="OR moved", body="OR 2.91 (1.16 to 7.31)", now=NOW, version=3, dedupe_key="version:3")


def test_an_interrupted_file_delivery_is_completed_without_writing_twice(tmp_path, warehouse_path):
    from tasks.alerts import _send_file, deliver_alerts
    from warehouse import opened
    from warehouse.alerts import mark_sending, open_deliveries, undelivered_alerts

    target = tmp_path / "alerts.log"
    with opened(warehouse_path) as con:
        aid = _queued_alert(con, ["file:alerts.log"])
        # what a process killed between writing the entry and recording it leaves: the entry, a 'sending' row
        mark_sending(con, aid, "file:alerts.log")
        _send_file(target, open_deliveries(con, [aid])[0])
        assert undelivered_alerts(con, "r1") == [aid]
        out = deliver_alerts(con, [aid], [{"type": "file", "path": "alerts.log"}], str(tmp_path), now=NOW)
        row = con.execute("SELECT attempts, status, last_error FROM alert_deliveries").fetchone()
        assert undelivered_alerts(con, "r1") == []
    assert target.read_text().count("## [warning] OR moved") == 1
    assert row == (1, "delivered", None) and out[0]["status"] == "delivered"


def test_an_interrupted_webhook_delivery_is_sent_again_and_says_it_may_be_twice(tmp_path, warehouse_path):
    from tasks.alerts import REDELIVERED, deliver_alerts
    from tests.living_seed import Receiver
    from warehouse import opened
    from warehouse.alerts import mark_sending

    with Receiver() as rx, opened(warehouse_path) as con:
        aid = _queued_alert(con, ["webhook:LM_HOOK"])
        mark_sending(con, aid, "webhook:LM_HOOK")  # killed after calling the webhook, before recording it
        deliver_alerts(con, [aid], [{"type": "webhook", "url_env": "LM_HOOK"}], str(tmp_path), now=NOW,
                       environ={"LM_HOOK": rx.url})
        row = con.execute("SELECT attempts, status, last_error FROM alert_deliveries").fetchone()
        # delivered ones are never sent again
        deliver_alerts(con, [aid], [{"type": "webhook", "url_env": "LM_HOOK"}], str(tmp_path), now=NOW,
                       environ={"LM_HOOK": rx.url})
    assert row == (2, "delivered", REDELIVERED)
    assert len(rx.received) == 1 and rx.received[0]["title"] == "OR moved" and "channel" not in rx.received[0]


def test_publish_removes_what_a_killed_publisher_left(tmp_path, warehouse_path):
    import os

    from tasks.publish import _write_atomic, remove_stale_temp_files
    from warehouse.publish import publish_snapshot

    out = tmp_path / "out"
    publish_snapshot(warehouse_path, out)
    snap = out / "snapshot"
    # leftovers of a publisher killed mid-way: a half copy, a temporary link, an export never linked
    (snap / ".warehouse-20240301T000000-99999-deadbeef.duckdb").write_bytes(b"half")
    os.symlink("parquet-x", snap / ".parquet-x.link")
    orphan = snap / "parquet-29991231T000000-deadbeef"
    orphan.mkdir()
    os.utime(orphan, ns=(2**62, 2**62))  # newer than the linked export
    publish_snapshot(warehouse_path, out)
    assert not [p.name for p in snap.iterdir() if p.name.startswith(".")]
    assert not orphan.exists()
    # a report folder: a dead writer's temporary file goes, a live writer's stays
    folder = tmp_path / "v1"
    folder.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (folder / f".report.html.{dead.pid}-0000.tmp").write_text("half")
    (folder / f".report.md.{os.getpid()}-0000.tmp").write_text("in flight")
    _write_atomic(folder / "report.json", "{}")
    assert [p.name for p in remove_stale_temp_files(folder)] == [f".report.html.{dead.pid}-0000.tmp"]
    assert sorted(p.name for p in folder.iterdir()) == [f".report.md.{os.getpid()}-0000.tmp", "report.json"]


def test_registry_events_of_an_update_killed_after_its_search_are_still_alerted(warehouse_path):
    from warehouse import opened
    from warehouse.analysis import update_events

    with opened(warehouse_path) as con:
        con.execute("INSERT INTO update_runs (update_id, review_id, started_at, status, as_of) VALUES "
                    "(1, 'r1', ?, 'succeeded', ?), (2, 'r1', ?, 'interrupted', ?), (3, 'r1', ?, 'running', ?)",
                    [NOW] * 6)
        con.execute("INSERT INTO search_runs (run_id, review_id, update_id, source, query, mode, started_at, status) "
                    "VALUES (10, 'r1', 1, 'ctgov', 'q', 'replay', ?, 'succeeded'), "
                    "(20, 'r1', 2, 'ctgov', 'q', 'replay', ?, 'succeeded')", [NOW, NOW])
        con.execute("INSERT INTO review_records (review_id, record_id, first_run_id, first_seen_at, last_run_id) "
                    "VALUES ('r1', 'ctgov:NCT1', 10, ?, 20)", [NOW])
        con.execute("INSERT INTO registry_events (event_id, record_id, run_id, kind, old_value, new_value, occurred_at) "
                    "VALUES (1, 'ctgov:NCT1', 10, 'status', 'A', 'B', ?), (2, 'ctgov:NCT1', 20, 'status', 'B', 'C', ?)",
                    [NOW, NOW])
        # update 3 found the record unchanged; update 2 (killed) stored the event but never alerted it
        assert [e["event_id"] for e in update_events(con, "r1", 3)] == [2]
        assert [e["event_id"] for e in update_events(con, "r1", 1)] == [1]


def test_kill_hook_is_a_no_op_unless_armed_and_reads_point_and_nth(monkeypatch):
    from flows import settings
    from tasks import runtime

    monkeypatch.delenv("LIVINGMETA_TEST_KILL_AT", raising=False)
    assert settings.test_kill_at() is None
    runtime.configure_kill_at(None)
    runtime.kill_point("published")  # unarmed: returns
    monkeypatch.setenv("LIVINGMETA_TEST_KILL_AT", "analysis-stored:2")
    assert settings.test_kill_at() == ("analysis-stored", 2)
    monkeypatch.setenv("LIVINGMETA_TEST_KILL_AT", "published")
    assert settings.test_kill_at() == ("published", 1)
    monkeypatch.setenv("LIVINGMETA_TEST_KILL_AT", "published:zero")
    with pytest.raises(ValueError, match="LIVINGMETA_TEST_KILL_AT"):
        settings.test_kill_at()
    runtime.configure_kill_at(("published", 3))
    runtime.kill_point("published")
    runtime.kill_point("published")  # armed for the 3rd hit only: still alive
    runtime.configure_kill_at(None)
