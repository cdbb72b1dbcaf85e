"""`livingmeta init|update|status`: start a review, run one update cycle, see where it stands.

The cycle itself is the update-review flow (flows/update.py); what `status` shows is
`warehouse.reviews.review_status`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Optional

import typer

from flows import settings
from flows.cli.common import JsonOpt, ReviewArg, WarehouseOpt, console, fail, review_warehouse, user_errors
from flows.cli.layout import print_table
from flows.cli.output import line, print_json, styled

app = typer.Typer()


@app.command()
def init(path: Annotated[Path, typer.Argument(help="Folder for the new review (created if missing).")]) -> None:
    """Write a commented review.toml template that validates."""
    from livingmeta.config import TEMPLATE, parse_review

    target = path / "review.toml"
    if target.exists():
        fail(f"{target} already exists; edit it, or choose another folder")
    parse_review(TEMPLATE, "template")  # the template must always validate
    try:
        path.mkdir(parents=True, exist_ok=True)
        target.write_text(TEMPLATE, encoding="utf-8")
    except OSError as e:
        fail(e)
    console.print(f"Wrote {target}. Edit the query and analyses, then run `livingmeta update {path}`.")


@app.command()
def update(
    review: Annotated[str, typer.Argument(help="Review folder (holding review.toml).")],
    warehouse: WarehouseOpt = None,
    out: Annotated[Optional[str], typer.Option(help="Where reports and snapshots go.")] = None,
    replay: Annotated[Optional[str], typer.Option(help="Folder of recorded responses (pubmed/, ctgov/) instead of the network.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the cycle's summary as JSON.")] = False,
) -> None:
    """Run one living-review cycle: search, link, flag, analyse, publish."""
    from livingmeta.config import load_review

    try:
        load_review(review)
    except user_errors() as e:
        fail(str(e))
    settings.quiet_prefect_defaults()
    from flows.update import update_review

    wh = settings.warehouse_path(warehouse)
    outp = settings.output_dir(out)
    from warehouse import opened

    from tasks.observe import state_result
    from warehouse.lock import update_lock

    with contextlib.ExitStack() as held:
        # the update lock first (held until the cycle ends, so no second update can start in between), then a
        # DuckDB open: a warehouse busy in another process fails here in one line, before anything is written
        # and not after a flow run's tracebacks
        try:
            held.enter_context(update_lock(wh))
            with opened(wh):
                pass
        except user_errors() as e:
            fail(str(e))
        try:
            # Prefect's own console lines ("Finished in state Failed(...)") would repeat what the one line below
            # says; they still reach the Prefect API with the run's logs
            with _prefect_console_quiet():
                state = update_review(str(Path(review).resolve()), str(wh), str(outp), replay_dir=replay,
                                      return_state=True)
                summary = state_result(state)
        except user_errors() as e:
            fail(str(e))
    if json_out:
        print_json(summary, indent=2)
    else:
        print_summary(summary)
    if state.is_failed():
        # cron `&&` chains and schedulers see a failed cycle (exit 1; 2 is for the user's errors); what
        # succeeded was committed, and the message says so
        fail(state.message or "the update failed", code=1)


@contextlib.contextmanager
def _prefect_console_quiet():
    """Raise Prefect's console handler to CRITICAL for the duration (the API handler is untouched)."""
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler

    handlers = [h for name in ("", "prefect") for h in logging.getLogger(name).handlers
                if isinstance(h, PrefectConsoleHandler)]
    levels = [h.level for h in handlers]
    for h in handlers:
        h.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for h, level in zip(handlers, levels):
            h.setLevel(level)


def print_summary(summary: dict, title: str | None = None) -> None:
    """What one update cycle did, for people."""
    from rich.table import Table

    # cells and titles are strings: the console prints them as cleaned text (errors may echo a server)
    t = Table(title=title or f"update of {summary['review_id']} as of {summary['as_of'][:10]}", show_lines=False)
    for c in ("source", "status", "new", "changed", "unchanged", "deleted", "note"):
        t.add_column(c)
    for s in summary["searches"]:
        t.add_row(s["source"], s.get("status", ""), *(str(s.get(k, "")) for k in ("new", "changed", "unchanged", "deleted")),
                  s.get("error") or _left_out(s.get("skipped"), s.get("unrequested")))
    console.print(t)
    for text in summary_lines(summary):
        console.print(text)


