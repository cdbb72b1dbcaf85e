"""The report document: the plain dict a report is built from, checked and turned into display rows.

The warehouse side (`warehouse.publish.report_document`) assembles the document; everything here is pure,
so a report can be rebuilt from a saved `report.json` without the warehouse.

Report document schema (all dates are ISO 8601 strings; numbers may be None where unknown)::

    {
      "review":  {"id": str, "title": str, "question": {...} | None},
      "version": {"version": int, "created_at": str, "as_of": str | None, "summary": str | None,
                  "trigger": {"new_studies": [...], "changed_data": [...], "retracted": [...]} | None},
      "previous_version": same shape as "version" | None,          # None for the first version
      "changes": [                                                  # rows of estimate_diffs for this version
        {"analysis_id": str, "from_version": int | None, "to_version": int,
         "changes": [str, ...], "studies_added": [str, ...], "studies_removed": [str, ...]}],
      "analyses": [{
        "analysis_id": str, "label": str, "role": str, "outcome": str | None,
        "measure": str, "method": str, "test": str | None,
        "status": "computed" | "unchanged" | "no_data" | "failed" | None, "error": str | None,
        "result": analysis_runs.result JSON (see the contract: meta, leave_one_out, cumulative,
                  subgroups, tsa) | None,
        "history": [{"version": int, "as_of": str | None, "estimate": x, "ci_lower": x, "ci_upper": x,
                     "k": int, "participants": n}]                  # display scale, oldest first,
      }],                                                           # up to and including this version
      "prisma": {"current": counts, "previous": counts | None, "source": str},
                 # counts: identified_pubmed, identified_ctgov, identified_total, duplicates_removed, screened,
                 # excluded_title_abstract, [full_text_sought, awaiting_full_text,] full_text_assessed,
                 # excluded_full_text, included (reports), studies_included, optional excluded_reasons {reason: n}
      "searches": [{"source", "query", "mode", "window_start", "window_end", "started_at", "finished_at",
                    "status", "n_found", "n_new", "n_changed", "n_unchanged", "n_deleted", "error"}],
      "search_definitions": [{"source", "query", "earliest_date", "first_used_at"}],
      "studies": [{"study_id": str, "label": str, "retracted": bool,
                   "records": [{"record_id", "source", "source_id", "title", "authors": [..], "journal",
                                "year", "doi", "pmid", "registry_ids": [..], "retracted": bool}]}],
      "notes": [str, ...]                                           # caveats shown in the report
    }

Reference for the section order and the summary-of-findings columns: Schünemann HJ et al., GRADE
summary-of-findings tables (Cochrane Handbook chapter 14); PRISMA 2020 (Page MJ et al., BMJ 2021;372:n71);
PRISMA-S (Rethlefsen ML et al., Syst Rev 2021;10:39).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from livingmeta.report.scales import is_ratio, measure_name

REPORT_SCHEMA = 1
_PMID_RE = re.compile(r"^\d{1,9}$")
_NCT_RE = re.compile(r"^NCT\d{8}$")

PRISMA_KEYS = ("identified_pubmed", "identified_ctgov", "identified_total", "duplicates_removed", "screened",
               "excluded_title_abstract", "full_text_sought", "awaiting_full_text", "full_text_assessed",
               "excluded_full_text", "included", "studies_included")


class ReportInputError(ValueError):
    """The report document lacks something a report needs; the message names the field."""


@dataclass
class Plot:
    """One figure of the report, as inline SVG and as PNG bytes."""

    kind: str            # forest | cumulative | versions | tsa | funnel | prisma
    title: str
    analysis_id: str | None
    filename: str        # PNG file name beside the report
    svg: str
    png: bytes


@dataclass
class Report:
    """A report ready to render: the checked document plus display rows and plots."""

    doc: dict[str, Any]
    summary: list[dict[str, Any]]
    changes: list[dict[str, Any]]
    prisma: list[dict[str, Any]]
    searches: list[dict[str, Any]]
    studies: list[dict[str, Any]]
    plots: list[Plot] = field(default_factory=list)

    @property
    def title(self) -> str:
        return self.doc["review"]["title"]

    @property
    def version(self) -> int:
        return self.doc["version"]["version"]

    def plots_for(self, analysis_id: str | None) -> list[Plot]:
        """The plots of one analysis (None: review-level plots such as PRISMA)."""
        return [p for p in self.plots if p.analysis_id == analysis_id]


def _finite(x: Any) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def fmt_value(x: Any) -> str:
    """An estimate or bound for people: 3 significant digits (0.0369, 0.677, 2.91, 33.5, 255); "–" when unknown.

    Significant digits rather than fixed decimals keep small proportions and large ratios equally precise;
    values of 1000 or more are shown whole rather than in scientific notation.
    """
    v = _finite(x)
    if v is None:
        return "–"
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) < 0.001:
        return f"{v:.2e}"
    v = float(f"{v:.3g}")  # round first: 0.9996 must become 1.00, not 1.000
    decimals = max(0, 2 - math.floor(math.log10(abs(v))))
    return f"{v:.{decimals}f}"


def fmt_interval(lo: Any, hi: Any) -> str:
    """"lo to hi" (the Cochrane style avoids the ambiguity of a hyphen next to a minus sign)."""
    if _finite(lo) is None and _finite(hi) is None:
        return "–"
    return f"{fmt_value(lo)} to {fmt_value(hi)}"


def fmt_p(p: Any) -> str:
    """A p-value: "<0.001" below one in a thousand, else 3 decimals."""
    v = _finite(p)
    if v is None:
        return "–"
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def fmt_count(n: Any) -> str:
    """A count (participants may be fractional after continuity corrections: shown rounded)."""
    v = _finite(n)
    return "–" if v is None else f"{round(v):,}"


def fmt_percent(x: Any) -> str:
    v = _finite(x)
    return "–" if v is None else f"{v:.1f}%"


def fmt_tau2(x: Any) -> str:
    """tau² with 3 significant digits (it spans orders of magnitude across measures)."""
    return fmt_value(x)


def _require(d: Any, key: str, where: str, kind: type | tuple[type, ...] | None = None) -> Any:
    if not isinstance(d, dict) or key not in d or d[key] is None:
        raise ReportInputError(f"report document: {where}.{key} is missing; the warehouse query must supply it")
    if kind is not None and not isinstance(d[key], kind):
        raise ReportInputError(f"report document: {where}.{key} must be {kind}, got {type(d[key]).__name__}")
    return d[key]


def display_numbers(meta: dict[str, Any]) -> dict[str, Any]:
    """The people-facing numbers of a MetaResult dict: back-transformed where the engine did so."""
    def pick(k):
        bt = meta.get(f"{k}_bt")
        return bt if _finite(bt) is not None else meta.get(k)
    return {k: pick(k) for k in ("estimate", "ci_lower", "ci_upper", "pi_lower", "pi_upper")}


TSA_STATUS_TEXT = {
    "boundary_crossed": "monitoring boundary crossed (firm evidence)",
    "futility": "futility boundary crossed",
    "ris_reached": "required information size reached",
    "inconclusive": "inconclusive (more information needed)",
}


def _summary_row(a: dict[str, Any], i: int) -> dict[str, Any]:
    where = f"analyses[{i}]"
    aid = _require(a, "analysis_id", where, str)
    measure = _require(a, "measure", where, str)
    result = a.get("result") or None
    meta = (result or {}).get("meta") or None
    row: dict[str, Any] = {
        "analysis_id": aid, "label": a.get("label") or aid, "role": a.get("role") or "",
        "measure": measure, "measure_name": measure_name(measure), "method": a.get("method") or "",
        "status": a.get("status"), "error": a.get("error"), "has_result": meta is not None,
    }
    if meta is None:
        row.update({"estimate": None, "ci_lower": None, "ci_upper": None, "pi_lower": None, "pi_upper": None,
                    "k": None, "participants": None, "tau2": None, "i2": None, "q_p": None, "p_value": None,
                    "tsa_status": None, "warnings": [], "ratio": measure in ("OR", "RR", "PETO", "ROM")})
    else:
        for key in ("k", "estimate"):
            if key not in meta:
                raise ReportInputError(f"report document: {where}.result.meta.{key} is missing (analysis {aid})")
        tsa = (result or {}).get("tsa") or None
        row.update(display_numbers(meta))
        row.update({k: meta.get(k) for k in ("k", "participants", "tau2", "i2", "q", "q_df", "q_p", "p_value")})
        row["tsa_status"] = tsa.get("status") if tsa else None
        row["warnings"] = list(meta.get("warnings") or [])
        row["ratio"] = is_ratio(measure, meta.get("estimate"), meta.get("estimate_bt"))
    row["fmt"] = {
        "estimate": fmt_value(row["estimate"]), "ci": fmt_interval(row["ci_lower"], row["ci_upper"]),
        "pi": fmt_interval(row["pi_lower"], row["pi_upper"]), "k": fmt_count(row["k"]),
        "participants": fmt_count(row["participants"]), "tau2": fmt_tau2(row["tau2"]), "i2": fmt_percent(row["i2"]),
        "q_p": fmt_p(row["q_p"]), "p_value": fmt_p(row["p_value"]),
        "tsa": TSA_STATUS_TEXT.get(row["tsa_status"], row["tsa_status"] or "not run"),
    }
    return row


def _change_rows(doc: dict[str, Any], summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id = {c.get("analysis_id"): c for c in doc.get("changes") or []}
    prev_v = (doc.get("previous_version") or {}).get("version")
    rows = []
    for s, a in zip(summary, doc["analyses"]):
        hist = [h for h in a.get("history") or [] if prev_v is not None and h.get("version") == prev_v]
        old = hist[0] if hist else None
        diff = by_id.get(s["analysis_id"]) or {}
        rows.append({
            "analysis_id": s["analysis_id"], "label": s["label"],
            "old": old and {"estimate": old.get("estimate"), "ci_lower": old.get("ci_lower"),
                            "ci_upper": old.get("ci_upper"), "k": old.get("k")},
            "changes": [str(c) for c in diff.get("changes") or []],
            "studies_added": [str(x) for x in diff.get("studies_added") or []],
            "studies_removed": [str(x) for x in diff.get("studies_removed") or []],
            "fmt_old": (f"{fmt_value(old.get('estimate'))} ({fmt_interval(old.get('ci_lower'), old.get('ci_upper'))}), "
                        f"k = {fmt_count(old.get('k'))}") if old else "–",
            "fmt_new": (f"{s['fmt']['estimate']} ({s['fmt']['ci']}), k = {s['fmt']['k']}") if s["has_result"] else "no estimate",
        })
    return rows


PRISMA_LABELS = {
    "identified_pubmed": "Records identified: PubMed",
    "identified_ctgov": "Records identified: ClinicalTrials.gov",
    "identified_total": "Records identified: total",
    "duplicates_removed": "Duplicate records removed (linked to the same study)",
    "screened": "Records screened (title/abstract)",
    "excluded_title_abstract": "Records excluded at title/abstract",
    "full_text_sought": "Reports sought for retrieval (passed title/abstract)",
    "awaiting_full_text": "Reports awaiting a full-text decision",
    "full_text_assessed": "Reports assessed for eligibility (full text)",
    "excluded_full_text": "Reports excluded at full text",
    "included": "Reports included",
    "studies_included": "Studies included",
}


def _prisma_rows(prisma: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not prisma:
        return []
    cur, prev = prisma.get("current") or {}, prisma.get("previous") or None
    rows = []
    for k in PRISMA_KEYS:
        if k not in cur and (prev is None or k not in prev):
            continue
        new, old = cur.get(k), (prev or {}).get(k)
        delta = (new - old) if isinstance(new, (int, float)) and isinstance(old, (int, float)) else None
        rows.append({"key": k, "label": PRISMA_LABELS[k], "previous": old, "current": new, "delta": delta,
                     "fmt_previous": fmt_count(old) if prev is not None else "–", "fmt_current": fmt_count(new),
                     "fmt_delta": ("–" if delta is None else f"{delta:+,.0f}")})
    return rows


def record_links(rec: dict[str, Any]) -> list[dict[str, str]]:
    """Links for one record's identifiers: PubMed, DOI, ClinicalTrials.gov (only well-formed ids)."""
    links = []
    pmid = str(rec.get("pmid") or (rec.get("source_id") if rec.get("source") == "pubmed" else "") or "").strip()
    if _PMID_RE.match(pmid):
        links.append({"label": f"PMID {pmid}", "url": f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/"})
    doi = str(rec.get("doi") or "").strip()
    if doi.lower().startswith("10."):
        links.append({"label": f"doi:{doi}", "url": "https://doi.org/" + quote(doi, safe="/:;()._-")})
    ncts = list(rec.get("registry_ids") or [])
    if rec.get("source") == "ctgov":
        ncts.insert(0, rec.get("source_id"))
    seen = set()
    for nct in ncts:
        nct = str(nct or "").strip().upper()
        if _NCT_RE.match(nct) and nct not in seen:
            seen.add(nct)
            links.append({"label": nct, "url": f"https://clinicaltrials.gov/study/{nct}"})
        elif nct and nct not in seen:
            seen.add(nct)
            links.append({"label": nct, "url": ""})  # other registries: shown, not linked
    return links


def _study_rows(studies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for i, s in enumerate(studies or []):
        sid = _require(s, "study_id", f"studies[{i}]", str)
        recs = []
        for r in s.get("records") or []:
            authors = list(r.get("authors") or [])
            first = authors[0] if authors else ""
            recs.append({**r, "first_author": first + (" et al." if len(authors) > 1 else ""),
                         "links": record_links(r)})
        rows.append({"study_id": sid, "label": s.get("label") or sid, "retracted": bool(s.get("retracted")),
                     "records": recs})
    return rows


def _search_rows(searches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def day(x):
        return str(x)[:10] if x else "–"
    return [{**s, "fmt_window": f"{day(s.get('window_start'))} to {day(s.get('window_end'))}",
             "fmt_run": str(s.get("started_at") or "")[:19].replace("T", " ")} for s in searches or []]


def _plain_values(x: Any) -> Any:
    """Dates and times as ISO strings, tuples as lists: the document must survive a JSON round trip."""
    if isinstance(x, (dt.datetime, dt.date)):
        return x.isoformat()
    if isinstance(x, dict):
        return {str(k): _plain_values(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain_values(v) for v in x]
    return x


def check_document(doc: dict[str, Any]) -> dict[str, Any]:
    """Check a report document and fill optional parts with empty values.

    Args:
        doc: the report document (schema in this module's docstring).
    Returns:
        the same document, with missing optional keys set to empty lists/None.
    Raises:
        ReportInputError: a required field is missing or of the wrong type (the message names it).
    """
    if not isinstance(doc, dict):
        raise ReportInputError("report document must be a dict (see livingmeta.report.document)")
    review = _require(doc, "review", "document", dict)
    _require(review, "id", "review", str)
    _require(review, "title", "review", str)
    version = _require(doc, "version", "document", dict)
    _require(version, "version", "version", int)
    if not isinstance(doc.get("analyses") or [], list):
        raise ReportInputError("report document: analyses must be a list")
    out = _plain_values(doc)
    for key in ("changes", "analyses", "searches", "search_definitions", "studies", "notes"):
        out[key] = list(doc.get(key) or [])
    out.setdefault("previous_version", None)
    out.setdefault("prisma", None)
    out["schema"] = REPORT_SCHEMA
    return out


def build_report(doc: dict[str, Any], *, plots: bool = True) -> Report:
    """Build a report (display rows and figures) from a report document.

    Args:
        doc: the report document (schema in this module's docstring).
        plots: draw the figures (forest, cumulative, TSA, funnel when k >= 10, PRISMA); False skips them
            (for quick checks of the tables).
    Returns:
        a Report, rendered by `render_html`, `render_markdown` and `render_json`.
    Raises:
        ReportInputError: the document lacks a required field.
    """
    doc = check_document(doc)
    summary = [_summary_row(a, i) for i, a in enumerate(doc["analyses"])]
    report = Report(doc=doc, summary=summary, changes=_change_rows(doc, summary),
                    prisma=_prisma_rows(doc["prisma"]), searches=_search_rows(doc["searches"]),
                    studies=_study_rows(doc["studies"]))
    if plots:
        from livingmeta.report.plots import report_plots

        report.plots = report_plots(report)
    return report
