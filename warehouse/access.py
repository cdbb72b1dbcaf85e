"""Taking turns on the warehouse file: one process has it open at a time, and the others wait their turn.

DuckDB lets one process open a database file for writing, and refuses a second one at once ("Could not set
lock on file"). With one user at a time that was enough: the nightly update opens and closes the warehouse
once per step, and a person's command ran between cycles. With the web app, people screen *while* the
update runs, so two processes want the file within milliseconds of each other, again and again; whichever
came second would fail (a failed nightly step, or a lost click).

So every `warehouse.opened(...)` first takes an exclusive `fcntl.flock` on `<warehouse>.access` beside the
file, and holds it while the connection is open. A process that finds it taken waits (polling every few
milliseconds) up to `wait_seconds` and then opens the file as before; the wait is bounded by the longest
single step of whoever holds it (a web request holds it for one short transaction; an update step for that
step). Within one process the turn is a re-entrant lock per warehouse: nested `opened()` calls in one
thread share it, and other threads of the process wait for it, which also serialises the web app's writes
(DuckDB's optimistic concurrency would otherwise make two concurrent decisions conflict). The kernel
releases the lock when its holder dies, also on `kill -9`.

This is separate from the update lock (`warehouse.lock`, one update *cycle* at a time): that one is held for
a whole cycle and refuses a second cycle; this one is held per connection and makes the others wait.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

DEFAULT_WAIT_SECONDS = 60.0
_POLL_SECONDS = 0.003

_guard = threading.Lock()
_turns: dict[str, threading.RLock] = {}
_held: dict[str, list[int]] = {}  # key -> [fd, depth], for the thread that holds the turn
_wait = DEFAULT_WAIT_SECONDS


def set_wait(seconds: float) -> None:
    """How long `opened()` waits for another process's turn before trying the file anyway (settings call it)."""
    global _wait
    _wait = max(0.0, float(seconds))


def access_path(warehouse: str | Path) -> Path:
    """The turn file of a warehouse: `<warehouse>.access` beside it."""
    return Path(f"{warehouse}.access")


def _worth_a_turn(target: Path, create: bool) -> bool:
    """A DuckDB file, or one about to be created: yes. A folder, another kind of file, or a missing file a
    read-only open will not create: no (the open fails with its own message and no turn file is left).

    Called only by the thread that just took the process's turn and held none before, so no connection of
    this process is open on the file: reading its header here cannot drop a DuckDB lock of this process
    (closing any descriptor of a file drops the process's POSIX locks on it)."""
    if not target.exists():
        return create
    if not target.is_file():
        return False
    try:
        with target.open("rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    return head[8:12] == b"DUCK"


def _turn(key: str) -> threading.RLock:
    with _guard:
        return _turns.setdefault(key, threading.RLock())


@contextlib.contextmanager
def turn(warehouse: str | Path, wait_seconds: float | None = None, create: bool = True) -> Iterator[float]:
    """Hold this process's turn on `warehouse` for the block; yields the seconds waited for it.

    Waits up to `wait_seconds` (default: `set_wait`, 60 s) for other threads and processes. When the wait
    runs out the block runs anyway, so the caller meets DuckDB's own clear "open in another process" error
    instead of hanging. A folder, or a missing file that will not be created (`create=False`: a read-only
    open), takes no turn and leaves no turn file behind.
    """
    target = Path(warehouse)
    if str(warehouse) == ":memory:" or target.is_dir() or (not target.exists() and not create):
        # nothing to take turns on: the open that follows fails with its own message and leaves nothing behind
        yield 0.0
        return
    wait = _wait if wait_seconds is None else max(0.0, wait_seconds)
    path = access_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(path)
    started = time.monotonic()
    rlock = _turn(key)
    got_thread = rlock.acquire(timeout=wait) if wait > 0 else rlock.acquire(blocking=False)
    fd = None
    try:
        if got_thread and key in _held:  # re-entered by the thread that holds it
            _held[key][1] += 1
            fd = -1
        elif got_thread and not _worth_a_turn(target, create):
            pass  # not a DuckDB file: the open that follows fails with its own message, no turn file is left
        elif got_thread:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    _held[key] = [fd, 1]
                    break
                except BlockingIOError:
                    if time.monotonic() - started >= wait:
                        os.close(fd)
                        fd = None
                        break
                    time.sleep(_POLL_SECONDS)
        yield time.monotonic() - started
    finally:
        if fd is not None:
            entry = _held[key]
            entry[1] -= 1
            if not entry[1]:
                del _held[key]
                os.close(entry[0])  # closing the descriptor releases the flock
        if got_thread:
            rlock.release()
