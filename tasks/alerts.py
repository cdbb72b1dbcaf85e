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

from livingmeta.redaction import register_secret, safe_message
from tasks import runtime
from warehouse.alerts import record_delivery
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

    create_markdown_artifact(key=artifact_key(review_id), markdown=markdown, description=description)
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

    Returns:
        one {alert_id, channel, status, attempts, error} per alert and channel. Never raises for a channel.
    """
    if not alert_ids:
        return []
    alerts = rows_as_dicts(con, "SELECT alert_id, review_id, created_at, kind, severity, version, title, body "
                                "FROM alerts WHERE alert_id IN (SELECT unnest(?)) ORDER BY alert_id", [alert_ids])
    results = []
    for name, send, problem in channel_senders(channels, base_dir, environ):
        for alert in alerts:
            tries, error = 0, problem
            ok = False
            if send is not None:
                for i in range(attempts):
                    tries += 1
                    try:
                        send(alert)
                        ok, error = True, None
                        break
                    except Exception as e:  # a channel's failure is recorded, never raised
                        error = safe_message(e)[:1000]  # httpx errors quote the URL, token and all
                        if i + 1 < attempts:
                            time.sleep(backoff * 2 ** i)
            record_delivery(con, alert_id=alert["alert_id"], channel=name, attempts=tries, delivered=ok, error=error,
                            now=now)
            results.append({"alert_id": alert["alert_id"], "channel": name, "status": "delivered" if ok else "failed",
                            "attempts": tries, "error": error})
    return results
