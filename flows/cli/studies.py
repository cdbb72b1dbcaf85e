"""`livingmeta studies list|link|unlink|merge`: see and correct how records are grouped into studies.

People's decisions are stored append-only in `study_link_decisions` and win over automatic linking on every
later run; each command relinks the review at once so its effect is visible immediately.
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
    from warehouse.linking import link_conflicts, list_studies

    with review_warehouse(review, warehouse) as (review_id, con):
        found = list_studies(con, review_id)
        conflicts = link_conflicts(con, review_id)
    if json_out:
        print_json({"studies": found, "conflicts": conflicts}, indent=2)
        return

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
    from warehouse import transaction
    from warehouse.linking import StudyLookupError, record_link_decision, relink, resolve_study, review_record_id

    now = dt.datetime.now(dt.timezone.utc)
    with review_warehouse(review, warehouse, read_only=False) as (review_id, con):
        rid = review_record_id(con, review_id, record)
        sid = resolve_study(con, review_id, study)
        if sid is None:
            raise StudyLookupError(f"no study {study!r} in review {review_id}; see `livingmeta studies list {review}`")
        with transaction(con):
            record_link_decision(con, review_id, rid, "link", sid, login_name(by), now, note)
        summary = relink(con, review_id, now)
    console.print(f"{rid} is now in study {sid} ({summary['studies']} studies).")


@app.command("unlink")
def unlink_cmd(
    review: ReviewArg,
    record: RecordArg,
    warehouse: WarehouseOpt = None,
    by: ByOpt = None,
    note: NoteOpt = None,
) -> None:
    """Split a record off into its own study; it never rejoins the study it left automatically."""
    from warehouse import transaction
    from warehouse.linking import StudyLookupError, record_link_decision, relink, review_record_id

    now = dt.datetime.now(dt.timezone.utc)
    with review_warehouse(review, warehouse, read_only=False) as (review_id, con):
        rid = review_record_id(con, review_id, record)
        row = con.execute("SELECT study_id FROM study_links WHERE review_id = ? AND record_id = ?",
                          [review_id, rid]).fetchone()
        if row is None:
            raise StudyLookupError(f"{rid} is not linked to a study yet; run `livingmeta update {review}` first")
        (others,) = con.execute("SELECT count(*) FROM study_links WHERE review_id = ? AND study_id = ? "
                                "AND record_id <> ?", [review_id, row[0], rid]).fetchone()
        if others == 0:
            raise StudyLookupError(f"{rid} is the only record of study {row[0]}; there is nothing to split it from")
        with transaction(con):
            record_link_decision(con, review_id, rid, "unlink", row[0], login_name(by), now, note)
        relink(con, review_id, now)
        (new,) = con.execute("SELECT study_id FROM study_links WHERE review_id = ? AND record_id = ?",
                             [review_id, rid]).fetchone()
    console.print(f"{rid} left study {row[0]}; it is now study {new}.")


@app.command("merge")
def merge_cmd(
    review: ReviewArg,
    keep: Annotated[str, typer.Argument(help="The study that stays (its id is kept).")],
    other: Annotated[str, typer.Argument(help="The study whose records join it (its id becomes an alias).")],
    warehouse: WarehouseOpt = None,
    by: ByOpt = None,
) -> None:
    """Merge two studies that are one trial: every record of OTHER joins KEEP."""
    from warehouse.linking import StudyLookupError, merge_studies, relink, resolve_study

    now = dt.datetime.now(dt.timezone.utc)
    with review_warehouse(review, warehouse, read_only=False) as (review_id, con):
        a, b = resolve_study(con, review_id, keep), resolve_study(con, review_id, other)
        for given, found in ((keep, a), (other, b)):
            if found is None:
                raise StudyLookupError(f"no study {given!r} in review {review_id}; see `livingmeta studies list {review}`")
        moved = merge_studies(con, review_id, a, b, login_name(by), now)
        relink(con, review_id, now)
    console.print(f"merged {b} into {a}: {', '.join(moved) or 'no records'} now belong to {a}.")
