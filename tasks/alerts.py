"""Alert delivery: the alerts table is written by whoever raises an alert; this module delivers them to the
review's channels (file, Prefect notification block, webhook) and to the review's change-log artifact.

A failed delivery is retried a few times with a short backoff, recorded in `alert_deliveries`, and never
raises: publishing a version must not depend on Slack being up.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import duckdb
import httpx
from prefect import task

from tasks.observe import redacts_exceptions

from livingmeta.alerting import channel_name  # noqa: F401 - also imported from here
from livingmeta.config import ReviewConfig
from livingmeta.redaction import redact_text, register_secret, safe_message
from tasks import runtime
from warehouse.alerts import (alerts_since, cycle_alert_rows, cycle_start, delivery_window_start, mark_sending,
                              open_deliveries, queue_deliveries, record_delivery, undelivered_alerts)
from warehouse.db import safe_text

ATTEMPTS = 3
BACKOFF_SECONDS = 0.25
TIMEOUT_SECONDS = 10.0


def artifact_key(review_id: str) -> str:
    """The review's change-log artifact key (Prefect keys allow lower-case letters, digits and dashes)."""
    return f"{review_id.lower().replace('_', '-')}-changes"


def _in_prefect_run() -> bool:
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def write_changelog_artifact(review_id: str, markdown: str, description: str) -> str | None:
    """Add an entry to the review's markdown artifact (its history is the change log); None outside a run."""
    if not _in_prefect_run():
        return None  # plain function calls (tests, scripts) have no Prefect run to attach an artifact to
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(key=artifact_key(review_id), markdown=redact_text(markdown),
                             description=redact_text(description))
    return artifact_key(review_id)


def _file_entry(alert: Mapping) -> bytes:
    return f"## [{alert['severity']}] {alert['title']} ({alert['created_at']})\n{alert['body']}\n\n".encode("utf-8")


def _send_file(target: Path, alert: Mapping) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    # one write(2) on an O_APPEND descriptor: a kill leaves the entry whole or absent, never half-written
    data = _file_entry(alert)
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
        while written < len(data):  # a regular file takes it all at once; just in case
            written += os.write(fd, data[written:])
    finally:
        os.close(fd)


def _file_has(target: Path, alert: Mapping) -> bool:
    """True when the file already holds this alert's entry (a delivery interrupted after writing it)."""
    return target.exists() and _file_entry(alert) in target.read_bytes()


def _send_block(name: str, alert: Mapping) -> None:
    # "block-type-slug/block-name" (e.g. "slack-webhook/team-alerts"): the base Block resolves the type from
    # the slug; NotificationBlock.load would only look among documents of its own (abstract) type
    from prefect.blocks.core import Block

    block = Block.load(name)
    runtime.register_block_secrets(block)  # its URL/token may come back in an error or an echo
    if not callable(getattr(block, "notify", None)):
        raise TypeError(f"block {name!r} is a {type(block).__name__}, not a notification block")
    block.notify(alert["body"], alert["title"])


def _send_webhook(url: str, alert: Mapping) -> None:
    payload = {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in alert.items()
               if not k.startswith("delivery_") and k != "channel"}
    r = httpx.post(url, json=payload, timeout=TIMEOUT_SECONDS)
    r.raise_for_status()


def channel_senders(channels: list[Mapping], base_dir: str,
                    environ: Mapping[str, str] | None = None) -> list[tuple[str, Callable[[Mapping], None] | None, str | None]]:
    """(channel name, send function or None, problem) per configured channel."""
    return [(name, send, problem) for name, send, problem, _ in _channels(channels, base_dir, environ)]


