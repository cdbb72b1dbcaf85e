"""What a cycle tells Prefect: run-logger lines, honest final states, artifacts and events.

Everything here is a no-op (or a plain Python logger) outside a Prefect run, so tasks keep working as plain
functions in tests and scripts. Every string that leaves for Prefect passes through `livingmeta.redaction`
first: a server may echo a secret (an API key in a URL, a webhook path) inside an error message.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

from livingmeta.redaction import redact_data, redact_exception, redact_text

EVENT_PREFIX = "livingmeta"
# alert kind -> Prefect event name (an Automation matches these, e.g. "livingmeta.source.failed" or "livingmeta.*")
ALERT_EVENTS = {
    "estimate_change": "livingmeta.version.published",
    "new_candidates": "livingmeta.candidates.waiting",
    "search_failed": "livingmeta.source.failed",
    "registry_event": "livingmeta.registry.changed",
    "study_merged": "livingmeta.study.merged",
    "registry_results_changed": "livingmeta.registry.results-changed",
    "source_record_skipped": "livingmeta.source.records-skipped",
    "source_record_unrequested": "livingmeta.source.records-unrequested",
}  # any other kind: livingmeta.alert.<kind>
ESTIMATE_SHIFTED = "livingmeta.estimate.shifted"

_fallback = logging.getLogger("livingmeta")


def in_prefect_run() -> bool:
    """True inside a Prefect flow or task run (where run loggers, artifacts and states exist)."""
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def _logger() -> logging.Logger | logging.LoggerAdapter:
    if in_prefect_run():
        from prefect import get_run_logger

        return get_run_logger()
    return _fallback


def log(message: str, *args: Any, level: int = logging.INFO) -> None:
    """One line to the run's logger (it reaches the Prefect API), redacted; the plain logger outside a run."""
    text = message % args if args else message
    _logger().log(level, "%s", redact_text(text))


