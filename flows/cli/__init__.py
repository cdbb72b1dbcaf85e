"""The `livingmeta` command line: one module per area, each holding one Typer sub-app.

(The package docstring is completed in a later commit with the list of user actions.)
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # `flows.cli:main` (the entry point) and `from flows.cli import app` build the whole app; importing one
    # area module (flows.cli.output, flows.cli.screen, ...) builds only what that module needs
    if name in ("app", "main"):
        from flows.cli import root

        return getattr(root, name)
    raise AttributeError(f"module 'flows.cli' has no attribute {name!r}")
