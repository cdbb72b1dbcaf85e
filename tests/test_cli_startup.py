"""The CLI answers at once: `--help`, `--version` and `init` import no heavy module, `meta` imports no
Prefect/DuckDB/sklearn. Checked by running the real entry point in a fresh process and inspecting
sys.modules afterwards (never a timing: bench/cli_startup.py measures those)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("scipy", "pandas", "sklearn", "matplotlib", "prefect", "duckdb", "Bio", "numpy", "jinja2", "sqlalchemy",
         "httpx", "fastapi")

PROBE = """
import json, sys
sys.argv = ["livingmeta", *json.loads(sys.argv[1])]
from flows.cli import main
code = 0
try:
    main()
except SystemExit as e:
    code = e.code or 0
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(%r)))
sys.stderr.write("\\nPROBE " + json.dumps({"code": code, "loaded": loaded}) + "\\n")
""" % json.dumps(HEAVY)


def probe(args: list[str], cwd: Path = REPO) -> dict:
    p = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True, cwd=cwd,
                       timeout=180, env={**os.environ, "COLUMNS": "120"})
    line = [x for x in p.stderr.splitlines() if x.startswith("PROBE ")]
    assert line, p.stderr
    return {**json.loads(line[-1][6:]), "stdout": p.stdout}


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["screen", "--help"], ["extract", "--help"],
                                  ["meta", "--help"], ["screen", "simulate", "--help"]])
def test_help_and_version_import_nothing_heavy(args):
    res = probe(args)
    assert res["code"] == 0
    assert res["loaded"] == [], f"livingmeta {' '.join(args)} imported {res['loaded']}"


def test_version_prints_the_package_version():
    from importlib.metadata import version

    res = probe(["--version"])
    assert res["stdout"].strip() == f"livingmeta {version('livingmeta')}"


def test_init_imports_nothing_heavy(tmp_path):
    res = probe(["init", str(tmp_path / "new")])
    assert res["code"] == 0 and (tmp_path / "new" / "review.toml").exists()
    assert res["loaded"] == [], f"livingmeta init imported {res['loaded']}"


def test_meta_imports_no_prefect_duckdb_or_sklearn(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text("study,treat_events,treat_total,control_events,control_total\nA,3,20,5,20\nB,4,20,6,21\n",
                 encoding="utf-8")
    res = probe(["meta", str(f)])
    assert res["code"] == 0 and "Pooled OR" in res["stdout"]
    unwanted = set(res["loaded"]) & {"prefect", "duckdb", "sklearn", "matplotlib", "Bio", "jinja2", "sqlalchemy"}
    assert not unwanted, f"livingmeta meta imported {sorted(unwanted)}"


def test_simulate_model_names_match_the_rankers():
    from flows.cli.simulate import DEFAULT_MODEL, RANKER_NAMES
    from livingmeta.screening import ranking

    assert sorted(RANKER_NAMES) == sorted(ranking.RANKERS) and DEFAULT_MODEL == ranking.DEFAULT_MODEL
