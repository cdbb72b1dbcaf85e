"""Values the flow hands to tasks in-process instead of as parameters.

Secrets (the NCBI API key, webhook URLs) must never become flow or task parameters: Prefect stores
parameters and shows them in its UI. The flow layer (the only place that reads the environment or
Prefect blocks) calls `configure(...)` at the start of a run; tasks read what they need from here.
Without configuration, tasks use the public defaults and no secrets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_lock = threading.Lock()
_ncbi: dict = {}
_secret_lookup: Callable[[str], str | None] = lambda name: None


def _prefect_rate_limit(name: str) -> None:
    # imported here: only a process that shares limits through a Prefect server needs the client
    from prefect.concurrency.sync import rate_limit

    rate_limit(name, occupy=1, strict=False)


_shared_rate_limits = False
_rate_limiter: Callable[[str], None] = _prefect_rate_limit


def configure(*, ncbi: dict | None = None, secret_lookup: Callable[[str], str | None] | None = None,
              shared_rate_limits: bool = False, rate_limiter: Callable[[str], None] | None = None) -> None:
    """Set the NCBI client settings, the function that resolves named secrets (e.g. webhook URL variables),
    and whether sources' choke points take a slot of the Prefect global rate limits ("ncbi", "ctgov") before
    every request (docs/operating.md §5; only meaningful with a Prefect server, so off unless asked for).
    `rate_limiter(name)` replaces Prefect's `rate_limit(name, occupy=1, strict=False)` (tests).
    """
    global _ncbi, _secret_lookup, _shared_rate_limits, _rate_limiter
    with _lock:
        if ncbi is not None:
            _ncbi = dict(ncbi)
        if secret_lookup is not None:
            _secret_lookup = secret_lookup
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
    with _lock:
        return dict(_ncbi)


class _Secrets:
    """A read-only mapping view over the configured secret lookup (what alert delivery expects)."""

    def get(self, name: str, default: str | None = None) -> str | None:
        value = _secret_lookup(name)
        return default if value in (None, "") else value


def secrets() -> _Secrets:
    """Named secrets as configured by the flow (None/default when absent)."""
    return _Secrets()
