"""Exceptions raised inside the cycle's tasks and flow reach Prefect (state messages) redacted."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import tasks
from livingmeta import redaction
from livingmeta.redaction import MASK, redact_exception

SECRET = "ncbi-key-7f3a9c2e1b"


@pytest.fixture(autouse=True)
def _registry():
    redaction.forget_secrets()
    redaction.register_secret(SECRET)
    yield
    redaction.forget_secrets()


def _redacts(fn) -> bool:
    while fn is not None:
        if getattr(fn, "__livingmeta_redacts__", False):
            return True
        fn = getattr(fn, "__wrapped__", None)
    return False


def test_every_task_of_the_cycle_redacts_its_exceptions():
    from prefect import Task

    from flows.update import update_review

    found = []
    for mod in pkgutil.iter_modules(tasks.__path__):
        m = importlib.import_module(f"tasks.{mod.name}")
        for name, obj in vars(m).items():
            if isinstance(obj, Task) and obj.fn.__module__ == m.__name__:
                found.append((m.__name__, name, _redacts(obj.fn)))
    assert len(found) >= 13, found
    assert [f for f in found if not f[2]] == []
    # the flow is not wrapped (Prefect validates its parameters from its own module's annotations): it redacts
    # in its except clause, and the exceptions of its tasks arrive redacted already
    import inspect

    assert "redact_exception(e)" in inspect.getsource(update_review.fn)


def test_redact_exception_reaches_causes_and_contexts():
    try:
        try:
            raise OSError(f"GET https://x.invalid/?api_key={SECRET} failed")
        except OSError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        redact_exception(outer)
        assert SECRET not in str(outer.__cause__)
        assert MASK in str(outer.__cause__)


def test_a_failed_task_state_message_on_the_server_holds_no_secret(prefect_harness):
    from prefect import flow, task
    from prefect.client.orchestration import get_client

    from tasks.observe import redacts_exceptions

    @task(name="echoing-task")
    @redacts_exceptions
    def echoing_task():
        # what httpx does: the request URL, key included, inside the error text
        raise OSError(f"Server error '500' for url 'http://127.0.0.1:1/efetch.fcgi?api_key={SECRET}'")

    @flow(name="echoing-flow")
    def echoing_flow():
        return echoing_task()

    state = echoing_flow(return_state=True)
    assert state.is_failed()

    async def read():
        async with get_client() as client:
            run = await client.read_flow_run(state.state_details.flow_run_id)
            task_runs = await client.read_task_runs()
            return run, [t for t in task_runs if t.flow_run_id == run.id]

    import asyncio

    run, task_runs = asyncio.run(read())
    messages = [run.state.message] + [t.state.message for t in task_runs]
    assert task_runs and all(m for m in messages)
    for m in messages:
        assert SECRET not in m, m
    assert any(MASK in m for m in messages), messages
