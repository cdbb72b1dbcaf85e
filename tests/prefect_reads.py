"""Reading back what a flow run told the Prefect server (the session test harness): its state, task runs,
logs, artifacts and events — through the Prefect client, as a dashboard or an Automation would see them.

Logs and events travel in background batches: `flush()` drains both workers before reading, and event
reads poll, because the server stores events asynchronously.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "reviews" / "ivig-pnp"


def copy_review(tmp_path: Path, review_id: str) -> Path:
    """A writable copy of the bundled example review under its own id: the session's Prefect server is
    shared, and artifacts and events are per review (the demo's `ivig-pnp` must stay the demo's alone)."""
    review = tmp_path / review_id
    shutil.copytree(EXAMPLE, review)
    toml = review / "review.toml"
    text = toml.read_text(encoding="utf-8")
    assert '\nid = "ivig-pnp"\n' in text
    toml.write_text(text.replace('\nid = "ivig-pnp"\n', f'\nid = "{review_id}"\n', 1), encoding="utf-8")
    return review


def step_inputs(review: Path, step: str) -> list[str]:
    """The recorded decisions and extraction files of one timeline step."""
    return [str(review / "snapshots" / step / f) for f in ("decisions.csv", "extraction.csv")]


def live_ctgov_review(tmp_path: Path, review_id: str) -> Path:
    """The example review with PubMed replaying its 2010 answers and ClinicalTrials.gov searched live."""
    review = copy_review(tmp_path, review_id)
    toml = review / "review.toml"
    text = toml.read_text(encoding="utf-8")
    assert "overlap_days = 7\n" in text
    toml.write_text(text.replace("overlap_days = 7\n", 'overlap_days = 7\nreplay = "snapshots/2010/pubmed"\n', 1),
                    encoding="utf-8")
    return review


def flush() -> None:
    """Send every log line and event still batched in this process to the server."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)


def client():
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def flow_run_of(state):
    """The flow run (as the server stores it) that ended in `state`."""
    with client() as c:
        return c.read_flow_run(state.state_details.flow_run_id)


def task_runs(flow_run_id) -> dict:
    """task name (its `task_key` prefix-free name, e.g. "search-pubmed") -> the task run, for one flow run."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with client() as c:
        runs = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    out = {}
    for r in runs:
        out.setdefault(r.name.rsplit("-", 1)[0], []).append(r)
    return out


def logs(flow_run_id) -> list:
    """Every log record the server holds for a flow run (its task runs' included), oldest first."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import LogSort

    flush()
    with client() as c:
        return c.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                           sort=LogSort.TIMESTAMP_ASC, limit=200)


def artifacts(flow_run_id) -> dict:
    """artifact key -> the artifacts one flow run created under it."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with client() as c:
        arts = c.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    out: dict = {}
    for a in arts:
        out.setdefault(a.key, []).append(a)
    return out


def events(resource_id: str, flow_run_id, *, expect: set[str] = frozenset(), timeout: float = 30.0) -> list:
    """Events about `resource_id` related to one flow run, read with POST /api/events/filter; polls until
    every event name in `expect` arrived (the server persists events in the background) or `timeout`."""
    from prefect.events.filters import EventFilter, EventOccurredFilter, EventRelatedFilter, EventResourceFilter

    flush()
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
    flt = EventFilter(occurred=EventOccurredFilter(since=since, until=dt.datetime.now(dt.timezone.utc)
                                                   + dt.timedelta(hours=1)),
                      resource=EventResourceFilter(id=[resource_id]),
                      related=EventRelatedFilter(id=[f"prefect.flow-run.{flow_run_id}"]))
    deadline = time.monotonic() + timeout
    while True:
        with client() as c:
            page = c.read_events(filter=flt, limit=50)
        got = list(page.events)
        if expect <= {e.event for e in got} or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


SECRET = "lm-states-secret-4f9a2c7e"  # a registered secret the failing server echoes in its error


class RefusingCtgov:
    """ClinicalTrials.gov on 127.0.0.1: answers HTTP 400 echoing a secret until `healed`, then no studies."""

    def __init__(self):
        self.healed = False
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                outer.requests.append(self.path)
                if outer.healed:
                    status, body = 200, json.dumps({"studies": [], "totalCount": 0}).encode()
                else:
                    status, body = 400, f"unknown parameter (request from {SECRET})".encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def refusing_ctgov(monkeypatch):
    """The flow's ClinicalTrials.gov client pointed at a RefusingCtgov (one try, no waits); SECRET registered."""
    from livingmeta.redaction import forget_secrets, register_secret

    srv = RefusingCtgov()
    for k, v in {"LIVINGMETA_CTGOV_URL": srv.url, "LIVINGMETA_CTGOV_MAX_TRIES": "1", "LIVINGMETA_CTGOV_BACKOFF": "0",
                 "LIVINGMETA_CTGOV_MIN_INTERVAL": "0", "LIVINGMETA_CTGOV_TIMEOUT": "5"}.items():
        monkeypatch.setenv(k, v)
    register_secret(SECRET)
    try:
        yield srv
    finally:
        srv.close()
        forget_secrets()