def _channels(channels: list[Mapping], base_dir: str, environ: Mapping[str, str] | None):
    """(name, send, problem, already_has) per channel; `already_has(alert)` checks a file channel, else None."""
    env = runtime.secrets() if environ is None else environ
    out = []
    for ch in channels:
        kind = ch["type"]
        name = channel_name(ch)
        if kind == "file":
            p = Path(ch["path"])
            target = p if p.is_absolute() else Path(base_dir) / p
            out.append((name, lambda a, t=target: _send_file(t, a), None, lambda a, t=target: _file_has(t, a)))
        elif kind == "block":
            out.append((name, lambda a, n=ch["block"]: _send_block(n, a), None, None))
        elif kind == "webhook":
            url = env.get(ch["url_env"], "")
            register_secret(url)  # the webhook URL is its own credential
            problem = None if url else f"environment variable {ch['url_env']} is not set (it holds the webhook URL)"
            out.append((name, (lambda a, u=url: _send_webhook(u, a)) if url else None, problem, None))
    return out


REDELIVERED = ("an earlier delivery was interrupted after the channel was called (process killed or crashed); sent "
               "again, so the channel may have received this alert twice")


def deliver_alerts(con: duckdb.DuckDBPyConnection, alert_ids: list[int], channels: list[Mapping], base_dir: str,
                   *, now: dt.datetime, environ: Mapping[str, str] | None = None, attempts: int = ATTEMPTS,
                   backoff: float = BACKOFF_SECONDS) -> list[dict]:
    """Send each alert to each channel, retrying, and record every outcome in alert_deliveries (an outbox).

    Every (alert, channel) pair gets a `pending` row if it has none yet. A pair already delivered is never sent
    again, so re-running a cycle (or delivering the same alerts from two steps) cannot announce anything twice;
    a pair that failed before is tried again. A delivery is committed as `sending` before its channel is called
    and `delivered`/`failed` after. One found still `sending` was interrupted in between (the process died): a
    file channel is checked (the entry is written once, exactly); a webhook or block cannot be asked, so it is
    sent again (at least once) and the row says so in `last_error`.

    Returns:
        one {alert_id, kind, channel, status, attempts, error} per delivery made now. Never raises for a channel.
    """
    if not alert_ids:
        return []
    # keyed by the stored (redacted) name: that is what alert_deliveries rows carry
    senders = {safe_text(name): (send, problem, has) for name, send, problem, has in _channels(channels, base_dir, environ)}
    for aid in alert_ids:  # alerts raised without queuing (most steps raise alerts that way) get queued now
        queue_deliveries(con, aid, list(senders))
    results = []
    for d in open_deliveries(con, alert_ids):
        name, status = d["channel"], d["delivery_status"]
        if name not in senders:
            if status == "failed":
                continue  # a channel taken out of review.toml: its old failures are not retried
            send, problem, has = None, "this channel is no longer in review.toml's [[alerts.channels]]", None
        else:
            send, problem, has = senders[name]
        # what leaves the process is redacted: an alert body may quote a server's error with a key in it
        alert = {k: v for k, v in d.items() if not k.startswith("delivery_") and k != "channel"}
        outgoing = {**alert, "title": redact_text(alert["title"]), "body": redact_text(alert["body"])}
        interrupted = status == "sending"
        # a retry after a failure starts counting again (a re-send replaces the row); an interrupted one goes on
        tries, error, ok = (d["delivery_attempts"] if interrupted else 0), problem, False
        if interrupted and has is not None and has(outgoing):
            # the killed process had written it: counted and recorded now, never written twice
            tries, ok, error = tries + 1, True, None
        elif send is not None:
            if interrupted and has is None:
                tries += 1  # the attempt in flight when the process died may have reached the channel
            mark_sending(con, d["alert_id"], name)  # committed before the call, never after
            for i in range(attempts):
                tries += 1
                try:
                    send(outgoing)
                    ok, error = True, (REDELIVERED if interrupted and has is None else None)
                    break
                except Exception as e:  # a channel's failure is recorded, never raised
                    error = safe_message(e)[:1000]  # httpx errors quote the URL, token and all
                    if i + 1 < attempts:
                        time.sleep(backoff * 2 ** i)
            runtime.kill_point("alert-sent")  # crash tests: the channel has it, the outcome is not recorded yet
        record_delivery(con, alert_id=d["alert_id"], channel=name, attempts=tries, delivered=ok, error=error,
                        now=now)
        results.append({"alert_id": d["alert_id"], "kind": d["kind"], "channel": name,
                        "status": "delivered" if ok else "failed", "attempts": tries, "error": error})
    return results


