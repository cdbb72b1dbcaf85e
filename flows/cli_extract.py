"""CLI commands for this area; `register` adds them to the app built in flows/cli.py."""

import typer


def register(app: typer.Typer, subapps: dict[str, typer.Typer]) -> None:
    """Add this area's commands to the CLI."""
