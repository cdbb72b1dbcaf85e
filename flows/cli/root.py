"""The root `livingmeta` app: `--version`, and every area's sub-app mounted in the order `--help` lists them.

The one list of what the command line holds is `AREAS` below (see the package docstring for how to add a
command or an area).
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from flows import settings

# before anything imports prefect: its settings are read once, at import
settings.quiet_prefect_defaults()
settings.apply_warehouse_wait()

from flows.cli import (analysis, demo, deploy, extract, meta, report, review, screen, studies, users,  # noqa: E402
                       web)
from flows.cli.common import describe_error, user_errors  # noqa: E402
from flows.cli.output import console, error  # noqa: E402

app = typer.Typer(
    help="livingmeta keeps a systematic review and its meta-analysis alive: search, screen, extract, "
    "re-analyse, publish what changed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# (area's sub-app, group name or None for top-level commands): `--help` lists them in this order
AREAS: tuple[tuple[typer.Typer, str | None], ...] = (
    (review.app, None),  # init, update, status
    (demo.app, None),  # demo
    (meta.app, None),  # meta
    (analysis.app, None),  # estimates, diff
    (report.app, None),  # report
    (deploy.app, None),  # serve, limits
    (screen.app, "screen"),  # screen next|export|import|conflicts, and simulate (flows/cli/simulate.py)
    (extract.app, "extract"),  # extract template|import|suggestions|accept
    (studies.app, "studies"),  # studies list|link|unlink|merge
    (web.app, None),  # web
    (users.app, "users"),  # users add|role|passwd|remove|list
)
for sub, name in AREAS:
    app.add_typer(sub, name=name)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        console.print(f"livingmeta {version('livingmeta')}")
        raise typer.Exit()


@app.callback()
def _main_options(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Print the livingmeta version and exit.")] = None,
) -> None:
    """livingmeta keeps a systematic review and its meta-analysis alive: search, screen, extract, re-analyse,
    publish what changed."""


def main() -> None:
    """Console entry point: user errors print one message; anything else is a bug and keeps its traceback."""
    try:
        app()
    except Exception as e:  # not `except user_errors()`: that would be evaluated (and import) on every exit
        if not isinstance(e, user_errors()):
            raise
        error(describe_error(e))  # an error a command did not catch itself
        sys.exit(2)