def redacts_exceptions(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a task or flow function so that any exception leaving it has its message redacted.

    Prefect builds a FAILED state's message (stored on the server, shown in the UI, sent by automations) from
    the exception text; our own errors are `RedactedError`s already, but an httpx/duckdb/OS error may quote a
    URL holding a key. Every task and flow of the cycle is wrapped (tests/test_import_rule.py checks it).
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BaseException as e:
            redact_exception(e)
            raise

    wrapper.__livingmeta_redacts__ = True
    return wrapper


def artifact_slug(review_id: str) -> str:
    """A review id as Prefect artifact keys allow it (lower-case letters, digits, dashes)."""
    return "".join(c if c.isalnum() else "-" for c in review_id.lower()).strip("-") or "review"


def review_resource(review_id: str, title: str | None = None) -> dict[str, str]:
    """The Prefect event resource naming one review."""
    res = {"prefect.resource.id": f"{EVENT_PREFIX}.review.{review_id}", "livingmeta.review-id": review_id}
    if title:
        res["prefect.resource.name"] = title
    return redact_data(res)


def emit(event: str, review_id: str, payload: Mapping[str, Any], *, title: str | None = None) -> bool:
    """Emit one Prefect event about a review (redacted payload, the flow run as related resource).

    Returns:
        True when an event was handed to Prefect's events client; False outside a Prefect run.
    """
    if not in_prefect_run():
        return False
    from prefect.events import emit_event

    related = []
    from prefect.runtime import flow_run

    if flow_run.get_id():
        related.append({"prefect.resource.id": f"prefect.flow-run.{flow_run.get_id()}",
                        "prefect.resource.role": "flow-run"})
    try:
        emit_event(event=event, resource=review_resource(review_id, title), related=related or None,
                   payload=redact_data(_jsonable(payload)))
    except Exception as e:  # telling Prefect must never undo a committed cycle: say so and go on
        log("could not emit event %s: %s: %s", event, type(e).__name__, e, level=logging.WARNING)
        return False
    return True


def _jsonable(value: Any) -> Any:
    """Dates and other scalars as strings: Prefect event payloads are JSON."""
    import json

    return json.loads(json.dumps(value, default=str))


def _searched(summary: Mapping[str, Any], as_of: Any = None, replay_dir: str | None = None) -> str:
    """What a search looked at, for people: its window, or the recorded answers it replayed."""
    if summary.get("mode") == "replay":
        return f"recorded answers in {replay_dir}" if replay_dir else "recorded answers (replay)"
    end = as_of.date().isoformat() if hasattr(as_of, "date") else (str(as_of)[:10] if as_of else "now")
    window = summary.get("window")
    start = window[0] if window else summary.get("window_start")
    return f"window {start}..{window[1] if window else end}" if start else "its whole period"


def source_state(summary: dict, as_of: Any = None, replay_dir: str | None = None):
    """A source search's summary as the task run's final state inside Prefect: Failed when the search failed
    (message names the source and the reason; data is the summary), Completed otherwise; the summary itself
    outside a run (plain calls keep returning dicts)."""
    if not in_prefect_run():
        return summary
    from prefect.states import Completed, Failed

    source, status = summary.get("source", "source"), summary.get("status")
    where = _searched(summary, as_of, replay_dir)
    if status == "failed":
        message = f"{source} search failed: {summary.get('error') or 'no message'}"
        log("%s (searched %s; nothing from it was stored; the next run retries the same window)", message, where,
            level=logging.ERROR)
        return Failed(message=redact_text(message), data=redact_data(summary))
    if status == "skipped":
        log("%s: not configured or disabled, skipped", source)
        return Completed(message=f"{source}: skipped", data=summary)
    counts = ", ".join(f"{summary.get(k, 0)} {k}" for k in ("new", "changed", "unchanged", "deleted"))
    message = f"{source}: searched {where}; {summary.get('found', '?')} found: {counts}"
    log("%s (%s request(s))", message, summary.get("requests", 0))
    return Completed(message=redact_text(message), data=redact_data(summary))


def reports_source_state(fn: Callable[..., dict]) -> Callable[..., Any]:
    """Decorate a search task's function so that a failed search ends as a FAILED task run (see source_state)."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        summary = fn(*args, **kwargs)
        bound = sig.bind_partial(*args, **kwargs).arguments
        return source_state(summary, bound.get("as_of"), bound.get("replay_dir"))

    return wrapper


def state_result(state) -> Any:
    """The data a task or flow state carries (the summary), whether it completed or failed.

    Raises:
        the run's exception when the run failed by raising (a bug or a user error), not by returning a state.
    """
    value = state.result(raise_on_failure=False)
    if isinstance(value, BaseException):
        raise value
    return value


def failures(summary: Mapping[str, Any]) -> list[str]:
    """What failed in a cycle, one phrase each: failed source searches and analyses that could not run."""
    out = [f"{s.get('source')} search failed: {str(s.get('error') or 'no message').rstrip('. ')}"
           for s in summary.get("searches") or [] if s.get("status") == "failed"]
    for a in (summary.get("analyses") or {}).get("failed") or []:
        out.append(f"analysis {a.get('analysis')} failed: {str(a.get('error')).rstrip('. ')}" if isinstance(a, Mapping)
                   else f"analysis {a} failed")
    return out


def cycle_message(summary: Mapping[str, Any]) -> tuple[bool, str]:
    """(failed?, one line for people) describing how a cycle ended."""
    rid = summary.get("review_id", "?")
    version = summary.get("version") or {}
    problems = failures(summary)
    if version.get("version"):
        outcome = f"published version {version['version']} of {rid}"
    elif version.get("latest_version"):
        outcome = f"no new version: estimates unchanged (latest is version {version['latest_version']} of {rid})"
    else:
        outcome = f"no new version: no analysis of {rid} has data yet"
    undelivered = version.get("delivery_failures") or []
    if undelivered:
        channels = sorted({d.get("channel") for d in undelivered})
        outcome += (f"; {len(undelivered)} alert delivery(ies) failed ({', '.join(channels)}: "
                    f"{str(undelivered[0].get('error') or '').rstrip('. ')}), tried again next cycle")
    if not problems:
        return False, outcome
    sources_failed = any(s.get("status") == "failed" for s in summary.get("searches") or [])
    text = "; ".join(problems)
    retry = "; the next run retries the same window" if sources_failed and "retries the same window" not in text else ""
    return True, f"update of {rid} failed: {text}{retry}; the rest of the cycle was committed ({outcome})"


def cycle_state(summary: dict):
    """The flow run's final state for one cycle: FAILED when a search or an analysis failed, else COMPLETED,
    with a message naming the version published or saying why none was; data is the summary."""
    from prefect.states import Completed, Failed

    failed, message = cycle_message(summary)
    message = redact_text(message)
    log("%s", message, level=logging.ERROR if failed else logging.INFO)
    data = redact_data(summary)
    return Failed(message=message, data=data) if failed else Completed(message=message, data=data)
