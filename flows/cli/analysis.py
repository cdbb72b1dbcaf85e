"""`livingmeta estimates` and `livingmeta diff`: the published numbers and what changed between versions."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from flows.cli.common import JsonOpt, ReviewArg, WarehouseOpt, console, review_warehouse
from flows.cli.layout import print_table
from flows.cli.output import line, print_json, styled

app = typer.Typer()

ESTIMATE_COLUMNS = ("analysis", "version", "k", "participants", "measure", "method", "estimate", "ci_lower",
                    "ci_upper", "pi_lower", "pi_upper", "p_value", "i2", "tau2")
RATIO = ("OR", "RR", "PETO", "ROM")


# What the terminal shows: an interval in one cell reads as one number and keeps the table within 80 columns.
SHOWN_COLUMNS = ("analysis", "model", "k", "n", "estimate", "95% CI", "95% PI", "p", "I²", "tau²")
DIFF_COLUMNS = ("", "estimate", "95% CI", "95% PI", "k", "n", "tau²", "I²", "p")


def _fmt():
    # livingmeta.report's package imports jinja2: only the commands that print numbers load it
    from livingmeta.report import document

    return document


def _shown(r: dict) -> list[str]:
    d = _fmt()
    fmt_count, fmt_interval, fmt_p, fmt_percent, fmt_tau2, fmt_value = (
        d.fmt_count, d.fmt_interval, d.fmt_p, d.fmt_percent, d.fmt_tau2, d.fmt_value)
    return [r["analysis"], f"{r['measure']} {r['method']}", fmt_count(r["k"]), fmt_count(r["participants"]),
            fmt_value(r["estimate"]), fmt_interval(r["ci_lower"], r["ci_upper"]),
            fmt_interval(r["pi_lower"], r["pi_upper"]), fmt_p(r["p_value"]), fmt_percent(r["i2"]),
            fmt_tau2(r["tau2"])]


def _diff_row(label: str, n: dict | None) -> list[str]:
    n = n or {}
    d = _fmt()
    fmt_count, fmt_interval, fmt_p, fmt_percent, fmt_tau2, fmt_value = (
        d.fmt_count, d.fmt_interval, d.fmt_p, d.fmt_percent, d.fmt_tau2, d.fmt_value)
    return [label, fmt_value(n.get("estimate")), fmt_interval(n.get("ci_lower"), n.get("ci_upper")),
            fmt_interval(n.get("pi_lower"), n.get("pi_upper")), fmt_count(n.get("k")), fmt_count(n.get("participants")),
            fmt_tau2(n.get("tau2")), fmt_percent(n.get("i2")), fmt_p(n.get("p_value"))]


# Proportions are pooled on a transformed scale that is not a log: its numbers are named transformed_* and
# `scale` says which transform it is.
PROPORTION_SCALES = {"PLO": "logit", "PAS": "arcsine square root", "PFT": "Freeman-Tukey double arcsine"}
_ANALYSIS_KEYS = ("estimate", "ci_lower", "ci_upper")


def analysis_scale(measure: str | None, estimate=None, log_estimate=None) -> str | None:
    """The name of the scale a measure is pooled on when it differs from the shown one: "log" for ratios, the
    transform for proportions (PROPORTION_SCALES); None when the shown numbers are the analysis scale."""
    if measure in RATIO or (measure == "GEN" and log_estimate is not None and log_estimate != estimate):
        return "log"
    return PROPORTION_SCALES.get(measure or "")


def name_scale_fields(numbers: dict | None) -> dict | None:
    """Rename the analysis-scale numbers (log_estimate, log_ci_lower, log_ci_upper) of one row by their scale:
    log_* with scale "log" for ratios, transformed_* with the transform in `scale` for PLO/PAS/PFT, and none at
    all where they equal the shown numbers (differences, PR). Other keys keep their place."""
    if numbers is None:
        return None
    scale = analysis_scale(numbers.get("measure"), numbers.get("estimate"), numbers.get("log_estimate"))
    prefix = "log_" if scale == "log" else "transformed_"
    out: dict = {}
    for key, value in numbers.items():
        if key.startswith("log_") and key[4:] in _ANALYSIS_KEYS:
            if scale is not None:
                out[prefix + key[4:]] = value
        else:
            out[key] = value
        if key == "log_ci_upper" and scale is not None:
            out["scale"] = scale
    return out


def estimate_rows(rows: list[dict]) -> list[dict]:
    """v_estimate_history rows -> the printed columns (back-transformed where the measure has one, plus the
    analysis scale: log_* for ratios, transformed_* and `scale` for proportions)."""
    out = []
    for r in rows:
        d = {"analysis": r["analysis_id"], "version": r["version"], "k": r["k"], "participants": r["participants"],
             "measure": r["measure"], "method": r["method"], "estimate": r["estimate"], "ci_lower": r["ci_lower"],
             "ci_upper": r["ci_upper"], "pi_lower": r["pi_lower"], "pi_upper": r["pi_upper"],
             "p_value": r["p_value"], "i2": r["i2"], "tau2": r["tau2"]}
        scale = analysis_scale(r["measure"], r["estimate"], r.get("log_estimate"))
        if scale is not None:
            prefix = "log_" if scale == "log" else "transformed_"
            d.update({prefix + k: r["log_" + k] for k in _ANALYSIS_KEYS}, scale=scale)
        d["tsa_status"] = r.get("tsa_status")
        out.append(d)
    return out


@app.command()
def estimates(
    review: ReviewArg,
    version: Annotated[Optional[int], typer.Option("--version", help="A published version (default: latest).")] = None,
    warehouse: WarehouseOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Print the published estimates of the latest (or a given) review version."""
    from warehouse.analysis import published_estimates

    with review_warehouse(review, warehouse) as (review_id, con):
        rows = estimate_rows(published_estimates(con, review_id, version))
    if json_out:
        print_json(rows, indent=2)
        return
    if not rows:
        console.print(f"{review_id}: no published version yet (run `livingmeta update`).")
        return
    print_table(console, SHOWN_COLUMNS, [_shown(r) for r in rows],
                title=f"{review_id}, version {rows[0]['version']} (ratios back-transformed; log scale with --json)")
    for r in rows:
        if r.get("tsa_status"):
            console.print(f"trial sequential analysis of {r['analysis']}: {r['tsa_status'].replace('_', ' ')}")


