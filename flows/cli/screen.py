"""`livingmeta screen ...`: terminal screening, export, import, conflicts; `register` adds them to the app."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from flows.cli import simulate
from flows.cli.common import ReviewArg, WarehouseOpt, fail, review_warehouse
from flows.cli.output import clean, make_console, styled, write_text

app = typer.Typer(help="Screen records: terminal screening, export/import, simulation.", no_args_is_help=True)

StageOpt = Annotated[str, typer.Option("--stage", help="title_abstract | full_text")]
EXPORT_COLUMNS = ["record_id", "livingmeta_id", "title", "abstract", "authors", "year", "journal", "doi", "keywords",
                  "included", "livingmeta_export"]
KEYS_HELP = "i include · e exclude · m maybe · u undo · s skip · q quit"


def _default_reviewer() -> str:
    from flows import settings

    return settings.reviewer()


def _check_stage(stage: str) -> None:
    from livingmeta.screening.decisions import STAGES

    if stage not in STAGES:
        fail(f"--stage {stage!r} is not allowed; use one of: {', '.join(STAGES)}")


class _Keys:
    """Key presses: one key at a time on a terminal, one line per answer otherwise (scripts, tests)."""

    def __init__(self, console: Console):
        self.console = console
        self.tty = sys.stdin.isatty()

    def key(self, prompt: str) -> str | None:
        self.console.print(prompt, end=" ", highlight=False, markup=False)
        if self.tty:
            import click

            ch = click.getchar()
            self.console.print(clean(ch))
            return ch.strip().lower() or None
        line = sys.stdin.readline()
        if line == "":
            return None  # end of input: same as quit
        self.console.print(line.strip(), highlight=False)
        return line.strip().lower()[:1] or ""

    def line(self, prompt: str) -> str | None:
        self.console.print(prompt, end=" ", highlight=False, markup=False)
        line = sys.stdin.readline()
        if line == "":
            return None
        if not self.tty:
            self.console.print(line.rstrip("\n"), highlight=False)
        return line.strip()


def _show(console: Console, r: dict, done: int, total: int) -> None:
    bar = Table.grid(padding=(0, 1))
    bar.add_row(ProgressBar(total=max(total, 1), completed=done, width=30),
                styled(f"{done}/{total} this session · rank {r['rank']} · {r['record_id']}"))
    console.print(bar)
    fields = [
        ("year", r.get("year")), ("journal", r.get("journal")),
        ("publication types", ", ".join(r.get("publication_types") or [])),
        ("registry ids", ", ".join(r.get("registry_ids") or [])), ("doi", r.get("doi")),
        ("reasons", "; ".join(r.get("reasons") or [])),
        ("ranked by", f"{r['ranker']} (score {r['score']:.3f})" if r.get("score") is not None else r.get("ranker")),
        ("label", r.get("label")), ("changed", r.get("change_note")),
    ]
    # title, abstract and every field come from a source: cleaned text (no markup, no control codes, no secret)
    body = Text()
    body.append(clean(r.get("title") or "(no title)") + "\n\n", style="bold")
    body.append(clean(r.get("abstract") or "(no abstract)") + "\n\n")
    for name, value in fields:
        if value not in (None, "", "candidate"):
            body.append(f"{name}: ", style="dim")
            body.append(clean(value) + "\n")
    console.print(Panel(body, title=styled(f"{r['stage'].replace('_', '/')} screening"), expand=True))


@app.command("next")
def next_command(
    review: ReviewArg,
    reviewer: Annotated[Optional[str], typer.Option("--reviewer", "-r", help="Your name (default: $LIVINGMETA_REVIEWER or your login).")] = None,
    stage: StageOpt = "title_abstract",
    warehouse: WarehouseOpt = None,
    sample: Annotated[bool, typer.Option(
        "--sample", help="Screen records drawn at random (the stopping rule's sample: `livingmeta status` says "
                         "when to start and how many are needed); title/abstract only. Do not skip records.")] = False,
) -> None:
    """Screen records in the terminal, best-ranked first: i/e/m then a reason, u undo, s skip, q quit.

    Live re-ranking: after each decision the queue is re-ranked by a model that has seen it (once the review's
    min_decisions_to_train is reached), and the next record shown is the best of that ranking. With --sample
    the records come in the stopping rule's random order instead (`livingmeta.screening.stopping`), recorded
    with origin 'sample', and none may be skipped.
    """
    from livingmeta.screening.stopping import SAMPLE_ORIGIN
    from warehouse.screening import next_to_screen, record_decision, review_config, undo_decision

    _check_stage(stage)
    if sample and stage != "title_abstract":
        fail("--sample draws records for the title/abstract stopping rule: use it with --stage title_abstract")
    console = make_console()
    with review_warehouse(review, warehouse, read_only=False) as (review_id, con):
        cfg = review_config(con, review_id)
        if cfg is not None and cfg.screening.reviewers == 2 and not reviewer:
            fail("this review is screened by two reviewers: say who you are with --reviewer NAME")
        who = reviewer or _default_reviewer()
        # decisions made elsewhere since the last update count too: next_to_screen re-ranks first
        current = _next_sample(con, review_id, who) if sample else next_to_screen(con, review_id, who, stage, cfg=cfg)
        guidance = _stop_guidance(con, review_id) if stage == "title_abstract" else []
    for text in guidance:
        console.print(text, markup=False)
    if current is None:
        console.print(f"Nothing waits for {stage.replace('_', '/')} screening by {who} in {review_id}.")
        return
    total = current["waiting"]
    console.print(f"{total} record(s) wait for {who} at {stage.replace('_', '/')} in {review_id}. {KEYS_HELP}",
                  markup=False)
    keys = _Keys(console)
    made: list[tuple[int, dict]] = []  # (decision_id, record) for undo within this session
    skipped: set[str] = set()
    undone = 0
    words = {"i": "include", "e": "exclude", "m": "maybe"}
    while current is not None:
        r = current
        _show(console, r, len(made), total)
        key = keys.key(KEYS_HELP + " >")
        if key is None or key == "q":
            break
        if key == "s":
            if sample:
                console.print("A random sample must not skip records (the test assumes every draw is screened): "
                              "decide this one, or q to quit and come back to it.")
                continue
            skipped.add(r["record_id"])
            with review_warehouse(review, warehouse, read_only=False) as (_, con):
                current = next_to_screen(con, review_id, who, stage, skip=skipped, cfg=cfg)
            continue
        if key == "u":
            if not made:
                console.print("Nothing to undo in this session.")
                continue
            did, rec = made.pop()
            # the warehouse is opened per decision, so it is never held while someone reads an abstract
            with review_warehouse(review, warehouse, read_only=False) as (_, con):
                undo_decision(con, review_id=review_id, decision_id=did, reviewer=who, now=_now())
            undone += 1
            console.print(f"Undone: decision on {rec['record_id']}.")
            skipped.discard(rec["record_id"])
            current = rec  # the same record again: decide it anew
            continue
        if key not in words:
            console.print(f"Unknown key {key!r}. {KEYS_HELP}", markup=False)
            continue
        decision = words[key]
        need_reason = stage == "full_text" and decision == "exclude"
        reason = keys.line("reason (required):" if need_reason else "reason (optional, Enter to skip):")
        while need_reason and reason == "":
            reason = keys.line("a full-text exclusion needs a reason (PRISMA reports them):")
        if reason is None:
            break
        with review_warehouse(review, warehouse, read_only=False) as (_, con):
            did = record_decision(con, review_id=review_id, record_id=r["record_id"], reviewer=who, stage=stage,
                                  decision=decision, reason=reason or None,
                                  origin=SAMPLE_ORIGIN if sample else "terminal", now=_now())
            console.print(f"Recorded: {decision} {r['record_id']}.")
            current = (_next_sample(con, review_id, who) if sample else
                       next_to_screen(con, review_id, who, stage, skip=skipped, cfg=cfg))
        made.append((did, r))
    console.print(f"Session over: {len(made)} decision(s) recorded by {who}"
                  + (f", {undone} undone" if undone else "") + ".")
    if made and stage == "title_abstract":
        with review_warehouse(review, warehouse) as (_, con):
            for text in _stop_guidance(con, review_id):
                console.print(text, markup=False)


def _next_sample(con, review_id: str, reviewer: str) -> dict | None:
    """The next record of the stopping rule's random sample for this reviewer (None when none is left), with
    "waiting" as `next_to_screen` gives it. The urn is the records never screened: a changed record back in
    the queue was decided before."""
    from livingmeta.screening.stopping import sample_order
    from warehouse.screening import records_to_screen

    by_id = {r["record_id"]: r for r in records_to_screen(con, review_id, reviewer, "title_abstract")
             if r.get("label") != "changed"}
    if not by_id:
        return None
    r = by_id[sample_order(list(by_id), review_id)[0]]
    r["waiting"] = len(by_id)
    return r


def _stop_guidance(con, review_id: str) -> list[str]:
    """The stopping rule's lines (`livingmeta.screening.stopping.stopping_lines`) for the review as it stands."""
    from livingmeta.screening.stopping import stopping_lines
    from warehouse.screening import screening_status

    st = screening_status(con, review_id)
    return stopping_lines(st["stopping"], review_id, since_include=st["since_last_include"]) if st["screened"] else []


