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

import html
import logging
import re
import threading
import traceback
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
    (
        re.compile(r"(?i)(\bauthorization\b[\"']?\s*[:=]\s*[\"']?(?:bearer|basic|token)?\s*)([^\s\"'<>,;]+)"),
        rf"\1{MASK}",
    ),
    # scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), rf"\1{MASK}@"),
    # webhook URLs whose path is the credential
    (re.compile(r"(?i)(hooks\.slack\.com/(?:services|workflows|triggers)/)[^\s\"'<>]+"), rf"\1{MASK}"),
    (re.compile(r"(?i)(\.webhook\.office\.com/webhookb2/)[^\s\"'<>]+"), rf"\1{MASK}"),
    (re.compile(r"(?i)(discord(?:app)?\.com/api/webhooks/)[^\s\"'<>]+"), rf"\1{MASK}"),
]


def _forms(secret: str) -> set[str]:
    """A secret as it may appear in text: as is, URL-encoded (both ways), JSON-escaped and XML/HTML-escaped."""
    forms = {
        secret,
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        urllib.parse.quote(secret, safe="/:"),
        secret.replace("/", "\\/"),
        html.escape(secret),
        html.escape(secret, quote=False),
    }
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


def _url_parts(value: str) -> set[str]:
    """The parts of a URL that can be the credential on their own: a server may echo only its path or a
    query value (a webhook's path *is* its token; "https://hooks.example/T0/B0/XyZ" echoed as "/T0/B0/XyZ").

    Path segments count only when they look like tokens (8+ characters with a digit, or 16+), so ordinary
    words of a URL ("services", "webhook") never become masks.
    """
    try:
        u = urllib.parse.urlsplit(value)
    except ValueError:
        return set()
    if not (u.scheme and u.netloc):
        return set()
    parts: set[str] = set()
    if u.password:
        parts.add(u.password)
    path = u.path.rstrip("/")
    if path.count("/") > 1 or len(path) >= 16:  # a bare "/hook" names an endpoint, not a credential
        parts.add(path.lstrip("/"))
    if u.query:
        parts.add(u.query)
        parts.update(v for _, v in urllib.parse.parse_qsl(u.query, keep_blank_values=False))
    for seg in path.split("/"):
        if (len(seg) >= 8 and any(c.isdigit() for c in seg)) or len(seg) >= 16:
            parts.add(seg)
    return parts


def register_secret(value: str | None) -> None:
    """Remember a secret value so that `redact` removes it from every string (None/short values ignored).

    A URL (webhook) is registered whole and by the parts that carry its credential (password, query values,
    token-like path segments, the path itself).
    """
    if not value or len(str(value)) < MIN_SECRET_LENGTH:
        return
    value = str(value)
    forms = _forms(value)
    for part in _url_parts(value):
        if len(part) >= MIN_SECRET_LENGTH:
            forms |= _forms(part)
    with _lock:
        _secrets.update(forms)


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


def redact_known(text: object) -> object:
    """Only the registered secrets removed (no shape patterns): for data a source returned (records, raw
    payloads), where a word like "token=" is content to keep but a configured secret must still never land."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str) or not text:
        return text
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for s in known:
        if s in text:
            text = text.replace(s, MASK)
    return text


def has_secrets() -> bool:
    """True when any secret is registered (lets bulk paths skip all checks when there is nothing to find)."""
    return bool(_secrets)


def contains_known_secret(text: str) -> bool:
    """True when a registered secret occurs in `text` (a cheap test before rebuilding a record)."""
    with _lock:
        known = list(_secrets)
    return any(s in text for s in known)


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


class RedactedError(Exception):
    """Base for exceptions whose message may quote a remote answer or request: the message is redacted
    when the exception is made, so its str(), a Prefect state message and a traceback never hold a secret.

    Use as the first base: `class EntrezError(RedactedError, RuntimeError)`.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(a) if isinstance(a, (str, bytes)) else a for a in args))


def redact_exception(e: BaseException) -> BaseException:
    """Redact an exception's string arguments in place, and those of its causes and contexts.

    For exceptions raised by code we do not own (httpx, duckdb, the standard library), whose message is made
    from `args`: after this, str(e), a Prefect state message and a formatted traceback hold no secret.

    Returns:
        the same exception object.
    """
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        try:
            cur.args = tuple(redact(a) if isinstance(a, (str, bytes)) else a for a in cur.args)
        except (AttributeError, TypeError):  # an exception type with read-only args keeps them
            pass
        cur = cur.__cause__ or cur.__context__
    return e


def safe_message(e: BaseException) -> str:
    """`"Type: message"` of any exception, redacted (for storing or returning an error that was caught)."""
    text = str(e)
    return redact_text(text if isinstance(e, RedactedError) else f"{type(e).__name__}: {text}") or type(e).__name__


class RedactingFilter(logging.Filter):
    """A logging filter that redacts a record's message, its arguments and its traceback text in place.

    The formatted message replaces `msg` (args emptied), and a traceback is formatted once and redacted
    into `exc_text` (which every standard formatter prints instead of formatting `exc_info` again).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redact one log record in place (see RedactingFilter); idempotent."""
    if getattr(record, "_livingmeta_redacted", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: keep what we have, as text
        message = f"{record.msg} {record.args!r}"
    record.msg = redact_text(message)
    record.args = ()
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
    if record.exc_text:
        record.exc_text = redact_text(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)
    record._livingmeta_redacted = True
    return record


_factory_installed = False
_FILTER = RedactingFilter()


def install_log_redaction(logger_names: Iterable[str] = ("", "prefect")) -> None:
    """Redact every log record of this process before any handler sees it (idempotent).

    Two hooks, because handlers come and go (Prefect configures its API and console handlers lazily):
    the log record factory redacts each record as it is made, whoever logs it; and the filter is added to
    the handlers already attached to the named loggers (root and "prefect" by default) and their children.
    """
    global _factory_installed
    with _lock:
        if not _factory_installed:
            previous = logging.getLogRecordFactory()

            def factory(*args, **kwargs):
                return redact_record(previous(*args, **kwargs))

            logging.setLogRecordFactory(factory)
            _factory_installed = True
    names = set(logger_names)
    loggers = [logging.getLogger(n) for n in names]
    loggers += [
        lg
        for name, lg in list(logging.Logger.manager.loggerDict.items())
        if isinstance(lg, logging.Logger) and any(name.startswith(n + ".") for n in names if n)
    ]
    for lg in loggers:
        for h in lg.handlers:
            if _FILTER not in h.filters:
                h.addFilter(_FILTER)
