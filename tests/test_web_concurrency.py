"""Screening on the web while an update cycle runs in another process on the same warehouse: nothing is lost,
nothing is stored twice, the cycle completes, and every request is answered within the turn-taking bound.

Real parts: `prefect server start`, the update-review flow in a subprocess (the demo's recorded step 2021),
`livingmeta web` as a uvicorn process, reviewers as threads of httpx clients. bench/web_load.py runs the same
driver with 20 reviewers for 60 s and prints the latency figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.crash_harness import REPO, prefect_server, subprocess_env
from warehouse.access import DEFAULT_WAIT_SECONDS

sys.path.insert(0, str(REPO / "bench"))
from web_load import load  # noqa: E402

pytestmark = pytest.mark.slow


def test_screening_during_an_update_loses_nothing_and_waits_boundedly(tmp_path):
    home = tmp_path / "prefect-server"
    home.mkdir()
    with prefect_server(home) as url:
        client_home = tmp_path / "prefect-client"
        client_home.mkdir()
        res = load(tmp_path / "run", reviewers=4, seconds=0, mkenv=lambda: subprocess_env(url, client_home),
                   cycles=["2021"])
    assert [c["rc"] for c in res["cycles"]] == [0], res["cycles"]
    assert res["failures"] == []
    assert res["decisions_acknowledged"] > 0
    assert res["decisions_missing"] == [] and res["decisions_duplicated"] == []
    assert res["decisions_stored_once"] == res["decisions_acknowledged"]
    assert res["stored_not_acknowledged"] <= 4  # at most the one in flight per reviewer when the run stopped
    assert res["succeeded_update_runs"] >= 3  # 2010, 2020 and the cycle that ran under load
    for kind, figures in res["latency_ms"].items():
        assert figures["max"] < DEFAULT_WAIT_SECONDS * 1000, (kind, figures)  # waited its turn, never gave up
