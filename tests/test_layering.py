"""Layering beyond imports (see test_import_rule.py): SQL lives in warehouse/ only, and only flows/settings.py
reads the environment.

SQL is found in the code's string constants (the AST, so comments and names do not count; adjacent literals are
one constant, f-string pieces are checked one by one); docstrings are prose and are skipped.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGES = ("livingmeta", "tasks", "flows", "deploy", "web")  # everything but warehouse/ (and tests/, bench/)
ENV_PACKAGES = ("livingmeta", "warehouse", "tasks", "flows", "deploy", "web")
SETTINGS = "flows/settings.py"
KNOWN_SQL: tuple[str, ...] = ()  # nothing is exempt (the CLI's SQL moved into warehouse operations)

SQL = re.compile(
    r"\bSELECT\b[\s\S]*\bFROM\b"
    r"|\bINSERT\s+(?:OR\s+\w+\s+)?INTO\b"
    r"|\bUPDATE\s+\w+\s+SET\b"
    r"|\bDELETE\s+FROM\b"
    r"|\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP(?:ORARY)?\s+)?(?:TABLE|VIEW|INDEX|SEQUENCE|MACRO|SCHEMA)\b"
    r"|\bWITH\s+(?:RECURSIVE\s+)?\w+\s+AS\s*\("
    r"|^\s*(?:SELECT|INSERT|UPDATE|DELETE|WITH)\s")


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def sql_strings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string constant in a file that reads as an SQL statement."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skip = _docstrings(tree)
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
            and SQL.search(node.value)]


def environment_reads(path: Path) -> list[tuple[int, str]]:
    """(line, what) of every read of the process environment: os.environ, os.getenv, `from os import environ`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr in ("environ", "environb", "getenv", "getenvb")
                and isinstance(node.value, ast.Name) and node.value.id == "os"):
            out.append((node.lineno, f"os.{node.attr}"))
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            out += [(node.lineno, f"from os import {a.name}") for a in node.names
                    if a.name in ("environ", "environb", "getenv", "getenvb")]
    return sorted(out)


def _files(packages) -> list[Path]:
    return [p for pkg in packages for p in sorted((REPO_ROOT / pkg).rglob("*.py"))]


def _rel(p: Path) -> str:
    return p.relative_to(REPO_ROOT).as_posix()


def test_sql_lives_in_warehouse_only():
    bad = [f"{_rel(p)}:{line}: {text.strip()[:80]!r}" for p in _files(PACKAGES)
           if not _rel(p).startswith(KNOWN_SQL) for line, text in sql_strings(p)]
    assert not bad, ("SQL outside warehouse/ (put it in a function of warehouse/<area>.py, a long statement in "
                     "warehouse/queries/<name>.sql):\n" + "\n".join(bad))


def test_only_settings_reads_the_environment():
    bad = [f"{_rel(p)}:{line}: {what}" for p in _files(ENV_PACKAGES) if _rel(p) != SETTINGS
           for line, what in environment_reads(p)]
    assert not bad, "the environment is read outside flows/settings.py (add a function there):\n" + "\n".join(bad)


@pytest.mark.parametrize("code, found", [
    ('q = "SELECT a FROM t WHERE b = ?"', True),
    ('q = ("SELECT a, b "\n     "FROM t")', True),
    ('q = f"INSERT INTO {name} VALUES (?)"', True),
    ('con.execute("UPDATE update_runs SET status = ? WHERE update_id = ?")', True),
    ('x = "DELETE FROM study_links WHERE review_id = ?"', True),
    ('x = "CREATE OR REPLACE VIEW v AS SELECT 1"', True),
    ('x = "WITH last AS (SELECT 1) SELECT * FROM last"', True),
    ('msg = "select the records from the list, then update the set"', False),
    ('def f():\n    """Reads SELECT title FROM reviews, as documentation."""', False),
    ('label = "Screening: SELECT a stage"', False),
])
def test_the_sql_check_sees_sql_and_only_sql(tmp_path, code, found):
    f = tmp_path / "x.py"
    f.write_text(code + "\n")
    assert bool(sql_strings(f)) is found


def test_the_environment_check_sees_every_way_of_reading_it(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("import os\nfrom os import getenv, environ\na = os.environ.get('A')\nb = os.getenv('B')\n"
                 "c = os.path.join('a', 'b')\n")
    assert sorted(environment_reads(f)) == [(2, "from os import environ"), (2, "from os import getenv"),
                                            (3, "os.environ"), (4, "os.getenv")]
