"""What every CLI area shares: the shared arguments and options, the user-error rule, and opening a review.

Nothing here imports duckdb, prefect or the statistics at module level (`livingmeta --help` must stay fast):
the warehouse is imported by the functions that open it. Printing goes through flows/cli/output.py.
"""

from __future__ import annotations

import contextlib
import getpass
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from flows import settings
from flows.cli.output import console, err_console, error

__all__ = ["ByOpt", "JsonOpt", "ReviewArg", "WarehouseOpt", "console", "describe_error", "err_console", "fail",
           "login_name", "review_config_for", "review_id_for", "review_warehouse", "user_errors"]

WarehouseOpt = Annotated[
    Optional[str],
    typer.Option("--warehouse", "-w", help="Warehouse file (default: $LIVINGMETA_WAREHOUSE or ~/.livingmeta/warehouse.duckdb)."),
]
ReviewArg = Annotated[str, typer.Argument(help="Review folder or review id.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print as JSON.")]
ByOpt = Annotated[Optional[str], typer.Option("--by", help="Who decides (default: the login name).")]


def fail(message: str | BaseException, code: int = 2) -> None:
    """Print one message for people (no traceback; printed as text, never markup) and exit.

    An exception is described by `describe_error` (an OSError names its file and what to do).
    """
    error(describe_error(message) if isinstance(message, BaseException) else message)
    raise typer.Exit(code)


def user_errors():
    """The exceptions that are the user's to fix: printed as one message, exit code 2.

    Besides our own errors (ConfigError, WarehouseError, ValueError and its subclasses), an OSError is about
    a path the user gave (a folder where a file was expected, no permission, no such file) and a
    UnicodeError about a file's encoding; both name the file in their message (see `describe_error`).
    """
    from livingmeta.config import ConfigError

    errors: tuple = (ConfigError, FileNotFoundError, ValueError, OSError, UnicodeError)
    # errors of modules a command loaded (importing them here would load duckdb or scipy for every command)
    for module, name in (("warehouse.db", "WarehouseError"), ("livingmeta.stats.errors", "StatsInputError")):
        if module in sys.modules:
            errors += (getattr(sys.modules[module], name),)
    return errors


def describe_error(e: BaseException) -> str:
    """One line for a user error: an OSError names its file and what is wrong (never "[Errno 13]")."""
    from livingmeta.userfiles import describe_os_error

    if isinstance(e, OSError) and not isinstance(e, FileNotFoundError) or (
            isinstance(e, FileNotFoundError) and e.filename is not None):
        return describe_os_error(e)
    if isinstance(e, UnicodeDecodeError):
        return f"cannot read text: not UTF-8 ({e.reason} at byte {e.start}); save the file as UTF-8"
    return str(e) or type(e).__name__


def login_name(given: str | None = None) -> str:
    """Who acts: the name given (--by, --extractor), else the login name ("unknown" when there is none)."""
    if given:
        return given
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def review_id_for(review: str, warehouse: str | None) -> tuple[str, Path]:
    """A REVIEW argument is a review folder (or its review.toml) or the id of a review in the warehouse."""
    from livingmeta.config import load_review
    from warehouse import opened
    from warehouse.reviews import known_review

    p = Path(review)
    if p.exists():
        return load_review(p).id, settings.warehouse_path(warehouse)
    wh = settings.warehouse_path(warehouse)
    if wh.exists():
        with opened(wh, read_only=True) as con:
            if known_review(con, review):
                return review, wh
    raise ValueError(f"{review!r} is neither a review folder nor a review id in {wh}; give the folder holding review.toml")


def review_config_for(review: str, warehouse: str | None):
    """(review id, warehouse path, validated config) for a REVIEW argument: a folder's review.toml, read once,
    or the configuration the warehouse stored for a review id (`warehouse.reviews.stored_config`)."""
    from livingmeta.config import load_review

    p = Path(review)
    if p.exists():
        cfg = load_review(p)
        return cfg.id, settings.warehouse_path(warehouse), cfg
    from warehouse import opened
    from warehouse.reviews import stored_config

    wh = settings.warehouse_path(warehouse)
    if wh.exists():
        with opened(wh, read_only=True) as con:
            cfg = stored_config(con, review)
        if cfg is not None:
            return review, wh, cfg
    raise ValueError(f"{review!r} is neither a review folder nor a review id in {wh}; give the folder holding review.toml")


@contextlib.contextmanager
def review_warehouse(review: str, warehouse: str | None, read_only: bool = True):
    """(review id, open warehouse connection) for a REVIEW argument.

    The user's errors inside the block (a bad review, a locked or missing warehouse, a bad value) print one
    message and exit with code 2.
    """
    from warehouse import opened

    try:
        review_id, wh = review_id_for(review, warehouse)
        with opened(wh, read_only=read_only) as con:
            yield review_id, con
    except user_errors() as e:
        fail(e)
