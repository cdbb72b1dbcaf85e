"""Settings: the only place that reads the environment."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from livingmeta.redaction import register_secret

DEFAULT_HOME = Path.home() / ".livingmeta"


def livingmeta_home() -> Path:
    """Where livingmeta keeps its data: $LIVINGMETA_HOME or ~/.livingmeta."""
    return Path(os.environ.get("LIVINGMETA_HOME") or DEFAULT_HOME)


def warehouse_path(option: str | None = None) -> Path:
    """The warehouse file: --warehouse, else $LIVINGMETA_WAREHOUSE, else <home>/warehouse.duckdb."""
    if option:
        return Path(option)
    env = os.environ.get("LIVINGMETA_WAREHOUSE")
    return Path(env) if env else livingmeta_home() / "warehouse.duckdb"


def output_dir(option: str | None = None) -> Path:
    """Where reports, snapshots and alert files go: --out, else $LIVINGMETA_OUT, else <home>/output."""
    if option:
        return Path(option)
    env = os.environ.get("LIVINGMETA_OUT")
    return Path(env) if env else livingmeta_home() / "output"


def reviewer() -> str:
    """Who records screening decisions when --reviewer is not given: $LIVINGMETA_REVIEWER, else the login name."""
    return os.environ.get("LIVINGMETA_REVIEWER") or getpass.getuser()


def quiet_prefect_defaults() -> None:
    """Sensible Prefect defaults for a one-machine CLI (the user's own settings win)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # PREFECT_LOGGING_LEVEL also caps the run loggers, whose records feed Prefect's API handler: give the run
    # loggers INFO of their own (what each step did reaches the API); the console keeps PREFECT_LOGGING_LEVEL
    os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL", "INFO")
    os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "INFO")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", os.environ["PREFECT_LOGGING_LEVEL"])


def ncbi_settings() -> dict:
    """How to reach NCBI E-utilities (PubMed source), from the environment.

    LIVINGMETA_EUTILS_URL (default NCBI's own), LIVINGMETA_NCBI_EMAIL, LIVINGMETA_NCBI_TOOL (default
    "livingmeta"), and the API key from NCBI_API_KEY or else from the Prefect Secret block named by
    LIVINGMETA_NCBI_API_KEY_BLOCK. LIVINGMETA_NCBI_TIMEOUT / _MAX_TRIES / _BACKOFF tune the choke point.
    The key is returned for the request choke point only: never log or store this dict. It is registered
    with `livingmeta.redaction` the moment it is read, so no stored, logged or printed text can carry it.
    """
    api_key = os.environ.get("NCBI_API_KEY") or None
    block = os.environ.get("LIVINGMETA_NCBI_API_KEY_BLOCK")
    if not api_key and block:
        from prefect.blocks.system import Secret

        api_key = Secret.load(block).get()
    register_secret(api_key)
    out: dict = {"email": os.environ.get("LIVINGMETA_NCBI_EMAIL") or None,
                 "tool": os.environ.get("LIVINGMETA_NCBI_TOOL") or "livingmeta", "api_key": api_key}
    if os.environ.get("LIVINGMETA_EUTILS_URL"):
        out["base_url"] = os.environ["LIVINGMETA_EUTILS_URL"]
    for env, key, cast in (("LIVINGMETA_NCBI_TIMEOUT", "timeout", float), ("LIVINGMETA_NCBI_MAX_TRIES", "max_tries", int),
                           ("LIVINGMETA_NCBI_BACKOFF", "backoff_base", float)):
        if os.environ.get(env):
            out[key] = cast(os.environ[env])
    return out


def ncbi_api_key_configured() -> bool:
    """True when an NCBI API key is set up (NCBI_API_KEY or a Secret block name), without loading the key."""
    return bool(os.environ.get("NCBI_API_KEY") or os.environ.get("LIVINGMETA_NCBI_API_KEY_BLOCK"))


CTGOV_DEFAULT_URL = "https://clinicaltrials.gov"


