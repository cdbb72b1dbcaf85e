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


def configure(*, ncbi: dict | None = None, secret_lookup: Callable[[str], str | None] | None = None) -> None:
    """Set the NCBI client settings and the function that resolves named secrets (e.g. webhook URL variables)."""
    global _ncbi, _secret_lookup
    with _lock:
        if ncbi is not None:
            _ncbi = dict(ncbi)
        if secret_lookup is not None:
            _secret_lookup = secret_lookup


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
