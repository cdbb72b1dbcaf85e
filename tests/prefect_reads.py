"""Reading back what a flow run told the Prefect server (the session test harness): its state, task runs,
logs, artifacts and events — through the Prefect client, as a dashboard or an Automation would see them.

Logs and events travel in background batches: `flush()` drains both workers before reading, and event
reads poll, because the server stores events asynchronously.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path

from tests.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "reviews" / "ivig-pnp"


def copy_review(tmp_path: Path) -> Path:
    """A writable copy of the bundled example review."""
    review = tmp_path / "ivig-pnp"
    shutil.copytree(EXAMPLE, review)
    return review


def flush() -> None:
    """Send every log line and event still batched in this process to the server."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogHandler

    APILogHandler.flush()
    EventsWorker.drain_all()


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
                           sort=LogSort.TIMESTAMP_ASC, limit=1000)


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
            page = c.read_events(filter=flt, limit=200)
        got = list(page.events)
        if expect <= {e.event for e in got} or time.monotonic() > deadline:
            return got
        time.sleep(0.5)
