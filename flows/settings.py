"""Settings: the only place that reads the environment."""

from __future__ import annotations

import os
from pathlib import Path

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


def quiet_prefect_defaults() -> None:
    """Sensible Prefect defaults for a one-machine CLI (the user's own settings win)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