@app.command()
def diff(
    review: ReviewArg,
    from_version: Annotated[Optional[int], typer.Option("--from", help="Older version (default: the one before --to).")] = None,
    to_version: Annotated[Optional[int], typer.Option("--to", help="Newer version (default: latest).")] = None,
    warehouse: WarehouseOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Print what changed per analysis between two versions."""
    from warehouse.versions import compare_versions

    with review_warehouse(review, warehouse) as (review_id, con):
        compared = compare_versions(con, review_id, from_version, to_version)
    from_v, to_v, rows = compared["from_version"], compared["to_version"], compared["rows"]
    if json_out:
        rows = [{**r, "old": name_scale_fields(r.get("old")), "new": name_scale_fields(r.get("new"))} for r in rows]
        print_json(rows, indent=2)
        return
    console.print(line(styled(review_id, "bold"), f": version {from_v if from_v is not None else '(none)'} -> {to_v}"))
    if not rows:
        console.print("no estimate changed")
    for r in rows:
        console.print(line(styled(r["analysis_id"], "bold"), f": {', '.join(r['changes'])}"))
        # one line per number, old beside new: narrow at any width and read as "before -> after"
        old, new = _diff_row("", r["old"]), _diff_row("", r["new"])
        print_table(console, ("", f"version {from_v}" if from_v is not None else "before", f"version {to_v}"),
                    [[c, o, n] for c, o, n in zip(DIFF_COLUMNS[1:], old[1:], new[1:])])
        if r.get("studies_added"):
            console.print(f"  studies added: {', '.join(r['studies_added'])}")
        if r.get("studies_removed"):
            console.print(f"  studies removed: {', '.join(r['studies_removed'])}")
