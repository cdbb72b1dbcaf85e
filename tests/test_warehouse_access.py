"""Taking turns on the warehouse file (warehouse/access.py): a second process waits for the first one's
connection to close instead of failing, re-entry in one thread does not deadlock, and a timed-out wait still
ends in DuckDB's clear "open in another process" error."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

from warehouse import opened
from warehouse.access import turn
from warehouse.db import WarehouseError

HOLD = textwrap.dedent("""
    import sys, time
    from warehouse import opened
    with opened(sys.argv[1]) as con:
        print("holding", flush=True)
        time.sleep(float(sys.argv[2]))
        con.execute("CREATE TABLE IF NOT EXISTS held (x INT)")
""")


def _holder(path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_a_second_process_waits_its_turn_instead_of_failing(warehouse_path):
    proc = _holder(warehouse_path, 1.5)
    t0 = time.monotonic()
    with opened(warehouse_path) as con:  # DuckDB alone would refuse at once: the file is open elsewhere
        waited = time.monotonic() - t0
        assert con.execute("SELECT count(*) FROM held").fetchone() == (0,)  # the holder's write is visible
    assert proc.wait(timeout=30) == 0
    assert waited > 0.5


def test_when_the_wait_runs_out_duckdb_still_says_what_is_wrong(warehouse_path):
    proc = _holder(warehouse_path, 4)
    try:
        with turn(warehouse_path, wait_seconds=0.3) as waited:
            assert waited >= 0.3
            with pytest.raises(WarehouseError, match="open in another process"):
                from warehouse import connect
                connect(warehouse_path)
    finally:
        proc.wait(timeout=30)


def test_nested_opens_in_one_thread_share_the_turn_and_other_threads_wait(warehouse_path):
    order = []
    with opened(warehouse_path) as outer:
        with opened(warehouse_path) as inner:  # re-entrant: no deadlock
            inner.execute("CREATE TABLE t (x INT)")

        def other():
            with opened(warehouse_path) as con:
                order.append("other")
                con.execute("INSERT INTO t VALUES (2)")
        th = threading.Thread(target=other)
        th.start()
        time.sleep(0.3)
        order.append("outer")  # the other thread is still waiting for this thread's turn
        outer.execute("INSERT INTO t VALUES (1)")
    th.join(timeout=30)
    assert order == ["outer", "other"]
    with opened(warehouse_path) as con:
        assert con.execute("SELECT list(x ORDER BY x) FROM t").fetchone() == ([1, 2],)
