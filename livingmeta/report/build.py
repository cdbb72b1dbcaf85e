"""Building a report from its document: display rows (`document`) plus the figures (`plots`).

This module is the only one that uses both: `document` turns the document into rows and text, `plots` draws,
and neither imports the other.
"""

from __future__ import annotations

import re
from typing import Any

from matplotlib.figure import Figure

from livingmeta.report.document import (
    Plot,
    Report,
    _change_rows,
    join_prose,
    _prisma_rows,
    _search_rows,
    _study_rows,
    _summary_row,
    check_document,
    display_numbers,
    sof_rows,
    study_arms,
    study_label_map,
    tsa_section,
)
from livingmeta.report.plots import (
    FUNNEL_MIN_K,
    cumulative_plot,
    figure_files,
    forest_plot,
    funnel_plot,
    heterogeneity_text,
    is_common_effect,
    overall_test_text,
    prisma_diagram,
    tsa_plot,
    _finite,
)

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def _file_name(*parts: str) -> str:
    return _SAFE_NAME.sub("-", "-".join(p for p in parts if p)).strip("-") + ".png"


def _outcome(doc: dict[str, Any], a: dict[str, Any]) -> dict[str, Any]:
    return next((o for o in doc.get("outcomes") or [] if o.get("id") == a.get("outcome")), {})


def forest_notes(meta: dict[str, Any]) -> list[str]:
    """The lines printed under a forest plot, for the report text too (same words as on the figure)."""
    lines = [t for t in (heterogeneity_text(meta), overall_test_text(meta)) if t]
    if is_common_effect(meta):
        lines.append("Common-effect model: between-study variance is assumed to be zero; no prediction interval.")
    return lines


def report_plots(report: Report) -> list[Plot]:
    """Draw every figure the report shows, in the order the report shows them."""
    plots: list[Plot] = []
    labels = report.labels

    def add(fig: Figure, kind: str, title: str, aid: str | None) -> None:
        prefix = f"fig{len(plots) + 1}"
        svg, png = figure_files(fig, prefix, title)
        plots.append(
            Plot(kind=kind, title=title, analysis_id=aid, filename=_file_name(aid or "review", kind), svg=svg, png=png)
        )

    for row, a in zip(report.summary, report.doc["analyses"]):
        result = a.get("result") or {}
        meta = result.get("meta")
        aid, label, measure, ratio = row["analysis_id"], row["label"], row["measure"], row["ratio"]
        if not meta:
            continue
        out = _outcome(report.doc, a)
        kind = a.get("kind") or out.get("kind") or ""
        studies = list(meta.get("studies") or [])
        add(
            forest_plot(
                studies,
                meta,
                measure,
                ratio,
                label,
                arms=study_arms(result, kind),
                labels=labels,
                kind=kind,
                treatment=out.get("treatment_label") or "treatment",
                control=out.get("control_label") or "control",
                higher_is_better=bool(out.get("higher_is_better")),
            ),
            "forest",
            f"Forest plot: {label}",
            aid,
        )
        cum = [
            {
                "label": (
                    f"+ {report.study_label(c.get('added'))}"
                    + (
                        f" ({c.get('year')})"
                        if c.get("year") is not None and str(c.get("year")) not in report.study_label(c.get("added"))
                        else ""
                    )
                ),
                **display_numbers(c),
                "k": c.get("k"),
            }
            for c in result.get("cumulative") or []
        ]
        if cum:
            add(
                cumulative_plot(cum, ratio, measure, f"Cumulative meta-analysis by study: {label}"),
                "cumulative",
                f"Cumulative forest plot (studies added in order of year): {label}",
                aid,
            )
        hist = a.get("history") or []
        if len(hist) >= 2:
            rows = [
                {
                    "label": f"version {h.get('version')}"
                    + (f" ({str(h.get('as_of'))[:10]})" if h.get("as_of") else ""),
                    **{k: h.get(k) for k in ("estimate", "ci_lower", "ci_upper", "k")},
                }
                for h in hist
            ]
            add(
                cumulative_plot(rows, ratio, measure, f"Pooled estimate across review versions: {label}"),
                "versions",
                f"Cumulative forest plot across review versions: {label}",
                aid,
            )
        if result.get("tsa"):
            add(
                tsa_plot(
                    result["tsa"],
                    f"Trial sequential analysis: {label}",
                    settings=(a.get("settings") or {}).get("tsa") or {},
                    kind=kind,
                    labels=labels,
                ),
                "tsa",
                f"Trial sequential analysis: {label}",
                aid,
            )
        if sum(1 for s in studies if _finite(s.get("yi")) is not None) >= FUNNEL_MIN_K:
            add(
                funnel_plot(studies, meta, measure, ratio, f"Funnel plot: {label}"),
                "funnel",
                f"Funnel plot: {label}",
                aid,
            )
    prisma = report.doc.get("prisma") or {}
    if prisma.get("current"):
        add(
            prisma_diagram(prisma["current"], prisma.get("previous"), "PRISMA 2020 flow diagram for updated reviews"),
            "prisma",
            "PRISMA 2020 flow diagram for updated reviews",
            None,
        )
    return plots


def build_report(doc: dict[str, Any], *, plots: bool = True) -> Report:
    """Build a report (display rows and figures) from a report document.

    Args:
        doc: the report document (schema in `livingmeta.report.document`).
        plots: draw the figures (forest, cumulative, TSA, funnel when k >= 10, PRISMA); False skips them
            (for quick checks of the tables).
    Returns:
        a Report, rendered by `render_html`, `render_markdown` and `render_json`.
    Raises:
        ReportInputError: the document lacks a required field.
    """
    doc = check_document(doc)
    labels = study_label_map(doc["studies"])
    summary = [_summary_row(a, i) for i, a in enumerate(doc["analyses"])]
    changes = _change_rows(doc, summary)
    for c in changes:
        for key in ("studies_added", "studies_removed"):
            c[key] = [labels.get(x, x) for x in c[key]]
    sof, sof_changes, sof_notes = sof_rows(doc, summary)
    report = Report(
        doc=doc,
        summary=summary,
        changes=changes,
        prisma=_prisma_rows(doc["prisma"]),
        searches=_search_rows(doc["searches"]),
        studies=_study_rows(doc["studies"], labels),
        labels=labels,
        sof=sof,
        sof_changes=sof_changes,
        sof_footnotes=sof_notes,
    )
    for a in doc["analyses"]:
        meta = (a.get("result") or {}).get("meta")
        if meta:
            report.forest_notes[a["analysis_id"]] = join_prose(forest_notes(meta))
        t = tsa_section(a, labels)
        if t:
            report.tsa[a["analysis_id"]] = t
    if plots:
        report.plots = report_plots(report)
    return report
