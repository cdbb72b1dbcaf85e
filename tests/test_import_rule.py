"""The import rule: livingmeta/ is pure; imports go flows -> tasks -> (livingmeta, warehouse)."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import REPO_ROOT

FORBIDDEN = {
    "livingmeta": {"prefect", "duckdb", "tasks", "flows", "warehouse", "deploy", "httpx", "requests", "urllib.request"},
    "warehouse": {"prefect", "tasks", "flows", "deploy"},
    "tasks": {"flows", "deploy"},
    "flows": {"deploy"},
    # the web app is a face like the CLI: it calls warehouse/ and livingmeta/, never the flows or Prefect
    "web": {"prefect", "tasks", "flows", "deploy"},
}


def _imports(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_import_direction(package):
    bad = []
    for py in sorted((REPO_ROOT / package).rglob("*.py")):
        for line, mod in _imports(py):
            for f in FORBIDDEN[package]:
                if mod == f or mod.startswith(f + "."):
                    bad.append(f"{py.relative_to(REPO_ROOT)}:{line} imports {mod}")
    assert not bad, "import rule broken:\n" + "\n".join(bad)


def test_rule_checker_sees_a_violation(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("import duckdb\nfrom prefect import flow\n")
    assert [m for _, m in _imports(bad)] == ["duckdb", "prefect"]
