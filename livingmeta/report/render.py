"""Rendering a Report as self-contained HTML, as Markdown and as JSON.

All three are built from the same display rows (`Report.summary`, `.changes`, `.prisma`), so a number reads
the same in every format. HTML uses Jinja2 with autoescaping on: every value from a source is escaped, and only
our own SVG figures (text drawn as paths, checked for active content) are inserted as markup.
"""

from __future__ import annotations

import json
import math
from typing import Any

import jinja2
from markupsafe import Markup, escape

from livingmeta.report.document import Report
from livingmeta.report.templates import CSS, HTML, INDEX

_ENV = jinja2.Environment(
    autoescape=True, undefined=jinja2.ChainableUndefined, trim_blocks=False, keep_trailing_newline=True
)
_HTML = _ENV.from_string(HTML)
_INDEX = _ENV.from_string(INDEX)
_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]()#+!|~"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;"})


def summary_outline(text: Any) -> list[tuple[int, str]]:
    """A version summary (Markdown written by the alerting step) as (depth, plain text) lines.

    The summary's bold first line repeats the report's title and version, so it is dropped; `**` and
    backticks are removed because each renderer marks up (and escapes) the text itself. Depth is -1 for a
    paragraph line and 0, 1, ... for list items by indentation.

    Args:
        text: the stored summary (None or empty: no lines).
    Returns:
        the lines in order.
    """
    out: list[tuple[int, str]] = []
    lines = [ln for ln in str(text or "").splitlines() if ln.strip()]
    if lines and lines[0].strip().startswith("**") and lines[0].strip().endswith("**"):
        lines = lines[1:]
    for ln in lines:
        body = ln.lstrip()
        indent = len(ln) - len(body)
        plain = body.replace("**", "").replace("`", "")
        if body.startswith(("- ", "* ")):
            out.append((indent // 2, plain[2:].strip()))
        else:
            out.append((-1, plain.strip()))
    return out


def summary_headline(text: Any) -> str:
    """The first paragraph line of a version summary ("Why: new studies: ..."), for the index of versions."""
    return next((t for depth, t in summary_outline(text) if depth < 0), "")


def _summary_html(text: Any) -> Markup:
    html, depth = [], -1
    for d, t in summary_outline(text):
        while depth > max(d, -1):
            html.append("</li></ul>")
            depth -= 1
        if d < 0:
            html.append(f"<p>{escape(t)}</p>")
            continue
        if d > depth:
            html.append('<ul class="summary">' * (d - depth))
            depth = d
        else:
            html.append("</li>")
        html.append(f"<li>{escape(t)}")
    html.append("</li></ul>" * (depth + 1))
    return Markup("".join(html))


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG; no scripts, no external requests).

    Args:
        report: from `build_report`.
    Returns:
        the HTML text.
    """
    return _HTML.render(
        r=report, doc=report.doc, css=CSS, summary_html=_summary_html(report.doc["version"].get("summary"))
    )


def render_index(review: dict[str, Any], versions: list[dict[str, Any]]) -> str:
    """The index page of a review: every version, newest first, linking the reports that exist.

    Args:
        review: {"id", "title"}.
        versions: [{"version", "created_at", "as_of", "summary", "href" (relative link or None)}].
    Returns:
        the HTML text.
    """
    versions = [{**v, "summary": summary_headline(v.get("summary"))} for v in versions]
    return _INDEX.render(review=review, versions=versions, css=CSS)


def md(text: Any) -> str:
    """Escape text from a source for Markdown (inline markup, table pipes and raw HTML are neutralised)."""
    if text is None:
        return ""
    return " ".join(str(text).split()).translate(_MD_SPECIAL)


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out + [""]


def render_markdown(report: Report) -> str:
    """The report as Markdown (figures referenced as the PNG files written beside it).

    Args:
        report: from `build_report`.
    Returns:
        the Markdown text.
    """
    doc = report.doc
    v, prev = doc["version"], doc.get("previous_version")
    L = [
        f"# {md(report.title)}",
        "",
        f"Living systematic review `{doc['review']['id']}` — version {v['version']}"
        + (f", evidence searched up to {str(v['as_of'])[:10]}" if v.get("as_of") else "")
        + (f", published {str(v['created_at'])[:19].replace('T', ' ')}" if v.get("created_at") else ""),
        "",
    ]
    L += [f"## What changed since {'version ' + str(prev['version']) if prev else 'the start'}", ""]
    if not prev:
        L += ["This is the first version of the review.", ""]
    for depth, text in summary_outline(v.get("summary")):
        L.append(md(text) if depth < 0 else "  " * depth + "- " + md(text))
    L.append("")
    for key, items in (v.get("trigger") or {}).items():
        if items:
            L.append(f"- {md(str(key).replace('_', ' '))}: {', '.join(md(report.study_label(i)) for i in items)}")
    L.append("")
    L += _md_table(
        ["Analysis", "Previous version", "This version", "Changes", "Studies added", "Studies removed"],
        [
            [
                md(c["label"]),
                c["fmt_old"],
                c["fmt_new"],
                ", ".join(md(x.replace("_", " ")) for x in c["changes"]) or "–",
                ", ".join(md(x) for x in c["studies_added"]) or "–",
                ", ".join(md(x) for x in c["studies_removed"]) or "–",
            ]
            for c in report.changes
        ],
    )
    L += ["## Summary of findings", ""]
    if report.sof:
        L += [f"GRADE summary of findings for version {report.version}: per outcome, from its primary analysis.", ""]
        L += _md_table(
            [
                "Outcome",
                "Relative effect (95% CI)",
                "Assumed risk without intervention",
                "Corresponding risk with intervention (95% CI)",
                "Difference (95% CI)",
                "Participants (studies)",
                "Certainty (GRADE)",
            ],
            [
                [
                    md(o["label"]),
                    o["fmt"]["relative"],
                    o["fmt"]["assumed"]
                    + (f" (from {md(o['control_risk_source'])})" if o["control_risk_source"] else ""),
                    o["fmt"]["corresponding"],
                    o["fmt"]["difference"],
                    o["fmt"]["participants"],
                    o["fmt"]["certainty"] + (f" ({','.join(o['footnote_marks'])})" if o["footnote_marks"] else ""),
                ]
                for o in report.sof
            ],
        )
        L += [f"{f['mark']}. {md(f['text'])}" for f in report.sof_footnotes] + ([""] if report.sof_footnotes else [])
        if report.sof_changes:
            L += [f"Summary of findings, what changed since version {prev['version']}:", ""]
            L += [f"- **{md(c['label'])}**: {md('; '.join(c['changes']))}" for c in report.sof_changes] + [""]
        L += ["Results of every analysis:", ""]
    rows = []
    for s in report.summary:
        f = s["fmt"]
        if s["has_result"]:
            rows.append(
                [
                    md(s["label"]),
                    md(s["measure_name"]),
                    f["estimate"],
                    f["ci"],
                    f["pi"],
                    f["k"],
                    f["participants"],
                    f["p_value"],
                    f["tau2"],
                    f["i2"],
                    f["q_p"],
                    md(f["tsa"]),
                ]
            )
        else:
            rows.append([md(s["label"]), md(s["measure_name"]), "no estimate " + md(s.get("status") or ""), *["–"] * 9])
    L += _md_table(
        [
            "Analysis",
            "Measure",
            "Estimate",
            "95% CI",
            "95% PI",
            "k",
            "Participants",
            "p",
            "τ²",
            "I²",
            "Q test p",
            "TSA",
        ],
        rows,
    )
    for s in report.summary:
        L += [f"- **Warning** ({md(s['label'])}): {md(w)}" for w in s["warnings"]]
    L += ["## Plots", ""]
    for s in report.summary:
        L += [f"### {md(s['label'])}", ""]
        for p in report.plots_for(s["analysis_id"]):
            L += [f"![{md(p.title)}]({p.filename})", ""]
            if p.kind == "forest" and report.forest_notes.get(s["analysis_id"]):
                L += [md(report.forest_notes[s["analysis_id"]]), ""]
            t = report.tsa.get(s["analysis_id"]) if p.kind == "tsa" else None
            if t:
                L += [f"Trial sequential analysis: {md(t['status'])}. Assumptions:", ""]
                L += [f"- {md(line)}" for line in t["assumptions"]] + [""]
                L += _md_table(
                    [
                        "Look (study added)",
                        "Information",
                        "Fraction of RIS",
                        "Cumulative Z",
                        "Monitoring boundary",
                        "Futility boundary",
                    ],
                    [
                        [md(lk["label"]), lk["information"], lk["fraction"], lk["z"], lk["boundary"], lk["futility"]]
                        for lk in t["looks"]
                    ],
                )
    L += ["## PRISMA 2020 flow", ""]
    L += [f"![{md(p.title)}]({p.filename})\n" for p in report.plots_for(None) if p.kind == "prisma"]
    if report.prisma:
        L += _md_table(
            ["Step", "Previous version", "This version", "Change"],
            [[p["label"], p["fmt_previous"], p["fmt_current"], p["fmt_delta"]] for p in report.prisma],
        )
    reasons = ((doc.get("prisma") or {}).get("current") or {}).get("excluded_reasons") or {}
    if reasons:
        L += ["Reasons for exclusion at full text:", ""] + [f"- {md(r)}: {n}" for r, n in reasons.items()] + [""]
    if (doc.get("prisma") or {}).get("source"):
        L += [f"Counts from {md(doc['prisma']['source'])}.", ""]
    if doc.get("screening_automation"):
        L += [f"**Screening automation.** {md(doc['screening_automation'])}", ""]
    L += ["## Search log", ""]
    if doc.get("search_definitions"):
        L += _md_table(
            ["Source", "Query as sent", "Earliest date", "First used"],
            [
                [
                    md(d.get("source")),
                    md(d.get("query")),
                    str(d.get("earliest_date") or "–")[:10],
                    str(d.get("first_used_at") or "–")[:10],
                ]
                for d in doc["search_definitions"]
            ],
        )
    L += _md_table(
        ["Run", "Source", "Mode", "Window searched", "Status", "Found", "New", "Changed", "Unchanged", "Deleted"],
        [
            [
                s["fmt_run"],
                md(s.get("source")),
                md(s.get("mode")),
                s["fmt_window"],
                md(s.get("status")) + (f" ({md(s['error'])})" if s.get("error") else ""),
                *(str(s.get(k, "")) for k in ("n_found", "n_new", "n_changed", "n_unchanged", "n_deleted")),
            ]
            for s in report.searches
        ],
    )
    L += [f"## Included studies ({len(report.studies)})", ""]
    for st in report.studies:
        L.append(f"- **{md(st['label'])}**" + (" — retracted" if st["retracted"] else ""))
        for rec in st["records"]:
            links = " ".join(
                f"[{md(lk['label'])}]({lk['url']})" if lk["url"] else md(lk["label"]) for lk in rec["links"]
            )
            L.append(
                f"  - {md(rec.get('first_author'))}{'. ' if rec.get('first_author') else ''}"
                f"{md(rec.get('title') or rec.get('record_id'))}"
                f"{' *' + md(rec['journal']) + '*' if rec.get('journal') else ''}"
                f"{' ' + str(rec['year']) if rec.get('year') else ''}. {links}"
                + (" — retracted" if rec.get("retracted") else "")
            )
    L.append("")
    if doc.get("notes"):
        L += ["## Notes", ""] + [f"- {md(n)}" for n in doc["notes"]] + [""]
    return "\n".join(L)


def _plain(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def render_json(report: Report) -> str:
    """The report as JSON: the document it was built from, the display rows (raw and formatted numbers, the
    same strings the HTML shows) and the figure files.

    Args:
        report: from `build_report`.
    Returns:
        JSON text (NaN and infinities written as null).
    """
    out = {
        "schema": report.doc.get("schema"),
        "review": report.doc["review"],
        "version": report.doc["version"],
        "previous_version": report.doc.get("previous_version"),
        "summary": report.summary,
        "changes": report.changes,
        "prisma": report.prisma,
        "summary_of_findings": {"rows": report.sof, "changes": report.sof_changes, "footnotes": report.sof_footnotes},
        "tsa": report.tsa,
        "forest_notes": report.forest_notes,
        "plots": [
            {"kind": p.kind, "title": p.title, "analysis_id": p.analysis_id, "file": p.filename} for p in report.plots
        ],
        "document": report.doc,
    }
    return json.dumps(_plain(out), indent=2, sort_keys=False, default=str, allow_nan=False) + "\n"
