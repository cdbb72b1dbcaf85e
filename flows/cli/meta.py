"""`livingmeta meta`: pool a study CSV and print a table or JSON (livingmeta.stats does the pooling). Beside the pooled result it runs, on request, the subgroup analysis (with the
shared-tau2 moderator test), leave-one-out, cumulative, Egger's test and trim-and-fill; `--json` carries
them all, and lists the studies that are not estimable with their CSV line and reason."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from flows.cli.common import fail
from flows.cli.output import line, make_console, print_json, styled

# livingmeta.stats (numpy, scipy, pandas) is imported by the command itself: `livingmeta --help` must not pay it

DEFAULT_MEASURE = {"binary": "OR", "proportion": "PLO", "continuous": "MD", "generic": "GEN"}
RATIO_MEASURES = {"RR", "OR", "PETO", "ROM"}

app = typer.Typer()


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
            if s.get("not_estimable"):
                table.add_row(s["study"], "not estimable", "", "")
                continue
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
    common = res["method"] in ("FE", "MH", "PETO")
    console.print(f"Heterogeneity: Q = {_fmt(res['q'], 2)} (df = {res['q_df'] if res['q_df'] is not None else '-'}, "
                  f"p = {_p(res['q_p'])}), " + ("" if common else f"tau2 = {_fmt(res['tau2'], 4)}{_ci(res, 'tau2', 4)}, ")
                  + f"I2 = {_fmt(res['i2'], 1)}%{_ci(res, 'i2', 1)}, H2 = {_fmt(res['h2'], 2)}{_ci(res, 'h2', 2)}")
    for w in res["warnings"]:
        console.print(line(styled("warning:", "yellow"), " ", w))


def _ci(res: dict, key: str, digits: int) -> str:
    lo, hi = res.get(f"{key}_ci_lower"), res.get(f"{key}_ci_upper")
    return "" if lo is None or hi is None else f" [{_fmt(lo, digits)}, {_fmt(hi, digits)}]"


def _without_studies(result) -> dict:
    d = result.to_dict()
    d.pop("studies", None)
    return d


def _not_estimable(result, rows) -> list[dict]:
    """Studies without an effect size of their own, with the CSV line and the reason."""
    lines = rows.attrs.get("lines") or []
    return [{"study": s["study"], "line": lines[i] if i < len(lines) else None, "reason": s["not_estimable"]}
            for i, s in enumerate(result.studies) if s.get("not_estimable")]


def _extras(rows, kw: dict, subgroup: str | None, leave_one_out: bool, cumulative: bool, egger: bool,
            trimfill: bool) -> dict:
    """The analyses asked for beside the pooled one, as JSON-ready dicts (keys as in `--json`)."""
    from livingmeta import stats as lm

    out: dict = {}
    if subgroup:
        groups = lm.subgroup_analysis(rows, by=subgroup, **kw)
        out["subgroups"] = {
            "by": groups["by"],
            "groups": {name: r.to_dict() for name, r in groups["subgroups"].items()},
            "q_between": groups["q_between"], "q_between_df": groups["q_between_df"],
            "q_between_p": groups["q_between_p"], "moderator": groups["moderator"],
        }
    if leave_one_out:
        out["leave_one_out"] = [{"omitted": name, **_without_studies(r)} for name, r in lm.leave_one_out(rows, **kw)]
    if cumulative:
        out["cumulative"] = [{"added": name, **_without_studies(r)} for name, r in lm.cumulative(rows, **kw)]
    if egger:
        out["egger"] = {"rma": lm.egger_test(rows, model="rma", **kw), "lm": lm.egger_test(rows, model="lm", **kw)}
    if trimfill:
        tf = lm.trim_and_fill(rows, **kw)
        out["trimfill"] = {"k0": tf["k0"], "side": tf["side"], "filled": tf["filled"],
                           "result": _without_studies(tf["result"])}
    return out


def _print_extras(console: Console, out: dict, level: float, scale: str, measure: str) -> None:
    groups = out.get("subgroups")
    if groups is not None:
        for name, r in groups["groups"].items():
            console.print()
            console.print(f"Subgroup {groups['by']} = {name}:")
            _print_result(console, f"Subgroup {groups['by']} = {name}", dict(r, _level=level), scale, show_studies=False)
        console.print()
        console.print(f"Test for subgroup differences (separate tau2): Q = {_fmt(groups['q_between'], 2)}, "
                      f"df = {groups['q_between_df'] if groups['q_between_df'] is not None else '-'}, "
                      f"p = {_p(groups['q_between_p'])}")
        m = groups["moderator"]
        if m["qm"] is not None:
            df = f"{m['qm_df']}, {m['qm_df2']}" if m["qm_df2"] is not None else f"{m['qm_df']}"
            console.print(f"Moderator test (shared tau2{'' if m['method'] == 'FE' else ' = ' + _fmt(m['tau2'], 4)}, "
                          f"{m['method']}): {'F' if m['qm_df2'] is not None else 'QM'}({df}) = {_fmt(m['qm'], 2)}, "
                          f"p = {_p(m['qm_p'])}; residual heterogeneity QE({m['qe_df']}) = {_fmt(m['qe'], 2)}, "
                          f"p = {_p(m['qe_p'])}")
        if m["note"]:
            console.print(f"  note: {m['note']}")
    for key, label, what in (("leave_one_out", "Leave-one-out", "omitted"), ("cumulative", "Cumulative", "added")):
        if key not in out:
            continue
        table = Table(title=f"{label} ({'without' if what == 'omitted' else 'adding'} each study)")
        for col in ("Study " + what, "k", "Estimate", f"{int(round(100 * level))}% CI", "p", "I2 %"):
            table.add_column(col, justify="left" if col.startswith("Study") else "right")
        for r in out[key]:
            bt = r["estimate_bt"] is not None
            est, lo, hi = ((r["estimate_bt"], r["ci_lower_bt"], r["ci_upper_bt"]) if bt else
                           (r["estimate"], r["ci_lower"], r["ci_upper"]))
            table.add_row(r[what], str(r["k"]), _fmt(est), "-" if lo is None else f"{_fmt(lo)} to {_fmt(hi)}",
                          _p(r["p_value"]), _fmt(r["i2"], 1))
        console.print()
        console.print(table)
    eg = out.get("egger")
    if eg is not None:
        console.print()
        rma, lm_ = eg["rma"], eg["lm"]
        if rma["statistic"] is None:
            console.print(f"Egger's test: needs at least 3 studies with an effect size (k = {rma['k']})")
        else:
            stat = "t" if rma["df"] is not None else "z"
            console.print(f"Egger's test (meta-regression on the standard error, {rma['method']}): "
                          f"{stat}{'(' + str(rma['df']) + ')' if rma['df'] is not None else ''} = "
                          f"{_fmt(rma['statistic'], 3)}, p = {_p(rma['p_value'])}; limit estimate (se -> 0) "
                          + " ".join((_fmt(_display(measure, scale, rma["limit"])),
                                      f"[{_fmt(_display(measure, scale, rma['limit_ci_lower']))},",
                                      f"{_fmt(_display(measure, scale, rma['limit_ci_upper']))}]")))
            console.print(f"Egger's test (weighted regression, Egger 1997): intercept {_fmt(lm_['intercept'])}, "
                          f"t({lm_['df']}) = {_fmt(lm_['statistic'], 3)}, p = {_p(lm_['p_value'])}")
    tf = out.get("trimfill")
    if tf is not None:
        console.print()
        r = tf["result"]
        bt = r["estimate_bt"] is not None
        est, lo, hi = ((r["estimate_bt"], r["ci_lower_bt"], r["ci_upper_bt"]) if bt else
                       (r["estimate"], r["ci_lower"], r["ci_upper"]))
        console.print(f"Trim-and-fill (L0): {tf['k0']} stud{'y' if tf['k0'] == 1 else 'ies'} filled on the "
                      f"{tf['side']} side; adjusted estimate, k = {r['k']}: {_fmt(est)} [{_fmt(lo)}, {_fmt(hi)}]")


@app.command("meta")
def meta(
    file: Path = typer.Argument(..., help="CSV with one row per study (see shared/reference/README.md).",
                                readable=False),
    measure: Optional[str] = typer.Option(None, "--measure", help="RR, OR, RD, PETO, PR, PLO, PAS, PFT, MD, "
                                          "SMD, ROM or GEN (default: OR, PLO, MD or GEN by data kind)."),
    method: str = typer.Option("REML", "--method", help="FE, MH, PETO, DL, REML, ML, PM, SJ, HE or EB."),
    test: str = typer.Option("z", "--test", help="z or knha (Knapp-Hartung)."),
    subgroup: Optional[str] = typer.Option(None, "--subgroup", help="Column to split studies into subgroups "
                                           "(separate tau2 per subgroup, and the moderator test with a shared "
                                           "tau2)."),
    leave_one_out: bool = typer.Option(False, "--leave-one-out", help="Also pool leaving out each study in turn."),
    cumulative: bool = typer.Option(False, "--cumulative", help="Also pool cumulatively (by the year column "
                                    "when there is one, else in file order)."),
    egger: bool = typer.Option(False, "--egger", help="Egger's test for funnel-plot asymmetry (meta-regression "
                               "on the standard error, and Egger 1997's regression)."),
    trimfill: bool = typer.Option(False, "--trimfill", help="Duval and Tweedie's trim-and-fill (L0)."),
    level: float = typer.Option(0.95, "--level", help="Confidence level."),
    scale: str = typer.Option("difference", "--scale", help="GEN only: ratio or difference."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Pool the studies in FILE and print the result (meta-analysis)."""
    from livingmeta.userfiles import MAX_CSV_BYTES, UserFileError, check_user_file, read_user_text

    try:  # one message for a folder, an unreadable, empty, binary or non-UTF-8 file
        read_user_text(check_user_file(file, what="study CSV", max_bytes=MAX_CSV_BYTES), what="study CSV",
                       empty_hint="it needs a header row and one row per study")
    except UserFileError as exc:
        fail(str(exc))
    from livingmeta.stats import StatsInputError, meta_analyze, read_meta_csv

    try:
        rows = read_meta_csv(file)
        chosen = (measure or DEFAULT_MEASURE[rows.attrs["kind"]]).upper()
        kw = dict(measure=chosen, method=method, test=test, level=level)
        if chosen == "GEN":
            kw["scale"] = scale
        result = meta_analyze(rows, **kw)
        extras = _extras(rows, kw, subgroup, leave_one_out, cumulative, egger, trimfill)
    except StatsInputError as exc:
        fail(str(exc))
    out = result.to_dict()
    out["not_estimable"] = _not_estimable(result, rows)
    out.update(extras)
    if as_json:
        print_json(out, allow_nan=False)
        return
    console = make_console(width=120)
    shown_level = level if level <= 1 else level / 100
    _print_result(console, f"{file.name}: {chosen}, {method.upper()}", dict(out, _level=shown_level), scale)
    _print_extras(console, extras, shown_level, scale, chosen)
