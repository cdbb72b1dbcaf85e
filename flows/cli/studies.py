"""`livingmeta studies list|link|unlink|merge`: see and correct how records are grouped into studies.

People's decisions are stored append-only in `study_link_decisions` and win over automatic linking on every
later run; each command is one operation of warehouse/linking.py (`review_studies`, `link_record`,
`unlink_record`, `merge_into`), which stores the decision and relinks the review in one transaction, so its
effect is visible immediately.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Optional

import typer

from flows.cli.common import ByOpt, JsonOpt, ReviewArg, WarehouseOpt, console, login_name, review_warehouse
from flows.cli.layout import print_table
from flows.cli.output import line, print_json, styled

app = typer.Typer(help="Studies: list them, link and unlink records by hand.", no_args_is_help=True)

NoteOpt = Annotated[Optional[str], typer.Option("--note", help="Why (kept with the decision).")]
RecordArg = Annotated[str, typer.Argument(help="Record id (pubmed:PMID, ctgov:NCT…), PMID or NCT id.")]


@app.command("list")
def list_cmd(
    review: ReviewArg,
    warehouse: WarehouseOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List the review's studies with their records, how each was linked and why."""
    from warehouse.linking import review_studies

    with review_warehouse(review, warehouse) as (review_id, con):
        listed = review_studies(con, review_id)
    if json_out:
        print_json(listed, indent=2)
        return
    found, conflicts = listed["studies"], listed["conflicts"]

    def short(title: str) -> str:
        return title if len(title) <= 70 else title[:69].rstrip() + "…"

    # ids never wrap (a split id cannot be copied); long titles and evidence wrap, or the narrow layout is used
    print_table(console, ("study", "record", "year", "method", "score", "evidence", "title"),
                [[s["study_id"] if i == 0 else "", r["record_id"], str(r["year"] or ""), r["method"],
                  "" if r["score"] is None else f"{r['score']:.2f}", r["evidence"] or "", short(r["title"] or "")]
                 for s in found for i, r in enumerate(s["records"])],
                title=f"{review_id}: {len(found)} studies, {sum(len(s['records']) for s in found)} records",
                wrap=("evidence", "title"))
    if conflicts:
        console.print(line(styled(f"{len(conflicts)} link(s) refused", "bold"),
                           " — check them and link by hand if they are one trial:"))
        for c in conflicts:
            console.print(f"  {c['record_id']} ~ {c['other_record_id']} ({c['method']}): {c['reason']}")


@app.command("link")
def link_cmd(
    review: ReviewArg,
    record: RecordArg,
    study: Annotated[str, typer.Argument(help="The study it belongs to (study id or any identifier of it).")],
    warehouse: WarehouseOpt = None,
    by: ByOpt = None,
    note: NoteOpt = None,
) -> None:
    """Put a record in a study (a person's decision: automatic linking never moves it again)."""
    from warehouse.linking import link_record

    with review_warehouse(review, warehouse, read_only=False) as (review_id, con):
        done = link_record(con, review_id, record, study, login_name(by), _now(), note)
    console.print(f"{done['record_id']} is now in study {done['study_id']} ({done['studies']} studies).")


@app.command("unlink")
def unlink_cmd(
    review: ReviewArg,
    record: RecordArg,
    warehouse: WarehouseOpt = None,
    by: ByOpt = None,
    note: NoteOpt = None,
) -> None:
    """Split a record off into its own study; it never rejoins the study it left automatically."""
    from warehouse.linking import unlink_record

    with review_warehouse(review, warehouse, read_only=False) as (review_id, con):
        done = unlink_record(con, review_id, record, login_name(by), _now(), note)
    console.print(f"{done['record_id']} left study {done['left']}; it is now study {done['study_id']}.")


@app.command("merge")
def merge_cmd(
    review: ReviewArg,
    keep: Annotated[str, typer.Argument(help="The study that stays (its id is kept).")],
    other: Annotated[str, typer.Argument(help="The study whose records join it (its id becomes an alias).")],
    warehouse: WarehouseOpt = None,
    by: ByOpt = None,
) -> None:
    """Merge two studies that are one trial: every record of OTHER joins KEEP."""
    from warehouse.linking import merge_into

    with review_warehouse(review, warehouse, read_only=False) as (review_id, con):
        done = merge_into(con, review_id, keep, other, login_name(by), _now())
    console.print(f"merged {done['other']} into {done['keep']}: {', '.join(done['moved']) or 'no records'} now belong "
                  f"to {done['keep']}.")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
