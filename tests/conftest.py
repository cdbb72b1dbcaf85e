"""Shared test fixtures.

Flow tests share ONE Prefect test harness per session (its temporary server takes ~15 s to start);
everything else runs as plain functions (`task.fn(...)`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"

# Prefect must never touch the user's ~/.prefect in tests: point it at a throw-away folder before import.
_PREFECT_HOME = tempfile.mkdtemp(prefix="livingmeta-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# as the CLI does (flows/settings.quiet_prefect_defaults): run loggers send INFO to the API, the console stays quiet
os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL", "INFO")
os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "INFO")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", os.environ["PREFECT_LOGGING_LEVEL"])
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("LIVINGMETA_WAREHOUSE", None)


def shared_path(*parts: str) -> Path:
    """A path in ../shared; the calling test skips when ../shared is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} is not available (../shared is not beside the repository)")
    return p


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test server for the whole session (request it in flow tests only)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture()
def warehouse_path(tmp_path) -> Path:
    """A fresh, migrated warehouse file."""
    from warehouse import connect

    p = tmp_path / "warehouse.duckdb"
    connect(p).close()
    return p


@pytest.fixture(scope="session")
def demo_run(prefect_harness, tmp_path_factory):
    """`livingmeta demo --json` run once per session: (output folder, the step summaries). Read-only for tests."""
    import json

    from typer.testing import CliRunner

    from flows.cli import app

    out = tmp_path_factory.mktemp("demo") / "out"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.output[result.output.index("["):])
