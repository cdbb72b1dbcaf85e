"""Alert delivery: the alerts table is written by whoever raises an alert; this module delivers them to the
review's channels (file, Prefect notification block, webhook) and to the review's change-log artifact.

A failed delivery is retried a few times with a short backoff, recorded in `alert_deliveries`, and never
raises: publishing a version must not depend on Slack being up.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import duckdb
import httpx
from prefect import task

from tasks.observe import redacts_exceptions

from livingmeta.redaction import redact_text, register_secret, safe_message
from tasks import runtime
from warehouse.alerts import alerts_since, cycle_start, delivered_pairs, previous_cycle_start, record_delivery
from warehouse.db import rows_as_dicts

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


def _send_file(target: Path, alert: Mapping) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a", encoding="utf-8") as f:
        f.write(f"## [{alert['severity']}] {alert['title']} ({alert['created_at']})\n{alert['body']}\n\n")


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
    payload = {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in alert.items()}
    r = httpx.post(url, json=payload, timeout=TIMEOUT_SECONDS)
    r.raise_for_status()


def channel_senders(channels: list[Mapping], base_dir: str,
                    environ: Mapping[str, str] | None = None) -> list[tuple[str, Callable[[Mapping], None] | None, str | None]]:
    """(channel name, send function or None, problem) per configured channel."""
    env = runtime.secrets() if environ is None else environ
    out = []
    for ch in channels:
        kind = ch["type"]
        if kind == "file":
            p = Path(ch["path"])
            target = p if p.is_absolute() else Path(base_dir) / p
            out.append((f"file:{ch['path']}", lambda a, t=target: _send_file(t, a), None))
        elif kind == "block":
            out.append((f"block:{ch['block']}", lambda a, n=ch["block"]: _send_block(n, a), None))
        elif kind == "webhook":
            url = env.get(ch["url_env"], "")
            register_secret(url)  # the webhook URL is its own credential
            problem = None if url else f"environment variable {ch['url_env']} is not set (it holds the webhook URL)"
            out.append((f"webhook:{ch['url_env']}", (lambda a, u=url: _send_webhook(u, a)) if url else None, problem))
    return out


def deliver_alerts(con: duckdb.DuckDBPyConnection, alert_ids: list[int], channels: list[Mapping], base_dir: str,
                   *, now: dt.datetime, environ: Mapping[str, str] | None = None, attempts: int = ATTEMPTS,
                   backoff: float = BACKOFF_SECONDS) -> list[dict]:
    """Send each alert to each channel, retrying, and record every outcome in alert_deliveries.

    An (alert, channel) pair already delivered is never sent again, so re-running a cycle (or delivering the
    same alerts from two steps) cannot announce anything twice; a pair that failed before is tried again.

    Returns:
        one {alert_id, channel, status, attempts, error} per alert and channel sent now. Never raises for a channel.
    """
    if not alert_ids:
        return []
    alerts = rows_as_dicts(con, "SELECT alert_id, review_id, created_at, kind, severity, version, title, body "
                                "FROM alerts WHERE alert_id IN (SELECT unnest(?)) ORDER BY alert_id", [alert_ids])
    done = delivered_pairs(con, [a["alert_id"] for a in alerts])
    results = []
    for name, send, problem in channel_senders(channels, base_dir, environ):
        for alert in alerts:
            if (alert["alert_id"], name) in done:
                continue
            # what leaves the process is redacted: an alert body may quote a server's error with a key in it
            outgoing = {**alert, "title": redact_text(alert["title"]), "body": redact_text(alert["body"])}
            tries, error = 0, problem
            ok = False
            if send is not None:
                for i in range(attempts):
                    tries += 1
                    try:
                        send(outgoing)
                        ok, error = True, None
                        break
                    except Exception as e:  # a channel's failure is recorded, never raised
                        error = safe_message(e)[:1000]  # httpx errors quote the URL, token and all
                        if i + 1 < attempts:
                            time.sleep(backoff * 2 ** i)
            record_delivery(con, alert_id=alert["alert_id"], channel=name, attempts=tries, delivered=ok, error=error,
                            now=now)
            results.append({"alert_id": alert["alert_id"], "kind": alert["kind"], "channel": name,
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
    started. That covers this cycle's alerts, alerts people's commands raised since, and a second try for
    the previous cycle's failed deliveries, without flooding a newly added channel with the review's history.
    """
    since = previous_cycle_start(con, review_id, update_id)
    return deliver_alerts(con, alerts_since(con, review_id, since), channels, base_dir, now=now, environ=environ,
                          attempts=attempts, backoff=backoff)


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
    rows = rows_as_dicts(con, "SELECT alert_id, created_at, kind, severity, version, title, body FROM alerts "
                              "WHERE alert_id IN (SELECT unnest(?)) ORDER BY alert_id", [ids])
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
                           out_dir: str | None = None) -> dict:
    """Deliver every alert not yet delivered to every configured channel."""
    from livingmeta.config import load_review
    from warehouse import opened

    cfg = load_review(review_dir)
    alerts_dir = str(Path(out_dir) / review_id) if out_dir else review_dir
    with opened(warehouse) as con:
        out = deliver_cycle_alerts(con, review_id, update_id, [c.model_dump() for c in cfg.alerts.channels],
                                   alerts_dir, now=dt.datetime.now(dt.timezone.utc))
    return delivery_counts(out)
