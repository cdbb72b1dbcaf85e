"""The `livingmeta` command line (a package: flows/cli/root.py builds the app from the area modules)."""

from flows.cli.root import app, main

__all__ = ["app", "main"]
