"""The `livingmeta` command line."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from flows import settings
from flows.cli.output import console, err_console, error, line, print_json, styled

# before anything imports prefect: its settings are read once, at import
settings.quiet_prefect_defaults()

app = typer.Typer(
    help="livingmeta keeps a systematic review and its meta-analysis alive: search, screen, extract, "
    "re-analyse, publish what changed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
screen_app = typer.Typer(help="Screen records: terminal screening, export/import, simulation.", no_args_is_help=True)
extract_app = typer.Typer(help="Extraction data: templates, imports, registry suggestions.", no_args_is_help=True)
studies_app = typer.Typer(help="Studies: list them, link and unlink records by hand.", no_args_is_help=True)
app.add_typer(screen_app, name="screen")
app.add_typer(extract_app, name="extract")
app.add_typer(studies_app, name="studies")
SUBAPPS = {"screen": screen_app, "extract": extract_app, "studies": studies_app}

WarehouseOpt = Annotated[
    Optional[str],
    typer.Option("--warehouse", "-w", help="Warehouse file (default: $LIVINGMETA_WAREHOUSE or ~/.livingmeta/warehouse.duckdb)."),
]


def fail(message: str | BaseException, code: int = 2) -> None:
    """Print one message for people (no traceback; printed as text, never markup) and exit.

    An exception is described by `describe_error` (an OSError names its file and what to do).
    """
    error(describe_error(message) if isinstance(message, BaseException) else message)
    raise typer.Exit(code)


def user_errors():
    """The exceptions that are the user's to fix: printed as one message, exit code 2.

    Besides our own errors (ConfigError, WarehouseError, ValueError and its subclasses), an OSError is about
    a path the user gave (a folder where a file was expected, no permission, no such file) and a
    UnicodeError about a file's encoding; both name the file in their message (see `describe_error`).
    """
    from livingmeta.config import ConfigError

    errors: tuple = (ConfigError, FileNotFoundError, ValueError, OSError, UnicodeError)
    # errors of modules a command loaded (importing them here would load duckdb or scipy for every command)
    for module, name in (("warehouse.db", "WarehouseError"), ("livingmeta.stats.errors", "StatsInputError")):
        if module in sys.modules:
            errors += (getattr(sys.modules[module], name),)
    return errors


def describe_error(e: BaseException) -> str:
    """One line for a user error: an OSError names its file and what is wrong (never "[Errno 13]")."""
    from livingmeta.userfiles import describe_os_error

    if isinstance(e, OSError) and not isinstance(e, FileNotFoundError) or (
            isinstance(e, FileNotFoundError) and e.filename is not None):
        return describe_os_error(e)
    if isinstance(e, UnicodeDecodeError):
        return f"cannot read text: not UTF-8 ({e.reason} at byte {e.start}); save the file as UTF-8"
    return str(e) or type(e).__name__


def review_id_for(review: str, warehouse: str | None) -> tuple[str, Path]:
    """A REVIEW argument is a review folder (or its review.toml) or the id of a review in the warehouse."""
    from livingmeta.config import load_review
    from warehouse import opened

    p = Path(review)
    if p.exists():
        return load_review(p).id, settings.warehouse_path(warehouse)
    wh = settings.warehouse_path(warehouse)
    if wh.exists():
        with opened(wh, read_only=True) as con:
            row = con.execute("SELECT review_id FROM reviews WHERE review_id = ?", [review]).fetchone()
        if row:
            return row[0], wh
    raise ValueError(f"{review!r} is neither a review folder nor a review id in {wh}; give the folder holding review.toml")


@contextlib.contextmanager
def review_warehouse(review: str, warehouse: str | None, read_only: bool = True):
    """(review id, open warehouse connection) for a REVIEW argument.

    The user's errors inside the block (a bad review, a locked or missing warehouse, a bad value) print one
    message and exit with code 2.
    """
    from warehouse import opened

    try:
        review_id, wh = review_id_for(review, warehouse)
        with opened(wh, read_only=read_only) as con:
            yield review_id, con
    except user_errors() as e:
        fail(e)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        console.print(f"livingmeta {version('livingmeta')}")
        raise typer.Exit()


@app.callback()
def _main_options(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Print the livingmeta version and exit.")] = None,
) -> None:
    """livingmeta keeps a systematic review and its meta-analysis alive: search, screen, extract, re-analyse,
    publish what changed."""


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
def status(
    review: Annotated[str, typer.Argument(help="Review folder or review id.")],
    warehouse: WarehouseOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Show the last runs per source, counts, the screening queue and the latest version."""
    from warehouse.reviews import review_status

    with review_warehouse(review, warehouse) as (review_id, con):
        st = review_status(con, review_id)
        st.update(extra_status(con, review_id))
    if json_out:
        print_json(st, indent=2)
        return
    console.print(line(styled(review_id, "bold"), f"  records: {st['records']}  studies: {st['studies']}  "
                       f"queue: {st['queue_pending']} pending  decisions: {st['decisions']}"))
    lu = st["last_update"]
    if lu:
        console.print(f"last update #{lu['update_id']}: {lu['status']} at {_when(lu['finished_at'] or lu['started_at'])}"
                      + (f" — {lu['error']}" if lu.get("error") else ""))
    from flows.cli.layout import print_table

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


def extra_status(con, review_id: str) -> dict:
    """Status parts that later areas add (screening guidance); empty when not available."""
    try:
        from warehouse.screening import screening_status
    except ImportError:
        return {}
    return screening_status(con, review_id)


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


def _register_areas() -> None:
    from flows.cli import analysis, deploy, extract, meta, report, screen, simulate, studies

    for mod in (meta, screen, simulate, studies, extract, analysis, report, deploy):
        mod.register(app, SUBAPPS)


_register_areas()


def main() -> None:
    """Console entry point: user errors print one message; anything else is a bug and keeps its traceback."""
    try:
        app()
    except Exception as e:  # not `except user_errors()`: that would be evaluated (and import) on every exit
        if not isinstance(e, user_errors()):
            raise
        error(describe_error(e))  # an error a command did not catch itself
        sys.exit(2)


if __name__ == "__main__":
    main()
