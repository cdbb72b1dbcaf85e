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
                     "k": int, "participants": n}],                 # display scale, oldest first,
                                                                    # up to and including this version
        "kind": outcome kind | None, "settings": the analysis' review.toml table (tsa settings) | None,
      }],                                                           # result.inputs: the study rows pooled
      "outcomes": [review.toml [[outcomes]] tables: id, label, kind, treatment_label, control_label,
                   higher_is_better, assumed_control_risk, certainty {domains, level, footnotes}],
      "prisma": {"current": counts, "previous": counts | None, "source": str},
                 # counts: identified_pubmed, identified_ctgov, identified_total, duplicates_removed, screened,
                 # excluded_title_abstract, [full_text_sought, awaiting_full_text,] full_text_assessed,
                 # excluded_full_text, included (reports), studies_included, optional excluded_reasons {reason: n}
      "screening_automation": str | None,                           # the ranking model and stopping rule
                                                                    # with its result (PRISMA 2020 item 8)
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
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from livingmeta.report.formatting import (
    COMMON_EFFECT_METHODS,
    _finite,
    display_numbers,
    fmt_count,
    fmt_effect,
    fmt_interval,  # noqa: F401
    fmt_p,
    fmt_p_text,  # noqa: F401
    fmt_percent,
    fmt_tau2,
    fmt_value,
    join_prose,  # noqa: F401
    tsa_assumption_lines,
)
from livingmeta.report.scales import is_ratio, measure_name

REPORT_SCHEMA = 1
_PMID_RE = re.compile(r"^\d{1,9}$")
_NCT_RE = re.compile(r"^NCT\d{8}$")

PRISMA_KEYS = (
    "identified_pubmed",
    "identified_ctgov",
    "identified_total",
    "duplicates_removed",
    "screened",
    "excluded_title_abstract",
    "full_text_sought",
    "awaiting_full_text",
    "full_text_assessed",
    "excluded_full_text",
    "included",
    "studies_included",
)


class ReportInputError(ValueError):
    """The report document lacks something a report needs; the message names the field."""


@dataclass
class Plot:
    """One figure of the report, as inline SVG (real text, titled) and as PNG bytes."""

    kind: str  # forest | cumulative | versions | tsa | funnel | prisma
    title: str
    analysis_id: str | None
    filename: str  # PNG file name beside the report
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
    labels: dict[str, str] = field(default_factory=dict)  # study id -> the one label people read
    sof: list[dict[str, Any]] = field(default_factory=list)  # summary of findings (GRADE), one row per outcome
    sof_changes: list[dict[str, Any]] = field(default_factory=list)
    sof_footnotes: list[dict[str, str]] = field(default_factory=list)
    tsa: dict[str, dict[str, Any]] = field(default_factory=dict)  # analysis id -> assumptions and looks
    forest_notes: dict[str, str] = field(default_factory=dict)  # analysis id -> the text under its forest plot

    @property
    def title(self) -> str:
        return self.doc["review"]["title"]

    @property
    def version(self) -> int:
        return self.doc["version"]["version"]

    def study_label(self, study_id: Any) -> str:
        """The label of a study as every part of the report writes it."""
        return study_label(self.labels, study_id)

    def plots_for(self, analysis_id: str | None) -> list[Plot]:
        """The plots of one analysis (None: review-level plots such as PRISMA)."""
        return [p for p in self.plots if p.analysis_id == analysis_id]


