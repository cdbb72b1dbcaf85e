"""Redaction: the one point every string passes through before it is stored, logged, printed, alerted or
sent to Prefect, so that a configured secret (NCBI api_key, webhook URLs and tokens, block secrets) never
leaves the process that holds it.

Two layers, because a server can echo a secret in a form we did not send:
- **Known secrets**: every value registered with `register_secret` (the flow layer registers the NCBI key,
  webhook URLs, block secrets), also in its URL-encoded forms, is replaced wherever it appears.
- **Shapes of secrets**: values of query/JSON/header parameters whose name says secret (`api_key`, `token`,
  `password`, `secret`, `Authorization: Bearer …`), user:password in URLs, and Slack/Teams-style webhook
  paths, whatever their value.

Pure: no I/O. The registry is process-wide (one flow run or CLI call per process registers its secrets).
"""

from __future__ import annotations

import re
import threading
import urllib.parse
from collections.abc import Iterable

MASK = "[REDACTED]"
# shorter values would turn ordinary words into masks ("1", "abc"); real keys and URLs are far longer
MIN_SECRET_LENGTH = 6

_lock = threading.Lock()
_secrets: set[str] = set()

_SECRET_NAMES = r"(?:api[_-]?key|apikey|access[_-]?token|auth[_-]?token|token|secret|password|passwd|client[_-]?secret|sig|signature)"
_PATTERNS: list[tuple[re.Pattern, str]] = [
    # ?api_key=...&  /  api_key: ...  /  "api_key": "..."
    (re.compile(rf"(?i)(\b{_SECRET_NAMES}\b[\"']?\s*(?:=|:|%3D)\s*[\"']?)([^\s&\"'<>,;}}]+)"), rf"\1{MASK}"),
    (re.compile(r"(?i)(\bauthorization\b[\"']?\s*[:=]\s*[\"']?(?:bearer|basic|token)?\s*)([^\s\"'<>,;]+)"), rf"\1{MASK}"),
    # scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), rf"\1{MASK}@"),
    # webhook URLs whose path is the credential
    (re.compile(r"(?i)(hooks\.slack\.com/(?:services|workflows|triggers)/)[^\s\"'<>]+"), rf"\1{MASK}"),
    (re.compile(r"(?i)(\.webhook\.office\.com/webhookb2/)[^\s\"'<>]+"), rf"\1{MASK}"),
    (re.compile(r"(?i)(discord(?:app)?\.com/api/webhooks/)[^\s\"'<>]+"), rf"\1{MASK}"),
]


def _forms(secret: str) -> set[str]:
    """A secret as it may appear in text: as is, URL-encoded (both ways), and JSON-escaped."""
    forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret),
             urllib.parse.quote(secret, safe="/:"), secret.replace("/", "\\/")}
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


def register_secret(value: str | None) -> None:
    """Remember a secret value so that `redact` removes it from every string (None/short values ignored)."""
    if not value or len(str(value)) < MIN_SECRET_LENGTH:
        return
    with _lock:
        _secrets.update(_forms(str(value)))


def register_secrets(values: Iterable[str | None]) -> None:
    """`register_secret` for each value."""
    for v in values:
        register_secret(v)


def forget_secrets() -> None:
    """Drop every registered secret (tests; a process that serves another review)."""
    with _lock:
        _secrets.clear()


def redact(text: object) -> object:
    """`text` with every registered secret and every secret-shaped value replaced by MASK.

    Non-strings (None, numbers) come back unchanged; bytes are redacted as UTF-8 text.

    Returns:
        the redacted string (or the value itself when it is not text).
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str) or not text:
        return text
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)  # longest first: a secret that contains another
    for s in known:
        if s in text:
            text = text.replace(s, MASK)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def redact_text(text: str | None) -> str | None:
    """`redact` for a str-or-None field (typed for callers that store text columns)."""
    out = redact(text)
    return out if out is None or isinstance(out, str) else str(out)


def redact_data(value):
    """`redact` applied to every string inside nested dicts, lists and tuples (keys included)."""
    if isinstance(value, (str, bytes)):
        return redact(value)
    if isinstance(value, dict):
        return {redact_data(k): redact_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_data(v) for v in value)
    return value