def _left_out(skipped, unrequested) -> str:
    """What a search received but did not store (issue 14: never silent), for the note/error column."""
    parts = [f"{skipped} skipped (unreadable)" if skipped else "", f"{unrequested} unrequested, not stored" if unrequested else ""]
    text = "; ".join(p for p in parts if p)
    return f"{text} — see alerts / source_record_skips" if text else ""


def summary_lines(summary: dict) -> list[str]:
    """One cycle's studies, queue, inputs, analyses, version and outputs as sentences (details: --json)."""
    def names(xs) -> str:
        return ", ".join(map(str, xs)) if xs else "–"

    st, q, an = summary.get("studies") or {}, summary.get("queue") or {}, summary.get("analyses") or {}
    out = [f"studies: {st.get('records', '?')} records in {st.get('studies', '?')} studies "
           f"({st.get('new_studies', 0)} new, {len(st.get('merged') or [])} merged, {st.get('conflicts', 0)} link conflicts)",
           f"screening: {q.get('new', 0)} new record(s) queued, {q.get('pending', 0)} waiting"
           + (f" (ranked by {q['ranker']})" if q.get("ranker") else "")]
    for a in (summary.get("inputs") or {}).get("applied") or []:
        out.append(f"recorded input {a.get('file')}: {a.get('added', 0)} added of {a.get('rows', 0)} row(s)")
    out.append(f"analyses: recomputed {names(an.get('computed'))}; unchanged {names(an.get('unchanged'))}; "
               f"no data {names(an.get('no_data'))}" + (f"; FAILED {names(an.get('failed'))}" if an.get("failed") else ""))
    v = summary.get("version") or {}
    if v.get("version"):
        out.append(f"version {v['version']} published")
    else:
        latest = v.get("latest_version")
        out.append("no new version: the estimates did not change"
                   + (f" (latest is version {latest})" if latest else " (none published yet: no analysis has data)"))
    o = summary.get("outputs") or {}
    if o.get("report"):
        out.append(f"report: {o['report']}")
    return out


@app.command()
def status(review: ReviewArg, warehouse: WarehouseOpt = None, json_out: JsonOpt = False) -> None:
    """Show the last runs per source, counts, the screening queue and the latest version."""
    from warehouse.reviews import review_status

    with review_warehouse(review, warehouse) as (review_id, con):
        st = review_status(con, review_id)
    if json_out:
        print_json(st, indent=2)
        return
    console.print(line(styled(review_id, "bold"), f"  records: {st['records']}  studies: {st['studies']}  "
                       f"queue: {st['queue_pending']} pending  decisions: {st['decisions']}"))
    lu = st["last_update"]
    if lu:
        console.print(f"last update #{lu['update_id']}: {lu['status']} at {_when(lu['finished_at'] or lu['started_at'])}"
                      + (f" — {lu['error']}" if lu.get("error") else ""))
    print_table(console, ("source", "status", "mode", "searched to", "found", "new", "changed", "unchanged",
                          "deleted", "error"),
                [[r["source"], r["status"], r["mode"], _when(r["window_end"]),
                  *(str(r[k]) for k in ("n_found", "n_new", "n_changed", "n_unchanged", "n_deleted")),
                  r["error"] or _left_out(r.get("n_skipped"), r.get("n_unrequested"))]
                 for r in st["sources"]],
                title="last search run per source", wrap=("error",))
    v = st["latest_version"]
    console.print(f"latest version: {v['version']} ({str(v['created_at'])[:19]})" if v else "latest version: none yet")
    for text in st.get("guidance", []):
        console.print(text)


def _when(t) -> str:
    """A stored UTC time for people: the date alone at midnight, else to the minute."""
    if not t:
        return "–"
    text = str(t).replace("T", " ")
    return text[:10] if text[11:19] in ("", "00:00:00") else f"{text[:16]} UTC"