def ctgov_settings() -> dict:
    """ClinicalTrials.gov client settings from the environment (tests point the base URL at 127.0.0.1).

    $LIVINGMETA_CTGOV_URL (default https://clinicaltrials.gov), $LIVINGMETA_CTGOV_MIN_INTERVAL (seconds between
    requests, default 1.0), $LIVINGMETA_CTGOV_MAX_TRIES (default 5), $LIVINGMETA_CTGOV_BACKOFF (first retry
    delay in seconds, default 2.0), $LIVINGMETA_CTGOV_TIMEOUT (seconds, default 60).
    """
    def number(name: str, default: float) -> float:
        raw = os.environ.get(name)
        if raw in (None, ""):
            return default
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"${name} must be a number of seconds or tries, not {raw!r}") from None

    return {
        "base_url": os.environ.get("LIVINGMETA_CTGOV_URL") or CTGOV_DEFAULT_URL,
        "min_interval": number("LIVINGMETA_CTGOV_MIN_INTERVAL", 1.0),
        "max_tries": int(number("LIVINGMETA_CTGOV_MAX_TRIES", 5)),
        "backoff": number("LIVINGMETA_CTGOV_BACKOFF", 2.0),
        "timeout": number("LIVINGMETA_CTGOV_TIMEOUT", 60.0),
    }


def secret(name: str) -> str | None:
    """A named secret from the environment (webhook URL variables named by review.toml's `url_env`),
    registered with `livingmeta.redaction` as it is read."""
    value = os.environ.get(name) or None
    register_secret(value)
    return value


def register_environment_secrets() -> None:
    """Register every secret this process can see before anything runs: the NCBI key ($NCBI_API_KEY) and the
    webhook URLs of every `url_env` named by the review.toml files the process reads are registered where they
    are read; this also covers $LIVINGMETA_SECRET_ENV (comma-separated names of more variables to treat as
    secrets) and any variable whose name says it holds a secret (…_API_KEY, …_TOKEN, …_SECRET, …_PASSWORD,
    …_WEBHOOK_URL)."""
    names = {n.strip() for n in (os.environ.get("LIVINGMETA_SECRET_ENV") or "").split(",") if n.strip()}
    names |= {n for n in os.environ if n.upper().endswith(_SECRET_SUFFIXES)}
    for n in sorted(names):
        register_secret(os.environ.get(n))


_SECRET_SUFFIXES = ("API_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "WEBHOOK_URL", "WEBHOOK")


def prefect_server_configured() -> bool:
    """True when flows report to a Prefect server (PREFECT_API_URL), where shared rate limits can live."""
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


def test_kill_at() -> tuple[str, int] | None:
    """The crash tests' fault-injection point: $LIVINGMETA_TEST_KILL_AT=<point>[:<nth>] (nth counts from 1).

    None when unset (the normal case). See tasks.runtime.kill_point and tests/test_crash_safety.py.
    """
    raw = (os.environ.get("LIVINGMETA_TEST_KILL_AT") or "").strip()
    if not raw:
        return None
    point, _, nth = raw.partition(":")
    try:
        n = int(nth) if nth else 1
    except ValueError:
        raise ValueError(f"$LIVINGMETA_TEST_KILL_AT={raw!r}: write <point>[:<nth>], nth a whole number") from None
    if not point or n < 1:
        raise ValueError(f"$LIVINGMETA_TEST_KILL_AT={raw!r}: write <point>[:<nth>], nth 1 or more")
    return point, n


def web_secret(warehouse: Path) -> str:
    """The web app's session-signing secret: $LIVINGMETA_WEB_SECRET, else `<warehouse>.web-secret` (made once,
    readable by its owner only), so sessions survive a restart and several app processes agree."""
    env = os.environ.get("LIVINGMETA_WEB_SECRET")
    if env:
        if len(env) < 32:
            raise ValueError("LIVINGMETA_WEB_SECRET is shorter than 32 characters; use e.g. `python -c \"import "
                             "secrets; print(secrets.token_urlsafe(48))\"`")
        return env
    import secrets

    path = Path(f"{warehouse}.web-secret")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_urlsafe(48) + "\n")
    return path.read_text(encoding="ascii").strip()


def warehouse_wait_seconds() -> float | None:
    """$LIVINGMETA_WAREHOUSE_WAIT: how long a process waits for another's turn on the warehouse file."""
    raw = os.environ.get("LIVINGMETA_WAREHOUSE_WAIT")
    return float(raw) if raw else None


def apply_warehouse_wait() -> None:
    """Apply $LIVINGMETA_WAREHOUSE_WAIT (`warehouse.access`; default 60 s) and $LIVINGMETA_DUCKDB_MEMORY_LIMIT
    (`warehouse.db.set_memory_limit`; default 1GB) to this process."""
    wait = warehouse_wait_seconds()
    if wait is not None:
        from warehouse.access import set_wait

        set_wait(wait)
    limit = os.environ.get("LIVINGMETA_DUCKDB_MEMORY_LIMIT")
    if limit:
        from warehouse.db import set_memory_limit

        set_memory_limit(limit)
