"""`livingmeta users add|role|passwd|remove|list`: the web app's accounts (warehouse/accounts.py)."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from flows import settings
from flows.cli.common import JsonOpt, WarehouseOpt, console, fail, user_errors
from flows.cli.output import print_json

app = typer.Typer(help="Accounts of the web app: who may sign in, and their role on each review.",
                  no_args_is_help=True)

ReviewOpt = Annotated[Optional[str], typer.Option("--review", help="Review id the person works on.")]
RoleOpt = Annotated[str, typer.Option("--role", help="lead (resolves conflicts, accepts extraction, manages "
                                                    "people) | reviewer")]
PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from the first line of "
                                                                     "standard input (scripts) instead of asking.")]


def _password(stdin: bool) -> str:
    if stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


def _store(warehouse: str | None):
    from warehouse.accounts import accounts

    return accounts(settings.warehouse_path(warehouse))


def _errors() -> tuple:
    from livingmeta.accounts import AccountError

    return user_errors() + (AccountError,)


@app.command("add")
def add(username: Annotated[str, typer.Argument(help="Sign-in name (lower case, e.g. ana.silva).")],
        review: ReviewOpt = None, role: RoleOpt = "reviewer",
        name: Annotated[Optional[str], typer.Option("--name", help="Display name (default: the user name).")] = None,
        password_stdin: PasswordStdin = False, warehouse: WarehouseOpt = None) -> None:
    """Create an account (asks for the password twice), optionally on a review with a role."""
    from warehouse.accounts import add_user

    try:
        pw = _password(password_stdin)
        with _store(warehouse) as con:
            add_user(con, username, pw, display_name=name, review_id=review, role=role if review else None)
    except _errors() as e:
        fail(e)
    console.print(f"Added {username}" + (f" as {role} of {review}." if review else " (on no review yet)."))


@app.command("role")
def add_role(username: str, review: Annotated[str, typer.Option("--review", help="Review id.")],
             role: RoleOpt = "reviewer", warehouse: WarehouseOpt = None) -> None:
    """Put an existing account on a review (or change its role there)."""
    from warehouse.accounts import set_role

    try:
        with _store(warehouse) as con:
            set_role(con, username, review, role)
    except _errors() as e:
        fail(e)
    console.print(f"{username} is {role} of {review}.")


@app.command("passwd")
def passwd(username: str, password_stdin: PasswordStdin = False, warehouse: WarehouseOpt = None) -> None:
    """Set a new password (signs the person out everywhere)."""
    from warehouse.accounts import set_password

    try:
        pw = _password(password_stdin)
        with _store(warehouse) as con:
            set_password(con, username, pw)
    except _errors() as e:
        fail(e)
    console.print(f"New password set for {username}.")


@app.command("remove")
def remove(username: str, review: ReviewOpt = None, warehouse: WarehouseOpt = None) -> None:
    """Take a person off a review (--review), or delete the account. Their decisions stay on record."""
    from warehouse.accounts import remove_user

    try:
        with _store(warehouse) as con:
            said = remove_user(con, username, review)
    except _errors() as e:
        fail(e)
    console.print(said + ".")


@app.command("list")
def list_(json_out: JsonOpt = False, warehouse: WarehouseOpt = None) -> None:
    """Every account with its reviews and roles (never a password hash)."""
    from warehouse.accounts import list_users

    try:
        with _store(warehouse) as con:
            rows = list_users(con)
    except _errors() as e:
        fail(e)
    if json_out:
        print_json([{**r, "created_at": str(r["created_at"])} for r in rows], indent=2)
        return
    if not rows:
        console.print("No accounts yet: `livingmeta users add NAME --review ID --role lead`.")
    for r in rows:
        roles = ", ".join(f"{rid} ({role})" for rid, role in r["reviews"].items()) or "no review"
        console.print(f"{r['username']}  {r['display_name']}  {roles}")
