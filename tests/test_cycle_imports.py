"""A nightly in which nothing changed does no work it does not need, down to its imports: the update's steps
(the real task functions, in a fresh process, as a worker runs them) load neither scipy (scipy.stats, scipy.sparse) nor
scikit-learn nor matplotlib when no record, decision or analysis input changed; a nightly with new records
loads scikit-learn (to score them, and scipy with it) but not the report stack when the evidence did not change.
Checked in sys.modules of the process (bench/growth.py's cycle driver); never a timing."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _growth():
    spec = importlib.util.spec_from_file_location("growth_bench", REPO / "bench" / "growth.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def step(tmp_path, *args: str) -> dict:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_LOGGING_LEVEL": "WARNING"}
    p = subprocess.run([sys.executable, str(REPO / "bench" / "growth.py"), "--child", *args], capture_output=True,
                       text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_a_quiet_nightly_imports_no_heavy_module(tmp_path):
    info = _growth().prepare(tmp_path / "n", 400)
    common = [info["review"], info["warehouse"], info["out"]]
    first = step(tmp_path, "cycle", *common, str(tmp_path / "n" / "first"), "2025-01-01T00:00:00+00:00")
    assert first["new"] > 0
    assert step(tmp_path, "decisions", info["review"], info["warehouse"], str(tmp_path / "n" / "decisions.csv"))["imported"]
    nightly = step(tmp_path, "cycle", *common, str(tmp_path / "n" / "nightly"), "2025-01-02T00:00:00+00:00")
    assert nightly["new"] > 0 and nightly["ranker"].startswith("tfidf-svm")
    assert "sklearn" in nightly["heavy_loaded"]  # new records are scored by the model (scikit-learn brings scipy)
    assert "matplotlib" not in nightly["heavy_loaded"]  # no analysis changed: no report is drawn
    quiet = step(tmp_path, "cycle", *common, str(tmp_path / "n" / "nightly"), "2025-01-03T00:00:00+00:00")
    assert quiet["new"] == 0 and quiet["changed"] == 0 and quiet["snapshot_unchanged"]
    assert quiet["heavy_loaded"] == [], quiet["heavy_loaded"]
