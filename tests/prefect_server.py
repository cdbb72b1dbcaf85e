"""A real `prefect server start` process for tests (not the in-process `prefect_test_harness`).

`running_prefect_server(folder)` starts one server on a free port of 127.0.0.1 with its own PREFECT_HOME
(so its SQLite database and settings live in `folder`), waits until `/api/health` answers and always stops
it again. `start_process` / `stop_process` run other commands (`livingmeta serve`, `prefect worker start`,
...) as process groups pointed at that server, with their output in log files the tests can read.

The server runs its services (scheduler, late-runs, ...) as a user's server does; its log is kept so tests can
check the scheduler never raised (`server.tracebacks()`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import httpx

T = TypeVar("T")
# the console scripts of this environment (the venv the tests run in), never whatever is first on PATH
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], T], timeout: float, what: str, interval: float = 0.5,
             alive: Callable[[], str | None] | None = None) -> T:
    """Poll `check()` until it returns something truthy; fail after `timeout` seconds saying what was awaited.

    `alive()` may return a message (e.g. "serve exited with 1: <log tail>") to stop waiting early.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            got = check()
            if got:
                return got
        except (httpx.HTTPError, OSError) as e:  # the server may be busy or restarting a connection
            last_error = e
        if alive is not None and (msg := alive()):
            raise AssertionError(f"gave up waiting for {what}: {msg}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}"
                                 + (f" (last error: {last_error!r})" if last_error else ""))
        time.sleep(interval)


def start_process(cmd: list[str], log: Path, env: dict[str, str], cwd: Path | None = None,
                  stderr_log: Path | None = None) -> subprocess.Popen:
    """Start `cmd` in its own process group (so it and its children can be stopped together), output to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "wb")
    err = open(stderr_log, "wb") if stderr_log else subprocess.STDOUT
    try:
        return subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
                                cwd=str(cwd) if cwd else None, start_new_session=True)
    finally:
        out.close()
        if stderr_log:
            err.close()


def stop_process(proc: subprocess.Popen, grace: float = 10.0) -> int:
    """SIGTERM the process group of `proc`, SIGKILL what is left after `grace` seconds; returns the exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    # children (flow runs, uvicorn workers) may outlive the leader: the whole group goes
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)
    return proc.returncode


def tail(path: Path, chars: int = 3000) -> str:
    """The end of a log file (for failure messages)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except FileNotFoundError:
        return "(no log)"


@dataclass
class PrefectServer:
    """A running `prefect server start`: its API URL, home folder and log."""

    api_url: str
    home: Path
    log: Path
    process: subprocess.Popen

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a client process (serve, worker, `prefect deploy`) talking to this server.

        Clients get their own PREFECT_HOME beside the server's, so no profile of the user is read or written.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        client_home = self.home.parent / "client-home"
        client_home.mkdir(exist_ok=True)
        env.update(PREFECT_HOME=str(client_home), PREFECT_API_URL=self.api_url,
                   PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="INFO",
                   PYTHONUNBUFFERED="1")
        env.update(extra)
        return env

    def client(self) -> httpx.Client:
        """A plain HTTP client on the server's REST API (base URL ends in /api/)."""
        return httpx.Client(base_url=self.api_url.rstrip("/") + "/", timeout=20.0)

    def request(self, method: str, path: str, timeout: float = 60.0, **kwargs) -> httpx.Response:
        """One REST call, retried while the server answers 502/503 or drops the connection (SQLite busy under load).

        Prefect's own client retries these too; other statuses are returned as they are.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.client() as c:
                    r = c.request(method, path, **kwargs)
                if r.status_code not in (502, 503) or time.monotonic() > deadline:
                    return r
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(1.0)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def tracebacks(self) -> list[str]:
        """Tracebacks and ERROR lines in the server log (its scheduler logs failures there and carries on)."""
        lines = self.log_text().splitlines()
        blocks = []
        for i, line in enumerate(lines):
            if " | ERROR " in line or line.startswith("ERROR"):
                blocks.append(line)
            elif "Traceback (most recent call last)" in line:
                # up to the exception line (the first unindented line after the frames), which says what went wrong
                end = next((j for j in range(i + 1, len(lines)) if lines[j] and not lines[j][0].isspace()), len(lines) - 1)
                frames = lines[i:end + 1]
                text = "\n".join(frames[:3] + ["  ..."] + frames[-6:] if len(frames) > 12 else frames)
                if blocks and i > 0 and blocks[-1] == lines[i - 1]:  # the ERROR line that introduced it
                    blocks[-1] += "\n" + text
                else:
                    blocks.append(text)
        return blocks

    def alive(self) -> str | None:
        """None while the server runs; else why it stopped."""
        if self.process.poll() is None:
            return None
        return f"prefect server exited with {self.process.returncode}:\n{tail(self.log)}"


def _healthy(api_url: str) -> bool:
    r = httpx.get(api_url.rstrip("/") + "/health", timeout=5.0)
    return r.status_code == 200


@contextlib.contextmanager
def running_prefect_server(folder: Path, timeout: float = 150.0, **settings: str) -> Iterator[PrefectServer]:
    """Start `prefect server start` on a free 127.0.0.1 port with PREFECT_HOME in `folder`; stop it on exit.

    `settings` are extra PREFECT_* variables for the server (e.g. scheduler loop seconds).
    """
    folder = Path(folder)
    home = folder / "server-home"
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false",
               PREFECT_SERVER_API_HOST="127.0.0.1", PREFECT_SERVER_API_PORT=str(port),
               PREFECT_LOGGING_SERVER_LEVEL="WARNING", PYTHONUNBUFFERED="1")
    env.update(settings)
    log = folder / "prefect-server.log"
    proc = start_process([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                         log, env)
    server = PrefectServer(api_url=f"http://127.0.0.1:{port}/api", home=home, log=log, process=proc)
    try:
        wait_for(lambda: _healthy(server.api_url), timeout, f"prefect server on port {port} to answer /api/health",
                 alive=server.alive)
        yield server
    finally:
        stop_process(proc)
