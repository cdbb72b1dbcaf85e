"""CLI command `meta`: pool a study CSV and print a table or JSON; `register` adds it to the app
built in flows/cli.py."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from flows.cli_output import line, make_console, print_json, styled

# livingmeta.stats (numpy, scipy, pandas) is imported by the command itself: `livingmeta --help` must not pay it

DEFAULT_MEASURE = {"binary": "OR", "proportion": "PLO", "continuous": "MD", "generic": "GEN"}
RATIO_MEASURES = {"RR", "OR", "PETO", "ROM"}


def _fmt(x, digits=3):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}"


def _p(x):
    if x is None:
        return "-"
    return "<0.0001" if x < 1e-4 else f"{x:.4f}"


def _display(measure, scale, yi):
    if yi is None:
        return None
    if measure in RATIO_MEASURES or (measure == "GEN" and scale == "ratio"):
        return math.exp(yi)
    return yi


def _print_result(console: Console, title: str, res: dict, scale: str, show_studies: bool = True) -> None:
    measure = res["measure"]
    bt_label = "ratio scale" if (measure in RATIO_MEASURES or (measure == "GEN" and scale == "ratio")) else None
    if show_studies:
        table = Table(title=title)
        table.add_column("Study")
        table.add_column(f"{measure}" + (f" ({bt_label})" if bt_label else ""), justify="right")
        table.add_column(f"{int(round(100 * res['_level']))}% CI", justify="right")
        table.add_column("Weight %", justify="right")
        for s in res["studies"]:
            est = _display(measure, scale, s["yi"])
            lo, hi = _display(measure, scale, s["ci_lower"]), _display(measure, scale, s["ci_upper"])
            table.add_row(s["study"], _fmt(est), "-" if lo is None else f"{_fmt(lo)} to {_fmt(hi)}",
                          _fmt(s["weight"], 1))
        console.print(table)
    est, lo, hi = res["estimate"], res["ci_lower"], res["ci_upper"]
    pil, piu = res["pi_lower"], res["pi_upper"]
    if res["estimate_bt"] is not None:
        est, lo, hi = res["estimate_bt"], res["ci_lower_bt"], res["ci_upper_bt"]
        pil, piu = res["pi_lower_bt"], res["pi_upper_bt"]
    console.print(f"Pooled {measure} ({res['method']}, {'Knapp-Hartung' if res['test'] == 'knha' else 'z'} test), "
                  f"k = {res['k']}: {_fmt(est)} [{_fmt(lo)}, {_fmt(hi)}], p = {_p(res['p_value'])}")
    if pil is not None:
        console.print(f"Prediction interval: [{_fmt(pil)}, {_fmt(piu)}]")
    console.print(f"Heterogeneity: Q = {_fmt(res['q'], 2)} (df = {res['q_df'] if res['q_df'] is not None else '-'}, "
                  f"p = {_p(res['q_p'])}), tau2 = {_fmt(res['tau2'], 4)}, I2 = {_fmt(res['i2'], 1)}%, "
                  f"H2 = {_fmt(res['h2'], 2)}")
    for w in res["warnings"]:
        console.print(line(styled("warning:", "yellow"), " ", w))


def register(app: typer.Typer, subapps: dict[str, typer.Typer]) -> None:
    """Add this area's commands to the CLI."""

    @app.command("meta")
    def meta(
        file: Path = typer.Argument(..., help="CSV with one row per study (see shared/reference/README.md).",
                                    readable=False),
        measure: Optional[str] = typer.Option(None, "--measure", help="RR, OR, RD, PETO, PR, PLO, PAS, PFT, MD, "
                                              "SMD, ROM or GEN (default: OR, PLO, MD or GEN by data kind)."),
        method: str = typer.Option("REML", "--method", help="FE, MH, PETO, DL, REML, ML, PM, SJ, HE or EB."),
        test: str = typer.Option("z", "--test", help="z or knha (Knapp-Hartung)."),
        subgroup: Optional[str] = typer.Option(None, "--subgroup", help="Column to split studies into subgroups."),
        level: float = typer.Option(0.95, "--level", help="Confidence level."),
        scale: str = typer.Option("difference", "--scale", help="GEN only: ratio or difference."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    ) -> None:
        """Pool the studies in FILE and print the result (meta-analysis)."""
        from flows.cli import fail
        from livingmeta.userfiles import MAX_CSV_BYTES, UserFileError, check_user_file, read_user_text

        try:  # one message for a folder, an unreadable, empty, binary or non-UTF-8 file
            read_user_text(check_user_file(file, what="study CSV", max_bytes=MAX_CSV_BYTES), what="study CSV",
                           empty_hint="it needs a header row and one row per study")
        except UserFileError as exc:
            fail(str(exc))
        from livingmeta.stats import StatsInputError, meta_analyze, read_meta_csv, subgroup_analysis

        try:
            rows = read_meta_csv(file)
            chosen = (measure or DEFAULT_MEASURE[rows.attrs["kind"]]).upper()
            kw = dict(measure=chosen, method=method, test=test, level=level)
            if chosen == "GEN":
                kw["scale"] = scale
            result = meta_analyze(rows, **kw)
            groups = subgroup_analysis(rows, by=subgroup, **kw) if subgroup else None
        except StatsInputError as exc:
            fail(str(exc))
        out = result.to_dict()
        if groups is not None:
            out["subgroups"] = {
                "by": groups["by"],
                "groups": {name: r.to_dict() for name, r in groups["subgroups"].items()},
                "q_between": groups["q_between"], "q_between_df": groups["q_between_df"],
                "q_between_p": groups["q_between_p"],
            }
        if as_json:
            print_json(out, allow_nan=False)
            return
        console = make_console(width=120)
        shown = dict(out, _level=level if level <= 1 else level / 100)
        _print_result(console, f"{file.name}: {chosen}, {method.upper()}", shown, scale)
        if groups is not None:
            for name, r in groups["subgroups"].items():
                console.print()
                _print_result(console, f"Subgroup {subgroup} = {name}", dict(r.to_dict(), _level=shown["_level"]),
                              scale, show_studies=False)
                console.print(f"  (subgroup {subgroup} = {name})")
            console.print()
            console.print(f"Test for subgroup differences: Q = {_fmt(groups['q_between'], 2)}, "
                          f"df = {groups['q_between_df'] if groups['q_between_df'] is not None else '-'}, "
                          f"p = {_p(groups['q_between_p'])}")
