"""The `report` command: write the living report of a review version from the warehouse (read-only)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from flows import settings
from flows.cli.common import ReviewArg, WarehouseOpt, console, fail, review_id_for, user_errors

app = typer.Typer()


@app.command()
def report(
    review: ReviewArg,
    version: Annotated[Optional[int], typer.Option("--version", "-v", help="Version to report (default: latest).")] = None,
    out: Annotated[Optional[str], typer.Option(help="Output folder (default: $LIVINGMETA_OUT or ~/.livingmeta/output).")] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Write the report (HTML, Markdown, JSON, PNG figures) of a review version and the index of versions."""
    from tasks.publish import write_index, write_report
    from warehouse import opened
    from warehouse.publish import version_report

    try:
        review_id, wh = review_id_for(review, warehouse)
        with opened(wh, read_only=True) as con:
            made = version_report(con, review_id, version)
        folder = Path(settings.output_dir(out)) / review_id
        html = write_report(made["document"], folder)
        write_index(made["document"]["review"], made["versions"], folder)
    except user_errors() as e:
        fail(e)
    console.print(f"Wrote {html} (with report.md, report.json and PNG figures beside it)")
    console.print(f"Index of versions: {folder / 'index.html'}")
