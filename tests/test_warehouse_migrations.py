"""Migrations on a real DuckDB file: fresh, re-run, newer-than-code, edited, failing."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from warehouse import connect, migrate, schema_version
from warehouse.db import MIGRATIONS_DIR, WarehouseError, available_migrations


def test_fresh_database_gets_every_migration_once(tmp_path):
    path = tmp_path / "wh.duckdb"
    con = connect(path)
    applied = con.execute("SELECT number, name FROM _migrations ORDER BY number").fetchall()
    assert [n for n, _ in applied] == [m.number for m in available_migrations()]
    tables = {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    for t in ("reviews", "search_runs", "raw_records", "records", "record_versions", "studies", "study_links",
              "screening_queue", "screening_decisions", "extraction_rows", "analysis_runs", "estimates",
              "review_versions", "estimate_diffs", "alerts", "v_current_estimates", "v_estimate_history",
              "v_screening_queue", "v_prisma_counts", "v_alerts"):
        assert t in tables, t
    con.close()


def test_rerun_applies_nothing(tmp_path):
    path = tmp_path / "wh.duckdb"
    connect(path).close()
    con = connect(path, migrate_schema=False)
    before = con.execute("SELECT * FROM _migrations ORDER BY number").fetchall()
    assert migrate(con) == []
    assert con.execute("SELECT * FROM _migrations ORDER BY number").fetchall() == before
    con.close()


def test_database_from_newer_version_is_refused_clearly(tmp_path):
    path = tmp_path / "wh.duckdb"
    con = connect(path)
    con.execute("INSERT INTO _migrations VALUES (9999, 'from_the_future', 'x', now())")
    con.close()
    with pytest.raises(WarehouseError, match="newer livingmeta"):
        connect(path)
    with pytest.raises(WarehouseError, match="newer livingmeta"):
        connect(path, read_only=True)


def test_edited_landed_migration_is_refused(tmp_path):
    mig = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, mig)
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    migrate(con, mig)
    first = sorted(mig.glob("0001_*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(WarehouseError, match="edited after it was applied"):
        migrate(con, mig)


def test_failing_migration_rolls_back_with_its_row(tmp_path):
    mig = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, mig)
    n = max(m.number for m in available_migrations(mig)) + 1
    (mig / f"{n:04d}_broken.sql").write_text("CREATE TABLE half_done (x INTEGER);\nSELECT * FROM no_such_table;\n")
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    with pytest.raises(WarehouseError, match="rolled back"):
        migrate(con, mig)
    assert schema_version(con) == n - 1
    tables = {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert "half_done" not in tables


def test_badly_named_migration_is_refused(tmp_path):
    (tmp_path / "1_x.sql").write_text("SELECT 1;")
    with pytest.raises(WarehouseError, match="NNNN_what.sql"):
        available_migrations(tmp_path)


def test_read_only_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(WarehouseError, match="livingmeta update"):
        connect(tmp_path / "absent.duckdb", read_only=True)


def test_second_writer_gets_a_clear_message(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "wh.duckdb"
    con = connect(path)
    code = ("import sys; from warehouse import connect\n"
            "try:\n connect(sys.argv[1])\nexcept Exception as e:\n print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    con.close()
    assert "WarehouseError" in out.stdout and "another process" in out.stdout
