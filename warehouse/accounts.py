"""The accounts store of the web app: `<warehouse>.accounts.duckdb`, beside the warehouse, never inside it.

The warehouse is copied whole into the published snapshot (`warehouse.publish`); password hashes must never
reach a dashboard, so accounts live in a file of their own with its own numbered migrations
(`warehouse/accounts_migrations/`). Each operation below is one transaction; the hashing and the rules for
names, passwords and roles are `livingmeta.accounts`'.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import duckdb

from livingmeta.accounts import AccountError, check_password, check_role, check_username, hash_password
from warehouse.access import turn
from warehouse.db import WarehouseError, connect, migrate, rows_as_dicts, transaction

ACCOUNTS_MIGRATIONS = Path(__file__).with_name("accounts_migrations")


def accounts_path(warehouse: str | Path) -> Path:
    """The accounts file of a warehouse."""
    w = Path(warehouse)
    return w.with_name(w.stem + ".accounts.duckdb")


@contextlib.contextmanager
def accounts(warehouse: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open (creating and migrating) the accounts store of `warehouse`, taking turns like the warehouse."""
    path = accounts_path(warehouse)
    with turn(path):
        con = connect(path, migrate_schema=False)
        try:
            migrate(con, ACCOUNTS_MIGRATIONS)
            yield con
        finally:
            con.close()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def add_user(
    con: duckdb.DuckDBPyConnection,
    username: str,
    password: str,
    *,
    display_name: str | None = None,
    review_id: str | None = None,
    role: str | None = None,
) -> dict:
    """Create an account (refused when the name is taken), optionally on a review with a role."""
    name = check_username(username)
    check_password(password, name)
    if review_id is not None:
        check_role(role or "")
    now = _now()
    with transaction(con):
        if con.execute("SELECT 1 FROM app_users WHERE username = ?", [name]).fetchall():
            raise AccountError(
                f"user {name!r} exists already; use `livingmeta users passwd {name}` to change the "
                f"password or `livingmeta users role` to add a review"
            )
        con.execute(
            "INSERT INTO app_users VALUES (?, ?, ?, ?, ?)",
            [name, (display_name or name).strip() or name, hash_password(password), now, now],
        )
        if review_id is not None:
            con.execute("INSERT INTO review_members VALUES (?, ?, ?, ?)", [review_id, name, role, now])
    return {"username": name, "review_id": review_id, "role": role}


def ensure_user(
    con: duckdb.DuckDBPyConnection, username: str, password: str, *, display_name: str, review_id: str, role: str
) -> None:
    """The account with this password and role on this review, made or updated (the demo's account)."""
    with transaction(con):
        if con.execute("SELECT 1 FROM app_users WHERE username = ?", [username]).fetchall():
            set_password(con, username, password)
            set_role(con, username, review_id, role)
        else:
            add_user(con, username, password, display_name=display_name, review_id=review_id, role=role)


def set_password(con: duckdb.DuckDBPyConnection, username: str, password: str) -> None:
    name = check_username(username)
    check_password(password, name)
    with transaction(con):
        _require(con, name)
        con.execute(
            "UPDATE app_users SET password_hash = ?, password_set_at = ? WHERE username = ?",
            [hash_password(password), _now(), name],
        )


def rehash(con: duckdb.DuckDBPyConnection, username: str, password_hash: str) -> None:
    """Store a fresher hash of the same password (argon2 parameters raised since it was set)."""
    with transaction(con):
        con.execute("UPDATE app_users SET password_hash = ? WHERE username = ?", [password_hash, username])


def set_role(con: duckdb.DuckDBPyConnection, username: str, review_id: str, role: str) -> None:
    """Put a person on a review with a role (or change their role there)."""
    name = check_username(username)
    check_role(role)
    with transaction(con):
        _require(con, name)
        con.execute(
            "INSERT INTO review_members VALUES (?, ?, ?, ?) ON CONFLICT (review_id, username) "
            "DO UPDATE SET role = excluded.role",
            [review_id, name, role, _now()],
        )


def remove_user(con: duckdb.DuckDBPyConnection, username: str, review_id: str | None = None) -> str:
    """Take a person off one review, or (no review) delete the account. Their decisions stay on record."""
    name = check_username(username)
    with transaction(con):
        _require(con, name)
        if review_id is not None:
            gone = con.execute(
                "DELETE FROM review_members WHERE username = ? AND review_id = ? RETURNING 1", [name, review_id]
            ).fetchall()
            if not gone:
                raise AccountError(f"user {name!r} is not on review {review_id!r}")
            return f"removed {name} from review {review_id}"
        con.execute("DELETE FROM review_members WHERE username = ?", [name])
        con.execute("DELETE FROM app_users WHERE username = ?", [name])
    return f"deleted account {name} (their decisions stay on record)"


def list_users(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Every account with its reviews and roles (no password hashes)."""
    users = rows_as_dicts(con, "SELECT username, display_name, created_at FROM app_users ORDER BY username")
    roles: dict[str, dict[str, str]] = {}
    for name, rid, role in con.execute(
        "SELECT username, review_id, role FROM review_members ORDER BY username, review_id"
    ).fetchall():
        roles.setdefault(name, {})[rid] = role
    for u in users:
        u["reviews"] = roles.get(u["username"], {})
    return users


def login_record(con: duckdb.DuckDBPyConnection, username: str) -> dict | None:
    """What sign-in needs: the hash and the display name (None for an unknown name). Only for sign-in."""
    rows = rows_as_dicts(
        con,
        "SELECT username, display_name, password_hash, password_set_at FROM app_users WHERE username = ?",
        [username],
    )
    return rows[0] if rows else None


def user_session_info(con: duckdb.DuckDBPyConnection, username: str) -> dict | None:
    """A signed-in person's name, when their password was set, and roles (None when the account is gone)."""
    rows = rows_as_dicts(
        con, "SELECT username, display_name, password_set_at FROM app_users WHERE username = ?", [username]
    )
    if not rows:
        return None
    user = rows[0]
    user["reviews"] = dict(
        con.execute("SELECT review_id, role FROM review_members WHERE username = ?", [username]).fetchall()
    )
    return user


def _require(con: duckdb.DuckDBPyConnection, name: str) -> None:
    if not con.execute("SELECT 1 FROM app_users WHERE username = ?", [name]).fetchall():
        raise AccountError(f"no user {name!r}; `livingmeta users list` shows who exists")


__all__ = [
    "AccountError",
    "WarehouseError",
    "accounts",
    "accounts_path",
    "add_user",
    "list_users",
    "login_record",
    "remove_user",
    "set_password",
    "set_role",
    "user_session_info",
]