def _require(d: Any, key: str, where: str, kind: type | tuple[type, ...] | None = None) -> Any:
    if not isinstance(d, dict) or key not in d or d[key] is None:
        raise ReportInputError(f"report document: {where}.{key} is missing; the warehouse query must supply it")
    if kind is not None and not isinstance(d[key], kind):
        raise ReportInputError(f"report document: {where}.{key} must be {kind}, got {type(d[key]).__name__}")
    return d[key]


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
        "analysis_id": aid,
        "label": a.get("label") or aid,
        "role": a.get("role") or "",
        "measure": measure,
        "measure_name": measure_name(measure),
        "method": a.get("method") or "",
        "status": a.get("status"),
        "error": a.get("error"),
        "has_result": meta is not None,
    }
    if meta is None:
        row.update(
            {
                "estimate": None,
                "ci_lower": None,
                "ci_upper": None,
                "pi_lower": None,
                "pi_upper": None,
                "k": None,
                "participants": None,
                "tau2": None,
                "i2": None,
                "q_p": None,
                "p_value": None,
                "tsa_status": None,
                "warnings": [],
                "ratio": measure in ("OR", "RR", "PETO", "ROM"),
            }
        )
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
        "estimate": fmt_value(row["estimate"]),
        "ci": fmt_interval(row["ci_lower"], row["ci_upper"]),
        "pi": fmt_interval(row["pi_lower"], row["pi_upper"]),
        "k": fmt_count(row["k"]),
        "participants": fmt_count(row["participants"]),
        # a common-effect model assumes tau² = 0; printing "0" beside a large I² would read as a finding
        "tau2": "–" if str(row["method"]).upper() in COMMON_EFFECT_METHODS else fmt_tau2(row["tau2"]),
        "i2": fmt_percent(row["i2"]),
        "q_p": fmt_p(row["q_p"]),
        "p_value": fmt_p(row["p_value"]),
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
        rows.append(
            {
                "analysis_id": s["analysis_id"],
                "label": s["label"],
                "old": old
                and {
                    "estimate": old.get("estimate"),
                    "ci_lower": old.get("ci_lower"),
                    "ci_upper": old.get("ci_upper"),
                    "k": old.get("k"),
                },
                "changes": [str(c) for c in diff.get("changes") or []],
                "studies_added": [str(x) for x in diff.get("studies_added") or []],
                "studies_removed": [str(x) for x in diff.get("studies_removed") or []],
                "fmt_old": (
                    f"{fmt_effect(old.get('estimate'), old.get('ci_lower'), old.get('ci_upper'))}, "
                    f"k = {fmt_count(old.get('k'))}"
                )
                if old
                else "–",
                "fmt_new": (f"{fmt_effect(s['estimate'], s['ci_lower'], s['ci_upper'])}, k = {s['fmt']['k']}")
                if s["has_result"]
                else "no estimate",
            }
        )
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
        rows.append(
            {
                "key": k,
                "label": PRISMA_LABELS[k],
                "previous": old,
                "current": new,
                "delta": delta,
                "fmt_previous": fmt_count(old) if prev is not None else "–",
                "fmt_current": fmt_count(new),
                "fmt_delta": ("–" if delta is None else f"{delta:+,.0f}"),
            }
        )
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


