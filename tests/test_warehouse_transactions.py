"""warehouse.db.transaction nests: an operation built from smaller ones (each with its own `transaction`) is one
transaction — nothing commits before the outermost block ends, and a failure anywhere rolls all of it back."""

from __future__ import annotations

import duckdb
import pytest

from warehouse.db import transaction


def _rows(con):
    return [r for (r,) in con.execute("SELECT x FROM t ORDER BY x").fetchall()]


def test_an_inner_transaction_joins_the_outer_one(tmp_path):
    path = tmp_path / "t.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t (x INTEGER)")
    with transaction(con):
        with transaction(con):
            con.execute("INSERT INTO t VALUES (1)")
        # the inner block ended: still not committed, another connection sees nothing yet
        other = duckdb.connect(str(path))
        assert _rows(other) == []
        other.close()
        con.execute("INSERT INTO t VALUES (2)")
    assert _rows(con) == [1, 2]


def test_a_failure_in_an_inner_transaction_rolls_back_the_outer_one(tmp_path):
    con = duckdb.connect(str(tmp_path / "t.duckdb"))
    con.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(ZeroDivisionError):
        with transaction(con):
            con.execute("INSERT INTO t VALUES (1)")
            with transaction(con):
                con.execute("INSERT INTO t VALUES (2)")
                1 / 0
    assert _rows(con) == []
    with transaction(con):  # the connection is usable again, in a transaction of its own
        con.execute("INSERT INTO t VALUES (3)")
    assert _rows(con) == [3]
