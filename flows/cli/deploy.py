"""CLI commands for deployment: `livingmeta serve` runs every review's scheduled update on this machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from flows import settings
from flows.cli.common import fail, user_errors

app = typer.Typer()


@app.command()
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
    """Serve one scheduled deployment per review, `update-review/<id>-serve` (schedule: the \\[schedule] table of review.toml).

    SIGTERM stops it with exit code 0: no new runs, the runs in progress may finish (--grace seconds), and the
    served deployments' schedules are paused.
    """
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
    if settings.prefect_server_configured():
        # without the limits, every review's requests would go out unthrottled by the server (strict=False)
        from flows.deployments import ensure_rate_limits

        done = ensure_rate_limits(settings.ncbi_api_key_configured(), update=False)
        print("shared rate limits: " + ", ".join(f"{k} {v}" for k, v in done.items()))
    serve_deployments(deployments, limit=limit, grace_seconds=grace)


@app.command()
def limits(
    ncbi_api_key: Annotated[Optional[bool], typer.Option("--ncbi-api-key/--no-ncbi-api-key", help="NCBI's budget with an API key (10/s) or without (3/s); default: whether NCBI_API_KEY or LIVINGMETA_NCBI_API_KEY_BLOCK is set.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the equivalent `prefect gcl` commands and exit.")] = False,
) -> None:
    """Create or update the shared source rate limits (Prefect global concurrency limits) on the Prefect server."""
    from flows.deployments import ensure_rate_limits, rate_limit_commands

    keyed = settings.ncbi_api_key_configured() if ncbi_api_key is None else ncbi_api_key
    if dry_run:
        print("\n".join(rate_limit_commands(keyed)))
        return
    if not settings.prefect_server_configured():
        fail("PREFECT_API_URL is not set: the limits must live on the Prefect server every worker uses "
             "(e.g. PREFECT_API_URL=http://HOST:4200/api livingmeta limits)")
        return
    try:
        done = ensure_rate_limits(keyed)
    except Exception as e:  # server down, wrong URL, refused: one line, not a traceback
        from livingmeta.redaction import redact_text

        fail(redact_text(f"could not create the rate limits on the Prefect server: {type(e).__name__}: {e}"))
        return
    for name, what in done.items():
        print(f"{name}: {what}")