def _study_rows(studies: list[dict[str, Any]], labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    rows = []
    for i, s in enumerate(studies or []):
        sid = _require(s, "study_id", f"studies[{i}]", str)
        recs = []
        for r in s.get("records") or []:
            authors = list(r.get("authors") or [])
            first = authors[0] if authors else ""
            recs.append(
                {**r, "first_author": first + (" et al." if len(authors) > 1 else ""), "links": record_links(r)}
            )
        rows.append(
            {
                "study_id": sid,
                "label": (labels or {}).get(sid) or s.get("label") or sid,
                "retracted": bool(s.get("retracted")),
                "records": recs,
            }
        )
    return rows


def _search_rows(searches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def day(x):
        return str(x)[:10] if x else "–"

    return [
        {
            **s,
            "fmt_window": f"{day(s.get('window_start'))} to {day(s.get('window_end'))}",
            "fmt_run": str(s.get("started_at") or "")[:19].replace("T", " "),
        }
        for s in searches or []
    ]


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
    for key in ("changes", "analyses", "searches", "search_definitions", "studies", "notes", "outcomes"):
        out[key] = list(doc.get(key) or [])
    out.setdefault("previous_version", None)
    out.setdefault("prisma", None)
    out.setdefault("screening_automation", None)
    out["schema"] = REPORT_SCHEMA
    return out


# --- one name per study ---------------------------------------------------------------------------------------


def study_label_map(studies: list[dict[str, Any]]) -> dict[str, str]:
    """Study id -> the label every part of the report uses (plots, tables, text, what changed).

    The label is the study's own ("Jann 2020", from linking: first author and year, a registry acronym where
    the study has one); two studies with the same label get their registry id (or study id) added, so a
    label always names one study.
    """
    base: dict[str, str] = {}
    regs: dict[str, str] = {}
    for s in studies or []:
        sid = str(s.get("study_id"))
        base[sid] = " ".join(str(s.get("label") or sid).split())
        ids = [
            x
            for r in s.get("records") or []
            for x in ([r.get("source_id")] if r.get("source") == "ctgov" else []) + list(r.get("registry_ids") or [])
        ]
        regs[sid] = next((str(x) for x in ids if x), "")
    count: dict[str, int] = {}
    for lab in base.values():
        count[lab] = count.get(lab, 0) + 1
    out = {}
    for sid, lab in base.items():
        if count[lab] == 1:
            out[sid] = lab
        elif regs[sid] and regs[sid] not in lab:
            out[sid] = f"{lab} ({regs[sid]})"
        else:
            out[sid] = f"{lab} [{sid}]"
    return out


def study_label(labels: dict[str, str], study_id: Any) -> str:
    """The one label of a study (its id when the report has no label for it)."""
    sid = str(study_id)
    return labels.get(sid, sid)


# --- arm data of the forest plots -----------------------------------------------------------------------------


def study_arms(result: dict[str, Any] | None, kind: str) -> dict[str, dict[str, dict[str, Any]]]:
    """{study id: {"treatment": {...}, "control": {...}}} from the analysis' stored input rows (`inputs`).

    Binary arms carry events and total; continuous arms mean, sd and n. Empty when the run stored no inputs
    (runs made before the report showed arm data).
    """
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for r in (result or {}).get("inputs") or []:
        sid = str(r.get("study"))
        if kind == "binary":
            out[sid] = {
                "treatment": {"events": r.get("treat_events"), "total": r.get("treat_total")},
                "control": {"events": r.get("control_events"), "total": r.get("control_total")},
            }
        elif kind == "continuous":
            out[sid] = {
                a: {"mean": r.get(f"{p}_mean"), "sd": r.get(f"{p}_sd"), "n": r.get(f"{p}_n")}
                for a, p in (("treatment", "treat"), ("control", "control"))
            }
        elif kind == "proportion":
            out[sid] = {"treatment": {"events": r.get("events"), "total": r.get("total")}}
    return out


# --- summary of findings (GRADE) ------------------------------------------------------------------------------

GRADE_SYMBOLS = {"high": "⊕⊕⊕⊕", "moderate": "⊕⊕⊕◯", "low": "⊕⊕◯◯", "very low": "⊕◯◯◯"}
GRADE_DOMAIN_NAMES = {
    "risk_of_bias": "Risk of bias",
    "inconsistency": "Inconsistency",
    "indirectness": "Indirectness",
    "imprecision": "Imprecision",
    "publication_bias": "Publication bias",
    "upgrade": "Upgraded",
    "level": "Certainty",
}


def corresponding_risk(control_risk: float, measure: str, value: float | None) -> float | None:
    """The risk with the intervention for an assumed control risk (Cochrane Handbook 14.1.5.1, 15.4.4).

    RR: ACR x RR; OR (and Peto OR): ACR x OR / (1 - ACR + ACR x OR); RD: ACR + RD. The maps are monotone,
    so applying them to the CI bounds gives the interval of the corresponding risk.
    """
    v = _finite(value)
    if v is None:
        return None
    acr = float(control_risk)
    if measure == "RR":
        r = acr * v
    elif measure in ("OR", "PETO"):
        r = acr * v / (1 - acr + acr * v)
    elif measure == "RD":
        r = acr + v
    else:
        return None
    return min(1.0, max(0.0, r))


def _per_1000(x: float | None) -> str:
    return "–" if x is None else f"{round(1000 * x):,}"


def _difference_per_1000(cr: float | None, acr: float) -> str:
    if cr is None:
        return "–"
    d = round(1000 * cr) - round(1000 * acr)
    return f"{abs(d):,} {'more' if d > 0 else 'fewer'}" if d else "0 more"


def pooled_control_risk(result: dict[str, Any] | None) -> tuple[float | None, int]:
    """(events / participants over the control arms of the included studies, number of studies)."""
    rows = [
        r
        for r in (result or {}).get("inputs") or []
        if _finite(r.get("control_events")) is not None and _finite(r.get("control_total"))
    ]
    ev, tot = sum(float(r["control_events"]) for r in rows), sum(float(r["control_total"]) for r in rows)
    return (ev / tot if tot > 0 else None), len(rows)


def _sof_numbers(measure: str, est: Any, lo: Any, hi: Any, acr: float | None) -> dict[str, Any]:
    cr = [corresponding_risk(acr, measure, v) if acr is not None else None for v in (est, lo, hi)]
    return {
        "relative": fmt_effect(est, lo, hi),
        "assumed": _per_1000(acr) + " per 1,000" if acr is not None and cr[0] is not None else "–",
        "corresponding": (
            f"{_per_1000(cr[0])} per 1,000 ({_per_1000(cr[1])} to {_per_1000(cr[2])})" if cr[0] is not None else "–"
        ),
        "difference": (
            f"{_difference_per_1000(cr[0], acr)} per 1,000 (from {_difference_per_1000(cr[1], acr)} to "
            f"{_difference_per_1000(cr[2], acr)})"
            if cr[0] is not None and acr is not None
            else "–"
        ),
        "risks": cr,
    }


def _sof_analysis(analyses: list[dict[str, Any]], outcome: str) -> dict[str, Any] | None:
    mine = [a for a in analyses if a.get("outcome") == outcome]
    return next((a for a in mine if a.get("role") == "primary"), mine[0] if mine else None)


def sof_rows(doc: dict[str, Any], summary: list[dict[str, Any]]) -> tuple[list[dict], list[dict], list[dict]]:
    """The GRADE summary of findings of this version, what changed in it since the previous version, and its
    footnotes.

    One row per outcome, from its primary analysis (else its first): the relative effect with its CI; for
    binary outcomes with a ratio or RD the assumed control risk (review.toml's `assumed_control_risk`, else the
    pooled control arms, and the row says which) and the corresponding risk per 1,000 with its CI; participants
    (studies); certainty from the outcome's `[outcomes.certainty]` judgments, with footnotes for each domain.
    The previous version's row is computed from its stored estimate with the same control risk.

    Returns:
        (rows, changes [{"outcome", "label", "changes": [str]}], footnotes [{"mark", "text"}]).
    """
    outcomes = doc.get("outcomes") or []
    by_aid = {s["analysis_id"]: s for s in summary}
    prev_v = (doc.get("previous_version") or {}).get("version")
    rows, changes, notes = [], [], []
    for o in outcomes:
        a = _sof_analysis(doc["analyses"], o.get("id"))
        if a is None:
            continue
        s = by_aid.get(a["analysis_id"]) or {}
        measure = a.get("measure") or ""
        binary = o.get("kind") == "binary" and measure in ("RR", "OR", "PETO", "RD")
        acr, source = None, ""
        if binary:
            if _finite(o.get("assumed_control_risk")) is not None:
                acr, source = float(o["assumed_control_risk"]), "review.toml (assumed_control_risk)"
            else:
                acr, k_ctrl = pooled_control_risk(a.get("result"))
                source = f"pooled control arms of {k_ctrl} {'study' if k_ctrl == 1 else 'studies'}" if acr else ""
        nums = (
            _sof_numbers(measure, s.get("estimate"), s.get("ci_lower"), s.get("ci_upper"), acr)
            if s.get("has_result")
            else _sof_numbers(measure, None, None, None, None)
        )
        if not s.get("has_result"):
            why = {
                "no_data": "no data extracted",
                "not_in_version": "not analysed in this version",
                "failed": "the analysis failed",
            }.get(s.get("status"), str(s.get("status") or "no data").replace("_", " "))
            nums["relative"] = f"not estimable ({why})"
        cert = o.get("certainty") or None
        marks = []
        if cert:
            for dom in (
                "risk_of_bias",
                "inconsistency",
                "indirectness",
                "imprecision",
                "publication_bias",
                "upgrade",
                "level",
            ):
                text = str((cert.get("footnotes") or {}).get(dom) or "").strip()
                if text:
                    mark = chr(ord("a") + len(notes))
                    judged = cert.get(dom)
                    prefix = GRADE_DOMAIN_NAMES[dom] + (
                        f" ({judged})" if isinstance(judged, str) and dom != "level" else ""
                    )
                    notes.append({"mark": mark, "text": f"{prefix}: {text}"})
                    marks.append(mark)
        level = (cert or {}).get("level")
        row = {
            "outcome": o.get("id"),
            "label": o.get("label") or o.get("id"),
            "analysis_id": a["analysis_id"],
            "measure": measure,
            "measure_name": measure_name(measure),
            "control_risk": acr,
            "control_risk_source": source,
            "risks": nums.pop("risks"),
            "participants": s.get("participants"),
            "k": s.get("k"),
            "fmt": {
                **nums,
                "participants": (
                    f"{fmt_count(s.get('participants'))} ({fmt_count(s.get('k'))} "
                    f"{'study' if s.get('k') == 1 else 'studies'})"
                )
                if s.get("has_result")
                else "–",
                "certainty": (
                    f"{GRADE_SYMBOLS[level]} {level.capitalize()}" if level in GRADE_SYMBOLS else "not assessed"
                ),
            },
            "certainty": level,
            "footnote_marks": marks,
        }
        rows.append(row)
        if prev_v is None:
            continue
        old = next((h for h in a.get("history") or [] if h.get("version") == prev_v), None)
        if old is None:
            changes.append(
                {
                    "outcome": row["outcome"],
                    "label": row["label"],
                    "changes": [f"new in this version: {row['fmt']['relative']}"],
                }
            )
            continue
        before = _sof_numbers(measure, old.get("estimate"), old.get("ci_lower"), old.get("ci_upper"), acr)
        before_part = (
            f"{fmt_count(old.get('participants'))} ({fmt_count(old.get('k'))} "
            f"{'study' if old.get('k') == 1 else 'studies'})"
        )
        diffs = []
        for key, name in (("relative", measure_name(measure)), ("corresponding", "risk with the intervention")):
            if before[key] != row["fmt"][key] and row["fmt"][key] != "–":
                was = "not estimable" if before[key] == "–" else before[key]
                diffs.append(f"{name}: {was} → {row['fmt'][key]}")
        if before_part != row["fmt"]["participants"] and s.get("has_result"):
            diffs.append(f"participants (studies): {before_part} → {row['fmt']['participants']}")
        changes.append({"outcome": row["outcome"], "label": row["label"], "changes": diffs or ["no change"]})
    return rows, changes, notes


# --- trial sequential analysis in words -----------------------------------------------------------------------


def tsa_section(a: dict[str, Any], labels: dict[str, str]) -> dict[str, Any] | None:
    """The TSA of one analysis for the report text: its assumptions, status and looks.

    Returns {"assumptions": [str], "status": str, "looks": [{"label", "information", "fraction", "z",
    "boundary", "futility"}]} (formatted), or None when the analysis has no TSA.
    """
    tsa = ((a.get("result") or {}).get("tsa")) or None
    if not tsa:
        return None
    settings = (a.get("settings") or {}).get("tsa") or {}
    looks = [
        {
            "label": study_label(labels, p.get("label")),
            "information": fmt_count(p.get("information")),
            "fraction": fmt_percent(100 * float(p["fraction"])) if _finite(p.get("fraction")) is not None else "–",
            "z": "–" if _finite(p.get("z")) is None else f"{float(p['z']):.2f}",
            "boundary": "–" if _finite(p.get("upper")) is None else f"±{float(p['upper']):.2f}",
            "futility": "not yet (nothing spent)"
            if _finite(p.get("futility")) is None
            else f"{float(p['futility']):.2f}",
        }
        for p in tsa.get("points") or []
    ]
    return {
        "assumptions": tsa_assumption_lines(tsa, settings, a.get("kind") or ""),
        "status": TSA_STATUS_TEXT.get(tsa.get("status"), tsa.get("status") or ""),
        "looks": looks,
    }
