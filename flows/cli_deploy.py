"""CLI commands for deployment: `livingmeta serve` runs every review's scheduled update on this machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer


def register(app: typer.Typer, subapps: dict[str, typer.Typer]) -> None:
    """Add this area's commands to the CLI."""
    app.command()(serve)


def serve(
    reviews: Annotated[Optional[list[Path]], typer.Argument(help="Review folders (each holding review.toml).")] = None,
    reviews_root: Annotated[Optional[Path], typer.Option("--reviews-root", help="Serve every review folder under this folder.")] = None,
    warehouse_dir: Annotated[Optional[Path], typer.Option("--warehouse-dir", help="Per-review warehouse files go here (default: <LIVINGMETA_HOME>/warehouses).")] = None,
    warehouse: Annotated[Optional[Path], typer.Option("--warehouse", "-w", help="One warehouse file (only when serving a single review).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Outputs go to <out>/<review id> (default: $LIVINGMETA_OUT or <LIVINGMETA_HOME>/output).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="At most this many flow runs at once on this machine.")] = None,
    grace: Annotated[float, typer.Option("--grace", min=0, help="On SIGTERM, wait this many seconds for runs in progress to finish.")] = 60.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the deployments (JSON) and exit without serving.")] = False,
) -> None:
    """Serve one scheduled deployment per review, `update-review/<id>-serve` (schedule from review.toml [schedule]).

    SIGTERM stops it with exit code 0: no new runs, the runs in progress may finish (--grace seconds), and the
    served deployments' schedules are paused.
    """
    from flows import settings
    from flows.cli import fail, user_errors

    from flows.deployments import build_deployments, deployment_specs, find_reviews, rate_limit_commands, serve_deployments

    try:
        dirs = list(reviews or [])
        if reviews_root is not None:
            dirs += find_reviews(reviews_root)
        if not dirs:
            raise ValueError("no reviews to serve: give review folders, or --reviews-root DIR holding them")
        specs = deployment_specs(
            [Path(d) for d in dict.fromkeys(Path(d).resolve() for d in dirs)],
            warehouse_dir=warehouse_dir or settings.livingmeta_home() / "warehouses",
            out_root=out or settings.output_dir(None),
            warehouse=warehouse,
        )
        deployments = build_deployments(specs)
    except user_errors() as e:
        fail(str(e))
        return
    if dry_run:
        print(json.dumps({"deployments": [s.as_dict() for s in specs], "limit": limit,
                          "rate_limits": rate_limit_commands()}, indent=2))
        return
    settings.quiet_prefect_defaults()
    for s in specs:
        Path(s.parameters["warehouse"]).parent.mkdir(parents=True, exist_ok=True)
        Path(s.parameters["out_dir"]).mkdir(parents=True, exist_ok=True)
    serve_deployments(deployments, limit=limit, grace_seconds=grace)
