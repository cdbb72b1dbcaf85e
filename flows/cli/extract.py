"""`livingmeta extract template|import|suggestions|accept`: extraction data in and out."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated, Optional

import typer

from flows.cli.common import (JsonOpt, ReviewArg, WarehouseOpt, console, fail, login_name, review_config_for,
                               user_errors)
from flows.cli.layout import print_table
from flows.cli.output import line, print_json, styled, warning, write_text

app = typer.Typer(help="Extraction data: templates, imports, registry suggestions.", no_args_is_help=True)


@app.command("template")
def template_cmd(
    review: ReviewArg,
    outcome: Annotated[str, typer.Argument(help="Outcome id from review.toml.")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the CSV here (default: print it).")] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Write a CSV to fill in: one row per included study and arm, study ids prefilled."""
    from livingmeta.extraction import COLUMNS, template_rows
    from warehouse import opened
    from warehouse.extraction import included_study_ids

    try:
        review_id, wh, cfg = review_config_for(review, warehouse)
        try:
            kind = cfg.outcome(outcome).kind
        except KeyError:
            raise ValueError(f"unknown outcome {outcome!r}; review.toml defines "
                             f"{', '.join(o.id for o in cfg.outcomes) or 'none'}") from None
        studies: list[str] = []
        if wh.exists():
            with opened(wh, read_only=True) as con:
                studies = included_study_ids(con, review_id)
        if out is not None and out.exists():
            raise ValueError(f"{out} exists; choose another --out (a template never overwrites filled-in data)")
    except user_errors() as e:
        fail(e)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    w.writerows(template_rows(studies, outcome, kind))
    if not studies:
        warning(f"no study of {review_id} is included at full text yet, so the template has no rows; "
                f"record full-text decisions first, or add rows naming any study id, PMID or NCT id.",
                label="note:")
    if out is None:
        write_text(buf.getvalue())
    else:
        try:
            out.write_text(buf.getvalue(), encoding="utf-8")
        except OSError as e:
            fail(e)
        console.print(f"Wrote {out}: {len(studies)} included studies. Fill it in, then "
                      f"`livingmeta extract import {review} {out}`.")


@app.command("import")
def import_cmd(
    review: ReviewArg,
    file: Annotated[Path, typer.Argument(help="Extraction CSV.", readable=False)],
    warehouse: WarehouseOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Validate and store an extraction CSV (all rows or none; re-importing adds nothing)."""
    from livingmeta.extraction import read_extraction
    from warehouse import opened
    from warehouse.extraction import import_extraction_file

    try:
        review_id, wh, cfg = review_config_for(review, warehouse)
        # a file that cannot be used is refused before the warehouse is opened (or created)
        read_extraction(file, cfg.outcome_kinds())
        with opened(wh) as con:
            res = import_extraction_file(con, cfg, file)
    except user_errors() as e:
        fail(e)
    # rows of a study not (yet) included at full text are stored but enter no analysis: say so, never silently
    waiting = res["not_included"]
    res = {k: v for k, v in res.items() if k not in ("study_ids", "row_ids")}
    if json_out:
        print_json(res)
    else:
        console.print(f"{file}: {res['rows']} rows — {res['added']} added, {res['corrected']} corrected, "
                      f"{res['unchanged']} unchanged. The next `livingmeta update` re-runs affected analyses.")
        if waiting:
            console.print(line(styled("note:", "bold yellow"),
                               f" {len(waiting)} stud{'y is' if len(waiting) == 1 else 'ies are'} "
                               f"not included at full text yet, so no analysis uses their rows: {', '.join(waiting)}. "
                               f"Record the full-text decision (`livingmeta screen next {review} --stage full_text` "
                               f"or `screen import`); the next update then uses them."))


@app.command("suggestions")
def suggestions_cmd(
    review: ReviewArg,
    warehouse: WarehouseOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List registry-derived rows waiting to be accepted."""
    from warehouse import opened
    from warehouse.extraction import list_suggestions

    try:
        review_id, wh, _ = review_config_for(review, warehouse)
        with opened(wh, read_only=True) as con:
            rows = list_suggestions(con, review_id)
    except user_errors() as e:
        fail(e)
    if json_out:
        print_json(rows, indent=2)
        return
    if not rows:
        console.print(f"{review_id}: no registry suggestions wait to be accepted.")
        return
    cols = ("row_id", "study_id", "outcome_id", "arm", "group_label", "events", "total", "mean", "sd", "n",
            "source_ref")
    print_table(console, cols, [["" if r.get(c) is None else str(r[c]) for c in cols] for r in rows],
                title=f"registry suggestions for {review_id}", wrap=("group_label", "source_ref"))
    if rows:
        console.print(f"Accept with `livingmeta extract accept {review} ROW_ID... --outcome OUTCOME --extractor NAME`.")


@app.command("accept")
def accept_cmd(
    review: ReviewArg,
    row_ids: Annotated[list[int], typer.Argument(help="Suggestion row ids (see `extract suggestions`).")],
    outcome: Annotated[str, typer.Option("--outcome", help="The review outcome these rows belong to.")],
    extractor: Annotated[Optional[str], typer.Option("--extractor", help="Who accepts them (default: login).")] = None,
    arm: Annotated[Optional[str], typer.Option("--arm", help="Override the suggested arm.")] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Accept registry suggestions: new active rows that cite the suggestion they came from."""
    from warehouse import opened
    from warehouse.extraction import accept_suggestions

    try:
        review_id, wh, cfg = review_config_for(review, warehouse)
        with opened(wh) as con:
            res = accept_suggestions(con, review_id, list(row_ids), outcome=outcome, outcomes=cfg.outcome_kinds(),
                                     extractor=login_name(extractor), arm=arm)
    except user_errors() as e:
        fail(e)
    console.print(f"accepted {res['accepted']} row(s) as {outcome} ({res['unchanged']} already current).")
