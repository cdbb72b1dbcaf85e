"""One update cycle at a time per warehouse: an OS lock file beside it, held for the whole cycle.

DuckDB's own file lock only lasts while a connection is open, and each task of a cycle opens and closes its
own connection; between two tasks another process could slip in and run a second cycle on the same
warehouse, interleaving its search runs, versions and alerts with the first. So a cycle holds an exclusive
`fcntl.flock` on `<warehouse>.lock` from before its first write to after its last. The CLI takes it before
starting the flow (so a busy warehouse fails in one line before anything is written) and the flow takes it
again itself (so `serve`, workers and plain calls are protected too); within one process the lock is
re-entrant. The kernel drops the lock when its holder dies, also on `kill -9`: a crash never leaves a stale
lock behind. The file holds the holder's PID, for the message the other process prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from warehouse.db import WarehouseError


class WarehouseBusy(WarehouseError):
    """Another process is running an update cycle on this warehouse."""


_guard = threading.Lock()
_held: dict[str, list[int]] = {}  # lock file -> [file descriptor, depth] held by this process


def lock_path(warehouse: str | Path) -> Path:
    """The lock file of a warehouse: `<warehouse>.lock` beside it."""
    return Path(f"{warehouse}.lock")


def _holder(fd: int) -> str | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return text if text.isdigit() else None


def _acquire(warehouse: str | Path) -> str:
    path = lock_path(warehouse)
    key = os.path.realpath(path)
    with _guard:
        if key in _held:
            _held[key][1] += 1
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(fd)
            os.close(fd)
            raise WarehouseBusy(
                f"warehouse {warehouse} is busy ({f'held by PID {pid}' if pid else 'locked'}): another "
                "update is running; try again later"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        _held[key] = [fd, 1]
        return key


def _release(key: str) -> None:
    with _guard:
        entry = _held[key]
        entry[1] -= 1
        if entry[1]:
            return
        del _held[key]
        fd = entry[0]
        try:
            os.ftruncate(fd, 0)  # no stale PID for the next reader; the file itself stays (removing it would race)
        finally:
            os.close(fd)  # closing the last descriptor releases the flock


@contextlib.contextmanager
def update_lock(warehouse: str | Path) -> Iterator[None]:
    """Hold the warehouse's update lock for the block (re-entrant within a process).

    Args:
        warehouse: the warehouse file (":memory:" needs no lock).
    Raises:
        WarehouseBusy: another process holds it; the message names its PID when known. Nothing was written.
    """
    if str(warehouse) == ":memory:":
        yield
        return
    key = _acquire(warehouse)
    try:
        yield
    finally:
        _release(key)
