"""Values the flow hands to tasks in-process instead of as parameters.

Secrets (the NCBI API key, webhook URLs) must never become flow or task parameters: Prefect stores
parameters and shows them in its UI. The flow layer (the only place that reads the environment or
Prefect blocks) calls `configure(...)` at the start of a run; tasks read what they need from here.
Without configuration, tasks use the public defaults and no secrets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from livingmeta.redaction import install_log_redaction, register_secret

_lock = threading.Lock()
_ncbi: dict = {}
_ctgov: dict = {}
_secret_lookup: Callable[[str], str | None] = lambda name: None


def _prefect_rate_limit(name: str) -> None:
    # imported here: only a process that shares limits through a Prefect server needs the client
    from prefect.concurrency.sync import rate_limit

    rate_limit(name, occupy=1, strict=False)


_shared_rate_limits = False
_rate_limiter: Callable[[str], None] = _prefect_rate_limit


def configure(*, ncbi: dict | None = None, ctgov: dict | None = None,
              secret_lookup: Callable[[str], str | None] | None = None,
              shared_rate_limits: bool = False, rate_limiter: Callable[[str], None] | None = None) -> None:
    """Set the sources' client settings (NCBI E-utilities, ClinicalTrials.gov: both search tasks take theirs
    from here, `source_settings`), the function that resolves named secrets (e.g. webhook URL variables),
    and whether sources' choke points take a slot of the Prefect global rate limits ("ncbi", "ctgov") before
    every request (docs/operating.md §5; only meaningful with a Prefect server, so off unless asked for).
    `rate_limiter(name)` replaces Prefect's `rate_limit(name, occupy=1, strict=False)` (tests).

    Secrets: the NCBI key is registered with `livingmeta.redaction`, every value `secret_lookup` returns is
    registered as it is looked up, and every log record of the process is redacted from here on
    (`install_log_redaction`: Prefect's API log handler never receives a secret).
    """
    global _ncbi, _ctgov, _secret_lookup, _shared_rate_limits, _rate_limiter
    install_log_redaction()
    if ncbi is not None:
        register_secret(ncbi.get("api_key"))
    with _lock:
        if ncbi is not None:
            _ncbi = dict(ncbi)
        if ctgov is not None:
            _ctgov = dict(ctgov)
        if secret_lookup is not None:
            _secret_lookup = _registering(secret_lookup)
        _shared_rate_limits = bool(shared_rate_limits)
        _rate_limiter = rate_limiter or _prefect_rate_limit


def take_rate_limit_slot(name: str) -> bool:
    """Before one HTTP request to a source: wait for a slot of the shared limit `name` when configured.

    Returns:
        True when a shared limit was consulted, False when sharing is off (the choke point's own pacing applies).
    """
    with _lock:
        enabled, limiter = _shared_rate_limits, _rate_limiter
    if enabled:
        limiter(name)
    return enabled


def ncbi_settings() -> dict:
    """NCBI E-utilities client settings (base_url, email, tool, api_key, …); {} means NCBI's defaults, no key."""
    return source_settings("pubmed")


def source_settings(source: str) -> dict:
    """The client settings the flow configured for a source ("pubmed": `EntrezSettings` fields, "ctgov":
    `CtgovClient` arguments); {} means the source's public defaults."""
    with _lock:
        if source == "pubmed":
            return dict(_ncbi)
        if source == "ctgov":
            return dict(_ctgov)
    raise ValueError(f"unknown source {source!r}; expected pubmed or ctgov")


def _registering(lookup: Callable[[str], str | None]) -> Callable[[str], str | None]:
    def get(name: str) -> str | None:
        value = lookup(name)
        register_secret(value)
        return value

    return get


def register_block_secrets(block) -> None:
    """Register the secret fields of a Prefect block (SecretStr / SecretDict values, and URL fields: a webhook
    URL is its own credential) before it is used, so its errors and echoes are redacted."""
    for name in getattr(type(block), "model_fields", {}):
        value = getattr(block, name, None)
        for v in _secret_values(value, name):
            register_secret(v)


def _secret_values(value, name: str = "", secret: bool = False) -> list[str]:
    getter = getattr(value, "get_secret_value", None)
    if callable(getter):  # pydantic SecretStr / Prefect SecretDict: every value inside is secret
        return _secret_values(getter(), name, secret=True)
    if isinstance(value, dict):
        return [v for k, x in value.items() for v in _secret_values(x, str(k), secret)]
    if isinstance(value, (list, tuple)):
        return [v for x in value for v in _secret_values(x, name, secret)]
    if isinstance(value, str) and (secret or "://" in value
                                   or any(w in name.lower() for w in ("url", "token", "key", "secret", "password"))):
        return [value]
    return []


class _Secrets:
    """A read-only mapping view over the configured secret lookup (what alert delivery expects)."""

    def get(self, name: str, default: str | None = None) -> str | None:
        value = _secret_lookup(name)
        return default if value in (None, "") else value


def secrets() -> _Secrets:
    """Named secrets as configured by the flow (None/default when absent)."""
    return _Secrets()


# ---------------------------------------------------------------------------------------- crash testing
# A fault-injection hook for the crash-safety tests (tests/test_crash_safety.py): the flow hands in
# `flows.settings.test_kill_at()` ($LIVINGMETA_TEST_KILL_AT=<point>[:<nth>]); `kill_point(name)` then SIGKILLs
# this very process the nth time the named point is reached, as a power cut or `kill -9` would. Unset (always,
# outside those tests) it does nothing but count.
_kill_at: tuple[str, int] | None = None
_kill_hits: dict[str, int] = {}


def configure_kill_at(spec: tuple[str, int] | None) -> None:
    """Arm (or with None disarm) the kill hook: (point name, nth hit, counted from 1)."""
    global _kill_at
    with _lock:
        _kill_at = spec
        _kill_hits.clear()


_point_hook: Callable[[str], None] | None = None


def configure_point_hook(hook: Callable[[str], None] | None) -> None:
    """Tests only: call `hook(point name)` at every kill point this process reaches (None removes it), e.g. to
    edit review.toml while a cycle runs (tests/test_flow_config_once.py). Nothing in the code sets it."""
    global _point_hook
    with _lock:
        _point_hook = hook


def kill_point(name: str) -> None:
    """A named point between or inside steps where a crash test may kill the process (no-op unless armed)."""
    with _lock:
        hook = _point_hook
    if hook is not None:
        hook(name)
    with _lock:
        if _kill_at is None or _kill_at[0] != name:
            return
        _kill_hits[name] = n = _kill_hits.get(name, 0) + 1
        if n != _kill_at[1]:
            return
    import os
    import signal
    import sys

    sys.stderr.write(f"livingmeta test hook: SIGKILL at {name}:{n} (LIVINGMETA_TEST_KILL_AT)\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
