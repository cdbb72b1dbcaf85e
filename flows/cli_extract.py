"""`livingmeta extract template|import|suggestions|accept`: extraction data in and out."""


import csv
import getpass
import io
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table


def register(app: typer.Typer, subapps: dict[str, typer.Typer]) -> None:
    """Add this area's commands to the CLI."""
    from flows.cli import WarehouseOpt, console, fail, review_id_for, user_errors

    extract = subapps["extract"]

    def _review(review: str, warehouse: str | None):
        from livingmeta.config import load_review
        from warehouse.db import rows_as_dicts

        review_id, wh = review_id_for(review, warehouse)
        p = Path(review)
        if p.exists():
            return review_id, wh, load_review(p)
        from warehouse import opened
        from livingmeta.config import ReviewConfig

        with opened(wh, read_only=True) as con:
            row = rows_as_dicts(con, "SELECT config_json FROM reviews WHERE review_id = ?", [review_id])[0]
        data = row["config_json"]
        return review_id, wh, ReviewConfig.model_validate(json.loads(data) if isinstance(data, str) else data)

    @extract.command("template")
    def template_cmd(
        review: Annotated[str, typer.Argument(help="Review folder or review id.")],
        outcome: Annotated[str, typer.Argument(help="Outcome id from review.toml.")],
        out: Annotated[Optional[Path], typer.Option("--out", help="Write the CSV here (default: print it).")] = None,
        warehouse: WarehouseOpt = None,
    ) -> None:
        """Write a CSV to fill in: one row per included study and arm, study ids prefilled."""
        from livingmeta.extraction import COLUMNS, template_rows
        from warehouse import opened
        from warehouse.extraction import included_study_ids

        try:
            review_id, wh, cfg = _review(review, warehouse)
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
            fail(str(e))
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
        w.writeheader()
        w.writerows(template_rows(studies, outcome, kind))
        if out is None:
            print(buf.getvalue(), end="")
        else:
            out.write_text(buf.getvalue(), encoding="utf-8")
            console.print(f"Wrote {out}: {len(studies)} included studies. Fill it in, then "
                          f"`livingmeta extract import {review} {out}`.")

    @extract.command("import")
    def import_cmd(
        review: Annotated[str, typer.Argument(help="Review folder or review id.")],
        file: Annotated[Path, typer.Argument(help="Extraction CSV.")],
        warehouse: WarehouseOpt = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
    ) -> None:
        """Validate and store an extraction CSV (all rows or none; re-importing adds nothing)."""
        from warehouse import opened
        from warehouse.extraction import import_extraction

        try:
            review_id, wh, cfg = _review(review, warehouse)
            with opened(wh) as con:
                res = import_extraction(con, review_id, file, {o.id: o.kind for o in cfg.outcomes})
        except user_errors() as e:
            fail(str(e))
        res.pop("row_ids", None)
        if json_out:
            print(json.dumps(res))
        else:
            console.print(f"{file}: {res['rows']} rows — {res['added']} added, {res['corrected']} corrected, "
                          f"{res['unchanged']} unchanged. The next `livingmeta update` re-runs affected analyses.")

    @extract.command("suggestions")
    def suggestions_cmd(
        review: Annotated[str, typer.Argument(help="Review folder or review id.")],
        warehouse: WarehouseOpt = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    ) -> None:
        """List registry-derived rows waiting to be accepted."""
        from warehouse import opened
        from warehouse.extraction import list_suggestions

        try:
            review_id, wh, _ = _review(review, warehouse)
            with opened(wh, read_only=True) as con:
                rows = list_suggestions(con, review_id)
        except user_errors() as e:
            fail(str(e))
        if json_out:
            print(json.dumps(rows, default=str, indent=2))
            return
        t = Table(title=f"registry suggestions for {review_id}")
        for c in ("row_id", "study_id", "outcome_id", "arm", "group_label", "events", "total", "mean", "sd", "n",
                  "source_ref"):
            t.add_column(c)
        for r in rows:
            t.add_row(*("" if r.get(c) is None else str(r[c]) for c in (
                "row_id", "study_id", "outcome_id", "arm", "group_label", "events", "total", "mean", "sd", "n",
                "source_ref")))
        console.print(t)
        if rows:
            console.print(f"Accept with `livingmeta extract accept {review} ROW_ID... --outcome OUTCOME --extractor NAME`.")

    @extract.command("accept")
    def accept_cmd(
        review: Annotated[str, typer.Argument(help="Review folder or review id.")],
        row_ids: Annotated[list[int], typer.Argument(help="Suggestion row ids (see `extract suggestions`).")],
        outcome: Annotated[str, typer.Option("--outcome", help="The review outcome these rows belong to.")],
        extractor: Annotated[Optional[str], typer.Option("--extractor", help="Who accepts them (default: login).")] = None,
        arm: Annotated[Optional[str], typer.Option("--arm", help="Override the suggested arm.")] = None,
        warehouse: WarehouseOpt = None,
    ) -> None:
        """Accept registry suggestions: new active rows that cite the suggestion they came from."""
        from warehouse import opened
        from warehouse.extraction import accept_suggestions

        who = extractor or getpass.getuser()
        try:
            review_id, wh, cfg = _review(review, warehouse)
            with opened(wh) as con:
                res = accept_suggestions(con, review_id, list(row_ids), outcome=outcome,
                                         outcomes={o.id: o.kind for o in cfg.outcomes}, extractor=who, arm=arm)
        except user_errors() as e:
            fail(str(e))
        console.print(f"accepted {res['accepted']} row(s) as {outcome} ({res['unchanged']} already current).")