def _now():
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc)


@app.command("export")
def export_command(
    review: ReviewArg,
    fmt: Annotated[str, typer.Option("--format", help="csv (ASReview LAB can import it) | ris")] = "csv",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="File to write (default: standard output).")] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Export the review's records with their title/abstract labels as CSV (for ASReview LAB) or RIS.

    The export is recorded (its labels), so that ASReview's file coming back is imported against it: labels
    ASReview was given as prior knowledge are not taken for the reviewer's decisions.
    """
    from livingmeta.screening.ris import format_ris
    from warehouse.screening import export_records, record_export

    if fmt not in ("csv", "ris"):
        fail(f"--format {fmt!r} is not supported; use csv or ris")
    with review_warehouse(review, warehouse, read_only=False) as (review_id, con):
        rows = export_records(con, review_id)
        export_id = record_export(con, review_id, rows, fmt, _now())
    rows = [{**r, "livingmeta_export": export_id} for r in rows]
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        text = buf.getvalue()
    else:
        text = format_ris([{**r, "record_id": r["livingmeta_id"], "authors": r["authors_list"],
                            "keywords": r["keywords_list"]} for r in rows], export_id=export_id)
    if out is None:
        write_text(text)
    else:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as e:
            fail(e)
        make_console(stderr=True).print(f"Wrote {len(rows)} record(s) to {out}.")


@app.command("import")
def import_command(
    review: ReviewArg,
    file: Annotated[Path, typer.Argument(help="Decisions CSV (native columns, or ASReview LAB's CSV or RIS export).",
                                                 readable=False)],
    reviewer: Annotated[Optional[str], typer.Option("--reviewer", "-r", help="Who decided (ASReview exports: for labels whose row names no user in asreview_user_name).")] = None,
    stage: Annotated[Optional[str], typer.Option("--stage", help="Stage for rows without one: title_abstract | full_text")] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Import screening decisions; a bad row rejects the whole file, and importing a file twice adds nothing."""
    from livingmeta.userfiles import MAX_DECISIONS_BYTES, UserFileError, read_user_text
    from warehouse.screening import import_decisions

    if stage is not None:
        _check_stage(stage)
    try:  # a folder, an unreadable, empty, binary or non-UTF-8 file: one message before the warehouse is opened
        read_user_text(file, what="decisions CSV", max_bytes=MAX_DECISIONS_BYTES,
                       empty_hint="it needs a header row (record_id, decision, … or ASReview LAB's export columns)")
    except UserFileError as e:
        fail(str(e))
    with review_warehouse(review, warehouse, read_only=False) as (review_id, con):
        res = import_decisions(con, review_id, file, reviewer=reviewer, stage=stage)
    make_console().print(
        f"{res['file']} ({res['format']}): {res['rows']} decision(s) read, {res['added']} added, "
        f"{res['already_imported']} already imported.", markup=False)
    if res.get("priors"):
        make_console().print(f"{res['priors']} label(s) repeat what livingmeta exported (ASReview's prior knowledge): "
                             "not imported as anyone's decision.", markup=False, soft_wrap=True)
    # nothing a person wrote is dropped or changed without saying so
    notes = [f"{res['duplicates']} repeated row(s) in the file stored once" if res.get("duplicates") else "",
             f"{res['unchanged']} older than the same stored decision: nothing to add" if res.get("unchanged") else "",
             f"{res['replaced']} change(s) a reviewer's earlier decision" if res.get("replaced") else ""]
    if any(notes):
        make_console().print("; ".join(n for n in notes if n) + ".", markup=False)


@app.command("conflicts")
def conflicts_command(review: ReviewArg, warehouse: WarehouseOpt = None) -> None:
    """List two-reviewer disagreements waiting for a third decision, and Cohen's kappa."""
    from warehouse.screening import list_conflicts, screening_kappa

    with review_warehouse(review, warehouse) as (review_id, con):
        rows = list_conflicts(con, review_id)
        kappas = {s: screening_kappa(con, review_id, s) for s in ("title_abstract", "full_text")}
    console = make_console()
    for s, k in kappas.items():
        if k is not None:
            console.print(f"Cohen's kappa at {s}: {k:.3f}")
    if not rows:
        console.print(f"No conflicts in {review_id}.")
        return
    # one line per conflict (not a table): record ids and decisions must never be wrapped or cut
    console.print(f"{len(rows)} conflict(s) in {review_id}; a third reviewer's decision resolves each "
                  f"(`livingmeta screen next {review_id} --reviewer NAME`):")
    for r in rows:
        console.print(f"{r['record_id']}  [{r['stage']}]  {', '.join(r['decisions'])}  {r['title'] or ''}",
                      soft_wrap=True, markup=False)



app.add_typer(simulate.app)  # `screen simulate` (flows/cli/simulate.py)
