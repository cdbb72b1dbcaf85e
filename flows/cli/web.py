"""`livingmeta web`: serve the review team's web app (web/app.py) on the warehouse operations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from flows import settings
from flows.cli.common import WarehouseOpt, console, fail, review_id_for, user_errors

app = typer.Typer()


@app.command("web")
def web(reviews: Annotated[Optional[list[str]], typer.Argument(help="Review ids (or folders) to serve (default: "
                                                                    "every review in the warehouse).")] = None,
        host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only; put a TLS "
                                               "proxy in front for a team server).")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port.")] = 8765,
        out: Annotated[Optional[str], typer.Option("--out", help="Where the updates publish reports and the "
                                                                 "snapshot (default: $LIVINGMETA_OUT).")] = None,
        https_only: Annotated[bool, typer.Option("--https-only", help="Mark the session cookie Secure (serve "
                                                                     "behind HTTPS).")] = False,
        warehouse: WarehouseOpt = None) -> None:
    """Serve the review team's web app: sign in, screen, resolve conflicts, extract, watch the evidence."""
    wh = settings.warehouse_path(warehouse)
    try:
        ids = tuple(review_id_for(r, warehouse)[0] for r in reviews) if reviews else None
        app_ = make_app(wh, settings.output_dir(out), ids, https_only)
    except user_errors() as e:
        fail(e)
    import uvicorn

    console.print(f"livingmeta web on http://{host}:{port}/ (warehouse {wh}); Ctrl-C stops it.")
    uvicorn.run(app_, host=host, port=port, log_level="warning", proxy_headers=True)


def make_app(warehouse: Path, out_dir: Path, reviews: tuple[str, ...] | None, https_only: bool = False):
    """The web app for a warehouse, with its session secret ($LIVINGMETA_WEB_SECRET or a file made once)."""
    from web.app import WebSettings, create_app

    return create_app(WebSettings(warehouse=Path(warehouse), out_dir=Path(out_dir),
                                  secret_key=settings.web_secret(warehouse), reviews=reviews, https_only=https_only))