def deliver_cycle_alerts(con: duckdb.DuckDBPyConnection, review_id: str, update_id: int | None,
                         channels: list[Mapping], base_dir: str, *, now: dt.datetime,
                         environ: Mapping[str, str] | None = None, attempts: int = ATTEMPTS,
                         backoff: float = BACKOFF_SECONDS) -> list[dict]:
    """Deliver every alert of the review not yet delivered to every channel, whoever raised it.

    Alerts are raised all over the loop (linking: merges, registry results; screening: new candidates;
    versioning: versions, registry events, failed searches; people's commands between cycles), so delivery
    does not take a list of "new" ids from one step: it takes every alert raised since the previous cycle
    that reached its delivery started (`delivery_window_start`: cycles killed in between are skipped over, so
    their alerts are in the window too). That covers this cycle's alerts, alerts people's commands raised
    since, and a second try for the previous cycle's failed deliveries, without flooding a newly added channel
    with the review's history. On top of that, every delivery still open in the outbox (`pending`, or
    `sending` when a process died mid-send) is completed, however old.
    """
    since = delivery_window_start(con, review_id, update_id)
    ids = sorted(set(alerts_since(con, review_id, since)) | set(undelivered_alerts(con, review_id)))
    return deliver_alerts(con, ids, channels, base_dir, now=now, environ=environ, attempts=attempts, backoff=backoff)


def delivery_counts(deliveries: list[dict]) -> dict:
    """{"delivered": n, "failed": n} over delivery results."""
    return {"delivered": sum(d["status"] == "delivered" for d in deliveries),
            "failed": sum(d["status"] == "failed" for d in deliveries)}


def announce_cycle_alerts(con: duckdb.DuckDBPyConnection, review_id: str, update_id: int | None,
                          review_title: str | None = None) -> int:
    """One Prefect event per alert this cycle raised (see tasks/observe.ALERT_EVENTS), so that a Prefect
    Automation can route alerts without our code; nothing outside a Prefect run.

    Returns:
        the number of events emitted.
    """
    from tasks import observe

    if not observe.in_prefect_run():
        return 0
    since = cycle_start(con, review_id, update_id)
    if since is None:
        return 0
    ids = alerts_since(con, review_id, since)
    if not ids:
        return 0
    rows = cycle_alert_rows(con, ids)
    n = 0
    for a in rows:
        event = observe.ALERT_EVENTS.get(a["kind"], f"{observe.EVENT_PREFIX}.alert.{a['kind'].replace('_', '-')}")
        payload = {**a, "review_id": review_id, "update_id": update_id}
        n += observe.emit(event, review_id, payload, title=review_title)
        observe.log("event %s: %s", event, a["title"])
    return n


@task(name="deliver-alerts")
@redacts_exceptions  # Prefect makes the FAILED message from the exception text
def deliver_pending_alerts(review_dir: str, review_id: str, warehouse: str, update_id: int | None,
                           out_dir: str | None = None, cfg: ReviewConfig | None = None) -> dict:
    """Deliver every alert not yet delivered to every configured channel."""
    from livingmeta.config import load_review
    from warehouse import opened

    cfg = cfg or load_review(review_dir)  # the flow passes the cycle's config: review.toml is read once per cycle
    alerts_dir = str(Path(out_dir) / review_id) if out_dir else review_dir
    with opened(warehouse) as con:
        out = deliver_cycle_alerts(con, review_id, update_id, [c.model_dump() for c in cfg.alerts.channels],
                                   alerts_dir, now=dt.datetime.now(dt.timezone.utc))
    return delivery_counts(out)
