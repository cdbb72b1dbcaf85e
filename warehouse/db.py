"""Connecting to the warehouse and migrating it.

Schema changes live only in numbered files `warehouse/migrations/NNNN_what.sql`. Each is applied
inside one transaction together with its row in `_migrations`, so a crash mid-migration leaves the
database at the previous version. Landed migrations are never edited.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import re
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from livingmeta.redaction import redact_data, redact_text
from warehouse.access import turn

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
QUERIES_DIR = Path(__file__).with_name("queries")
_NAME_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


# DuckDB lets its buffer pool grow to 80% of the machine's memory, and the process's RSS counts it: a first load of
# 200k records kept gigabytes of the one ingest transaction's data resident (issue 15). Capped, DuckDB writes what
# does not fit to its temporary directory (`<warehouse>.tmp`) instead. `set_memory_limit` changes it per process
# ($LIVINGMETA_DUCKDB_MEMORY_LIMIT, flows/settings.py); in-memory databases (tests, throw-away) keep DuckDB's default.
DEFAULT_MEMORY_LIMIT = "1GB"
_MEMORY_LIMIT_RE = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)
_memory_limit = DEFAULT_MEMORY_LIMIT


def set_memory_limit(limit: str) -> None:
    """The DuckDB memory_limit of the warehouse connections this process opens from now on ("1GB", "512MB")."""
    global _memory_limit
    if not _MEMORY_LIMIT_RE.match(limit.strip()):
        raise WarehouseError(f"DuckDB memory limit {limit!r}: give a size such as 1GB or 512MB")
    _memory_limit = limit.strip()


class WarehouseError(RuntimeError):
    """The warehouse cannot be used as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def available_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in number order; refuses badly named files and duplicate numbers."""
    found: list[Migration] = []
    for p in sorted(directory.glob("*.sql")):
        m = _NAME_RE.match(p.name)
        if not m:
            raise WarehouseError(f"{p}: migration files must be named NNNN_what.sql (lower case)")
        found.append(Migration(int(m.group(1)), m.group(2), p))
    numbers = [m.number for m in found]
    if len(set(numbers)) != len(numbers):
        raise WarehouseError(f"{directory}: two migrations share a number: {numbers}")
    return found


def _applied(con: duckdb.DuckDBPyConnection) -> dict[int, str]:
    con.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (number INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
        "checksum VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    return {n: c for n, c in con.execute("SELECT number, checksum FROM _migrations ORDER BY number").fetchall()}


def migrate(con: duckdb.DuckDBPyConnection, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply every migration not yet applied, each in its own transaction.

    Returns:
        the numbers applied now (empty when the database was up to date).
    Raises:
        WarehouseError: the database was migrated by a newer livingmeta, or a landed migration changed.
    """
    todo = available_migrations(directory)
    applied = _applied(con)
    known = {m.number for m in todo}
    newer = sorted(n for n in applied if n not in known)
    if newer:
        raise WarehouseError(
            f"this warehouse was migrated by a newer livingmeta (schema version {max(applied)}, this code knows "
            f"up to {max(known) if known else 0}); upgrade livingmeta, or use another --warehouse"
        )
    done: list[int] = []
    for m in todo:
        if m.number in applied:
            if applied[m.number] != m.checksum:
                raise WarehouseError(
                    f"migration {m.path.name} was edited after it was applied to this warehouse; landed migrations "
                    "must never change — restore the file and add a new migration instead"
                )
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(m.sql)
            con.execute(
                "INSERT INTO _migrations VALUES (?, ?, ?, ?)",
                [m.number, m.name, m.checksum, dt.datetime.now(dt.timezone.utc)],
            )
            con.execute("COMMIT")
        except Exception as e:
            con.execute("ROLLBACK")
            raise WarehouseError(f"migration {m.path.name} failed and was rolled back: {e}") from e
        done.append(m.number)
    return done


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The highest migration number applied (0 for an empty database)."""
    return max(_applied(con), default=0)


def connect(path: str | Path, read_only: bool = False, migrate_schema: bool = True) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (creating and migrating it when writable).

    Args:
        path: the DuckDB file (":memory:" for a throw-away database).
        read_only: open for reading only (dashboards, reports); no migration is attempted.
        migrate_schema: apply pending migrations (writable connections only).
    Returns:
        a connection with the session time zone set to UTC.
    """
    p = str(path)
    if p != ":memory:":
        Path(p).parent.mkdir(parents=True, exist_ok=True)
        if read_only and not Path(p).exists():
            raise WarehouseError(
                f"{p}: no warehouse here yet; run `livingmeta update REVIEW` or `livingmeta demo` first"
            )
    try:
        con = duckdb.connect(p, read_only=read_only)
    except duckdb.Error as e:  # a locked file, a folder, a file that is no DuckDB database (a user's --warehouse)
        if isinstance(e, duckdb.IOException) and "lock" in str(e).lower():
            holder = re.search(r"\(PID (\d+)\)", str(e))
            raise WarehouseError(
                f"{p} is open in another process{f' (PID {holder.group(1)})' if holder else ''} and DuckDB allows "
                "one writer; wait for the running update to finish (or stop that process), or read the published "
                "snapshot instead"
            ) from e
        raise WarehouseError(
            f"{p}: cannot open the warehouse: {e}; give a livingmeta warehouse (a DuckDB file) with --warehouse"
        ) from e
    con.execute("SET TimeZone = 'UTC'")
    if p != ":memory:":
        con.execute(f"SET memory_limit = '{_memory_limit}'")  # validated by set_memory_limit (SET binds no values)
    if not read_only and migrate_schema:
        migrate(con)
    elif read_only:
        known = max((m.number for m in available_migrations()), default=0)  # numbers may have gaps
        try:
            have = max((n for (n,) in con.execute("SELECT number FROM _migrations").fetchall()), default=0)
        except duckdb.CatalogException:
            have = 0
        if have > known:
            con.close()
            raise WarehouseError(
                f"{p} was migrated by a newer livingmeta (schema {have} > {known}); upgrade livingmeta"
            )
    return con


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN … COMMIT, or ROLLBACK on any exception (nothing half-written).

    Inside another `transaction` on the same connection it joins the outer one (the outermost commits or rolls
    back), so an operation built from smaller ones (`warehouse.versions.record_version`, ...) is one transaction.
    """
    if con in _in_transaction:
        yield con
        return
    con.execute("BEGIN TRANSACTION")
    _in_transaction.add(con)
    try:
        yield con
    except BaseException:
        _in_transaction.discard(con)
        con.execute("ROLLBACK")
        raise
    else:
        _in_transaction.discard(con)
        con.execute("COMMIT")


# connections inside a `transaction` block (weak: a closed, dropped connection leaves by itself)
_in_transaction: weakref.WeakSet = weakref.WeakSet()


@contextlib.contextmanager
def opened(path: str | Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """`connect` as a context manager that always closes the connection.

    Takes this process's turn on the file first (`warehouse.access.turn`): another process that has the
    warehouse open (an update step, a web request, a command) is waited for, boundedly, instead of failing.
    """
    with turn(path, create=not read_only):
        con = connect(path, read_only=read_only)
        try:
            yield con
        finally:
            con.close()


@functools.cache  # read once per process: some run once per record in a loop
def query(name: str) -> str:
    """The text of `warehouse/queries/<name>.sql`."""
    return (QUERIES_DIR / f"{name}.sql").read_text(encoding="utf-8")


def rows_as_dicts(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    """Run a query and return its rows as dicts (fully drained, so the connection is free again)."""
    cur = con.execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def safe_text(value: str | None) -> str | None:
    """The one redaction point of warehouse writes for free text that may carry an error or a remote answer
    (search_runs.error, update_runs.error, alerts.title/body, alert_deliveries.last_error, analysis_runs.error):
    every configured secret and secret-shaped value removed (`livingmeta.redaction.redact_text`)."""
    return redact_text(value)


def safe_json(value) -> str:
    """`value` as JSON text with every string inside redacted (update_runs.summary and other JSON columns
    that hold messages)."""
    return json.dumps(redact_data(value), default=str)
