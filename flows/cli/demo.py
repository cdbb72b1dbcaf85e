"""`livingmeta demo`: replay the bundled example review through the update-review flow (flows/demo.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows import settings
from flows.cli.common import console, fail, user_errors
from flows.cli.output import print_json
from flows.cli.review import print_summary

app = typer.Typer()


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output folder for the demo (rebuilt on every run).")] = Path("demo-output"),
    json_out: Annotated[bool, typer.Option("--json", help="Print the step summaries as JSON.")] = False,
) -> None:
    """Replay the bundled example review (immunoglobulins for painful neuropathy) offline, step by step."""
    from flows.demo import EXAMPLE_REVIEW, prepare_output

    try:
        prepare_output(out)
    except user_errors() as e:
        fail(e)
    settings.quiet_prefect_defaults()
    from flows.demo import demo_timeline

    console.print(f"Replaying {EXAMPLE_REVIEW} through the update-review flow (offline, recorded sources)…")
    results = demo_timeline(str(EXAMPLE_REVIEW), str(out.resolve()))
    if json_out:
        print_json(results, indent=2)
        return
    for r in results:
        print_summary(r, title=f"step {r['step']}: {r['description']}")
    console.print(f"\nWarehouse: {out / 'warehouse.duckdb'}")
    report = (results[-1].get("outputs") or {}).get("report") if results else None
    if report:
        console.print(f"Report: {report}")
    console.print(f"Outputs: {out.resolve()}")
    wh = out / "warehouse.duckdb"
    console.print("\nLook around:")
    for cmd in (f"livingmeta estimates ivig-pnp -w {wh}", f"livingmeta diff ivig-pnp -w {wh}",
                f"livingmeta status ivig-pnp -w {wh}", f"livingmeta studies list ivig-pnp -w {wh}"):
        console.print(f"  {cmd}")
    from flows.demo import demo_account

    name, password = demo_account(wh)
    console.print("\nThe team's web app on the demo review:")
    console.print(f"  livingmeta web ivig-pnp -w {wh} --out {out}")
    console.print(f"  then open http://127.0.0.1:8765/ and sign in as {name} / {password} (lead of ivig-pnp; "
                  "a new password at every demo run)")
