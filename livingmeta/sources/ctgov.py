"""ClinicalTrials.gov (API v2): building search requests and parsing studies into records.

Pure code: JSON in, `Record`s and suggested extraction rows out. The HTTP choke point lives in
`tasks/ctgov.py`; everything here is testable without a network.

Reference: ClinicalTrials.gov API v2, https://clinicaltrials.gov/data-api/api (study data structure:
https://clinicaltrials.gov/data-api/about-api/study-data-structure). Every numeric value in a study's
results arrives as a string and may be "NA", "<0.001", "12.5%" or empty: `parse_number` is strict and
says why a value could not be used, so nothing odd is silently turned into a number.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from livingmeta.records import Record, normalise_registry_id
from livingmeta.redaction import RedactedError
from livingmeta.sources.skips import SkippedRecord

STUDIES_PATH = "/api/v2/studies"

# arm group types that mark the comparator of a trial
_CONTROL_TYPES = {"PLACEBO_COMPARATOR", "SHAM_COMPARATOR", "NO_INTERVENTION"}
_TREATMENT_TYPES = {"EXPERIMENTAL", "ACTIVE_COMPARATOR"}
_CONTROL_WORDS = re.compile(
    r"\b(placebo|sham|saline|vehicle|usual care|standard of care|no treatment|no intervention|"
    r"control|dummy)\b",
    re.IGNORECASE,
)
_RATIO_WORDS = re.compile(r"ratio|relative risk", re.IGNORECASE)
_DIFFERENCE_WORDS = re.compile(r"difference", re.IGNORECASE)
_NUMBER_RE = re.compile(r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][+-]?\d+)?$")
_MISSING_WORDS = {"", "na", "n/a", "nr", "nd", "null", "none", "not available", "not applicable", "-", "--", "."}


_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def load_json(body: bytes | str) -> Any:
    """Decode an API v2 answer leniently about control characters, strictly about everything else.

    A raw control character inside one study's text would make strict JSON refuse the whole page; it is
    accepted (`strict=False`) and then removed from every string (with the escaped forms \\u0000-\\u001f other
    than tab, newline and carriage return), so one odd study never fails a page. A body cut short still
    raises `json.JSONDecodeError`.
    """
    data = json.loads(body, strict=False)
    text = body if isinstance(body, str) else body.decode("utf-8", "replace")
    if _CONTROL_RE.search(text) or re.search(r"\\u00(?:0[0-8bcefBCEF]|1[0-9a-fA-F])", text):
        data = _strip_controls(data)
    return data


def _strip_controls(value: Any) -> Any:
    if isinstance(value, str):
        return _CONTROL_RE.sub("", value)
    if isinstance(value, dict):
        return {_strip_controls(k): _strip_controls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_controls(v) for v in value]
    return value


class CtgovFormatError(RedactedError, ValueError):
    """A ClinicalTrials.gov answer that is not what API v2 returns; the message says what and where."""


# ---------------------------------------------------------------------------------------------------------------
# requests


def search_params(
    *,
    condition: str = "",
    intervention: str = "",
    terms: str = "",
    updated_since: dt.date | None = None,
    page_size: int = 1000,
) -> dict[str, str]:
    """The first page's query parameters for `/api/v2/studies`.

    Args:
        condition, intervention, terms: the review's search (empty ones are left out), sent as
            `query.cond`, `query.intr` and `query.term`.
        updated_since: only studies whose LastUpdatePostDate is on or after this date
            (`filter.advanced=AREA[LastUpdatePostDate]RANGE[YYYY-MM-DD,MAX]`); None searches everything.
        page_size: studies per page (API maximum 1000).
    Returns:
        parameters including `countTotal=true` (first page only) and `format=json`.
    Raises:
        ValueError: nothing to search for, or a page size outside 1..1000.
    """
    if not (condition.strip() or intervention.strip() or terms.strip()):
        raise ValueError("a ClinicalTrials.gov search needs at least one of condition, intervention or terms")
    if not 1 <= page_size <= 1000:
        raise ValueError(f"page_size must be between 1 and 1000 (API v2 maximum), not {page_size}")
    params: dict[str, str] = {"format": "json"}
    if condition.strip():
        params["query.cond"] = condition.strip()
    if intervention.strip():
        params["query.intr"] = intervention.strip()
    if terms.strip():
        params["query.term"] = terms.strip()
    if updated_since is not None:
        params["filter.advanced"] = f"AREA[LastUpdatePostDate]RANGE[{updated_since.isoformat()},MAX]"
    params["pageSize"] = str(page_size)
    params["countTotal"] = "true"
    return params


def next_page_params(first: dict[str, str], page_token: str) -> dict[str, str]:
    """Parameters for a later page: the first page's parameters (the API requires them repeated) plus
    `pageToken`, without `countTotal` (only meaningful on the first page)."""
    params = {k: v for k, v in first.items() if k not in ("countTotal", "pageToken")}
    params["pageToken"] = page_token
    return params


# ---------------------------------------------------------------------------------------------------------------
# pages and studies


# a study left out of a page (named by NCT id and field): see livingmeta.sources.skips
SkippedStudy = SkippedRecord


@dataclass
class StudiesPage:
    """One parsed page of `/api/v2/studies`.

    Attributes:
        studies: (record, raw JSON text of the study) in page order.
        next_page_token: the token for the next page, None on the last page.
        total_count: `totalCount` when the page carries it (first page with countTotal=true).
        skipped: studies of the page that could not be read (each named; the others are in `studies`).
    """

    studies: list[tuple[Record, str]] = field(default_factory=list)
    next_page_token: str | None = None
    total_count: int | None = None
    skipped: list[SkippedRecord] = field(default_factory=list)


def parse_studies_page(body: bytes | str | dict, where: str = "ClinicalTrials.gov answer") -> StudiesPage:
    """Parse one page of `/api/v2/studies` (or a single study object, as saved from `/api/v2/studies/NCT…`).

    A study that cannot be read (a field of the wrong type, no NCT id, not an object) never fails the page:
    it is left out of `studies` and listed in `skipped`, named by NCT id (when it has one) and field.

    Args:
        body: the response body (bytes/str JSON) or an already decoded object.
        where: names the page in error messages (URL or file).
    Returns:
        a StudiesPage.
    Raises:
        CtgovFormatError: the body is not JSON, truncated, has no `studies` list, or its paging fields
            (`nextPageToken`, `totalCount`) have the wrong type: the page itself cannot be trusted.
    """
    if isinstance(body, (bytes, str)):
        try:
            data = load_json(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            size = len(body)
            raise CtgovFormatError(
                f"{where}: not valid JSON ({e}; {size} bytes) — the answer may be truncated; retry later"
            ) from None
    else:
        data = body
    if isinstance(data, dict) and "protocolSection" in data:
        studies_raw, token, total = [data], None, None
    elif isinstance(data, dict) and isinstance(data.get("studies"), list):
        studies_raw, token, total = data["studies"], data.get("nextPageToken"), data.get("totalCount")
    else:
        keys = ", ".join(sorted(data)[:8]) if isinstance(data, dict) else type(data).__name__
        raise CtgovFormatError(f"{where}: expected an API v2 studies page with a `studies` list, got {keys}")
    if token is not None and not isinstance(token, str):
        raise CtgovFormatError(f"{where}: nextPageToken must be a string, got {type(token).__name__} {token!r}")
    if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
        raise CtgovFormatError(f"{where}: totalCount must be a count, got {total!r}")
    page = StudiesPage(next_page_token=token or None, total_count=total)
    for i, study in enumerate(studies_raw):
        raw = json.dumps(study, ensure_ascii=False, sort_keys=True)
        at = f"{where}, studies[{i}]"
        try:
            page.studies.append((parse_study(study, where=at), raw))
        except CtgovFieldError as e:
            page.skipped.append(SkippedRecord("ctgov", _nct_of(study), e.field, str(e), raw))
        except Exception as e:  # noqa: BLE001 - a safety net: one study's surprise never fails the page
            nct = _nct_of(study)
            page.skipped.append(
                SkippedRecord(
                    "ctgov",
                    nct,
                    "?",
                    f"{at}{f' ({nct})' if nct else ''}: could not be read ({type(e).__name__}: {e})",
                    raw,
                )
            )
    return page


def _nct_of(study: Any) -> str | None:
    """The study's NCT id when it can be read at all (to name a skipped study)."""
    nct = _get(study, "protocolSection", "identificationModule", "nctId")
    if isinstance(nct, str):
        rid = normalise_registry_id(nct)
        if rid and rid.startswith("NCT"):
            return rid
    return None


class CtgovFieldError(CtgovFormatError):
    """One field of a study has a type API v2 never sends; `field` is its dotted path."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "a whole number", bool: "true/false"}


class _Obj:
    """Type-checking reads of one JSON object of a study: a field is missing (None), or of the expected
    type, or a `CtgovFieldError` naming the study, the field path, what was expected and what came."""

    __slots__ = ("data", "path", "who")

    def __init__(self, data: dict, path: str, who: str) -> None:
        self.data, self.path, self.who = data, path, who

    def _field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _wrong(self, key: str, expected: str, value: Any) -> CtgovFieldError:
        shown = json.dumps(value, ensure_ascii=False, default=str)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        f = self._field(key)
        return CtgovFieldError(
            f"{self.who}: field {f} must be {expected}, got {type(value).__name__} {shown}; "
            "the study was skipped (the others were stored)",
            f,
        )

    def _raw(self, key: str, kind: type, expected: str) -> Any:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self._wrong(key, expected, value)
        return value

    def obj(self, key: str) -> _Obj:
        """A nested object (an empty one when missing)."""
        return _Obj(self._raw(key, dict, "an object") or {}, self._field(key), self.who)

    def text(self, key: str) -> str | None:
        return self._raw(key, str, "a string")

    def count(self, key: str) -> int | None:
        """A whole number (API v2 sends counts as JSON numbers; a string of digits is read too)."""
        value = self.data.get(key)
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return self._raw(key, int, "a whole number")

    def flag(self, key: str) -> bool | None:
        return self._raw(key, bool, "true or false")

    def texts(self, key: str) -> list[str]:
        """A list of strings (empty when missing)."""
        items = self._raw(key, list, "a list of strings") or []
        for i, v in enumerate(items):
            if not isinstance(v, str):
                raise self._wrong(f"{key}[{i}]", "a string", v)
        return list(items)

    def objs(self, key: str) -> list[_Obj]:
        """A list of objects (empty when missing)."""
        items = self._raw(key, list, "a list of objects") or []
        out = []
        for i, v in enumerate(items):
            if not isinstance(v, dict):
                raise self._wrong(f"{key}[{i}]", "an object", v)
            out.append(_Obj(v, self._field(f"{key}[{i}]"), self.who))
        return out

    def date(self, key: str) -> str | None:
        """The `date` of a date struct (`{"date": "2021-05-01", "type": ...}`)."""
        return self.obj(key).text("date")


def _get(d: Any, *path: str, default: Any = None) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return default
        d = d.get(p)
    return default if d is None else d


def _year_month(date: str | None) -> tuple[int | None, int | None]:
    m = re.match(r"^(\d{4})(?:-(\d{2}))?", date or "")
    if not m:
        return None, None
    return int(m.group(1)), int(m.group(2)) if m.group(2) else None


def _words(code: str | None) -> str | None:
    """API enums (ACTIVE_NOT_RECRUITING, PHASE2) as words people read (Active, not recruiting; Phase 2)."""
    if not code:
        return None
    special = {
        "NA": "Not applicable",
        "EARLY_PHASE1": "Early phase 1",
        "ACTIVE_NOT_RECRUITING": "Active, not recruiting",
        "ENROLLING_BY_INVITATION": "Enrolling by invitation",
    }
    if code in special:
        return special[code]
    m = re.fullmatch(r"PHASE(\d)", code)
    if m:
        return f"Phase {m.group(1)}"
    return code.replace("_", " ").capitalize()


def parse_study(study: dict[str, Any], where: str = "study") -> Record:
    """Normalise one API v2 study into a `Record` (source "ctgov").

    Every field is read through type-checking accessors (`_Obj`): a field of a type API v2 never sends
    (references as strings, phases as a string, enrollment count as an object, ...) raises
    `CtgovFieldError` naming the study and the field, instead of an AttributeError deep inside.

    Args:
        study: one element of a page's `studies` list.
        where: names the study in error messages.
    Returns:
        the record: title = official title (else brief title); abstract = brief summary; journal = lead sponsor;
        year/month = first posted; source_version = last update posted date; is_rct when interventional and
        randomised; registry_ids = NCT id, NCT aliases, ISRCTN and EudraCT secondary ids; `extra` holds status,
        dates, design, enrollment, conditions, interventions, arm groups, references and a results summary.
    Raises:
        CtgovFieldError: no valid `protocolSection.identificationModule.nctId`, or a field of the wrong type.
    """
    if not isinstance(study, dict):
        raise CtgovFieldError(f"{where}: a study must be a JSON object, got {type(study).__name__}", "(study)")
    root = _Obj(study, "", where)
    ps = root.obj("protocolSection")
    ident = ps.obj("identificationModule")
    raw_nct = ident.data.get("nctId")
    nct = normalise_registry_id(raw_nct) if isinstance(raw_nct, str) else None
    if not nct or not nct.startswith("NCT"):
        raise CtgovFieldError(
            f"{where}: no valid protocolSection.identificationModule.nctId (got {raw_nct!r}); "
            "the study was skipped (the others were stored)",
            "protocolSection.identificationModule.nctId",
        )
    root.who = ps.who = ident.who = f"{where} ({nct})"
    status = ps.obj("statusModule")
    design = ps.obj("designModule")
    design_info = design.obj("designInfo")
    arms = ps.obj("armsInterventionsModule")
    sponsor = ps.obj("sponsorCollaboratorsModule").obj("leadSponsor").text("name")
    first_posted = status.date("studyFirstPostDateStruct")
    last_update = status.date("lastUpdatePostDateStruct")
    year, month = _year_month(first_posted)

    registry_ids = [nct]
    for alias in ident.texts("nctIdAliases"):
        rid = normalise_registry_id(alias)
        if rid and rid not in registry_ids:
            registry_ids.append(rid)
    for sec in ident.objs("secondaryIdInfos"):
        raw = sec.text("id") or ""
        rid = None
        if sec.text("type") == "EUDRACT_NUMBER":
            rid = normalise_registry_id(raw)
        elif re.search(r"ISRCTN|EudraCT|\bNCT", raw, re.IGNORECASE):
            rid = normalise_registry_id(raw)
        if (
            rid
            and (rid.startswith("ISRCTN") or rid.startswith("EudraCT") or rid.startswith("NCT"))
            and rid not in registry_ids
        ):
            registry_ids.append(rid)

    study_type = design.text("studyType")
    allocation = design_info.text("allocation")
    phases = design.texts("phases")
    is_rct = study_type == "INTERVENTIONAL" and allocation == "RANDOMIZED"
    pub_types = [w for w in [_words(study_type), _words(allocation)] if w]
    pub_types += [w for w in (_words(p) for p in phases) if w]
    if is_rct:
        # lets screening rules written for PubMed ("Randomized Controlled Trial") see registry RCTs too
        pub_types.append("Randomized Controlled Trial")

    enrollment = design.obj("enrollmentInfo")
    references = []
    for ref in ps.obj("referencesModule").objs("references"):
        raw_pmid = ref.data.get("pmid")
        pmid = ref.count("pmid") if not isinstance(raw_pmid, str) else raw_pmid
        references.append(
            {"pmid": str(pmid) if pmid else None, "type": ref.text("type"), "citation": ref.text("citation")}
        )
    derived = root.obj("derivedSection")
    mesh = [t for m in derived.obj("conditionBrowseModule").objs("meshes") if (t := m.text("term"))]
    mesh += [t for m in derived.obj("interventionBrowseModule").objs("meshes") if (t := m.text("term"))]
    results_section = root.obj("resultsSection")
    has_results = bool(root.flag("hasResults")) or bool(results_section.data)
    conditions = ps.obj("conditionsModule")
    extra = {
        "nct_id": nct,
        "brief_title": ident.text("briefTitle"),
        "official_title": ident.text("officialTitle"),
        "acronym": ident.text("acronym"),
        "org_study_id": ident.obj("orgStudyIdInfo").text("id"),
        "overall_status": status.text("overallStatus"),
        "why_stopped": status.text("whyStopped"),
        "start_date": status.date("startDateStruct"),
        "primary_completion_date": status.date("primaryCompletionDateStruct"),
        "primary_completion_type": status.obj("primaryCompletionDateStruct").text("type"),
        "completion_date": status.date("completionDateStruct"),
        "first_posted": first_posted,
        "last_update_posted": last_update,
        "results_first_posted": status.date("resultsFirstPostDateStruct"),
        "study_type": study_type,
        "phases": phases,
        "allocation": allocation,
        "intervention_model": design_info.text("interventionModel"),
        "primary_purpose": design_info.text("primaryPurpose"),
        "masking": design_info.obj("maskingInfo").text("masking"),
        "enrollment": enrollment.count("count"),
        "enrollment_type": enrollment.text("type"),  # ACTUAL | ESTIMATED (anticipated)
        "conditions": conditions.texts("conditions"),
        "interventions": [{"type": i.text("type"), "name": i.text("name")} for i in arms.objs("interventions")],
        "arm_groups": [
            {"label": a.text("label"), "type": a.text("type"), "interventions": a.texts("interventionNames")}
            for a in arms.objs("armGroups")
        ],
        "lead_sponsor": sponsor,
        "references": references,
        "has_results": has_results,
        "results": _results_summary(results_section),
    }
    return Record(
        source="ctgov",
        source_id=nct,
        source_version=last_update,
        title=(ident.text("officialTitle") or ident.text("briefTitle") or "").strip(),
        abstract=(ps.obj("descriptionModule").text("briefSummary") or "").strip(),
        authors=[],
        journal=sponsor,
        year=year,
        month=month,
        publication_types=pub_types,
        is_rct=is_rct,
        mesh=mesh,
        keywords=conditions.texts("keywords"),
        registry_ids=registry_ids,
        extra=extra,
    )


def results_summary(study: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A compact list of a study's posted outcome measures (what, when, in which unit, for which groups).

    Returns:
        None when no results are posted; else one dict per outcome measure with title, type, time frame, unit,
        parameter and dispersion type, group titles and the number of reported analyses.
    Raises:
        CtgovFieldError: a results field of the wrong type.
    """
    nct = _nct_of(study) or "study"
    return _results_summary(_Obj(study if isinstance(study, dict) else {}, "", nct).obj("resultsSection"))


def _results_summary(results: _Obj) -> list[dict[str, Any]] | None:
    module = results.obj("outcomeMeasuresModule")
    if module.data.get("outcomeMeasures") is None:
        return None
    return [
        {
            "title": m.text("title"),
            "type": m.text("type"),
            "time_frame": m.text("timeFrame"),
            "units": m.text("unitOfMeasure"),
            "param_type": m.text("paramType"),
            "dispersion_type": m.text("dispersionType"),
            "groups": [g.text("title") for g in m.objs("groups")],
            "analyses": len(m.objs("analyses")),
        }
        for m in module.objs("outcomeMeasures")
    ]


# ---------------------------------------------------------------------------------------------------------------
# numbers and suggested extraction rows


@dataclass(frozen=True)
class ParsedNumber:
    """A registry number: `value` when it is a plain number, else None with `problem` saying why."""

    value: float | None
    raw: str | None
    problem: str | None = None


def parse_number(raw: Any) -> ParsedNumber:
    """Read one ClinicalTrials.gov number (they arrive as strings).

    Accepts plain decimals with optional sign, exponent and thousands separators ("1,234.5"). Anything else —
    "NA", "<0.001", ">99", "12.5%", "1.2 to 3.4", "" — is refused with a reason, never guessed.

    Args:
        raw: the value as it appears in the JSON (string, number or None).
    Returns:
        ParsedNumber(value, raw, problem).
    """
    if raw is None:
        return ParsedNumber(None, None, "missing")
    if isinstance(raw, bool):
        return ParsedNumber(None, str(raw), f"not a number: {raw!r}")
    if isinstance(raw, (int, float)):
        v = float(raw)
        return ParsedNumber(v, str(raw)) if math.isfinite(v) else ParsedNumber(None, str(raw), f"not finite: {raw!r}")
    text = str(raw).strip()
    if text.lower() in _MISSING_WORDS:
        return ParsedNumber(None, text, f"not available ({text!r})" if text else "empty")
    if text[0] in "<>≤≥~" or text.startswith(("<=", ">=")):
        return ParsedNumber(None, text, f"a bound, not a value ({text!r})")
    if text.endswith("%"):
        return ParsedNumber(None, text, f"a percentage with a % sign ({text!r}); enter the value by hand")
    if _NUMBER_RE.match(text) and any(c.isdigit() for c in text):
        v = float(text.replace(",", ""))
        if math.isfinite(v):
            return ParsedNumber(v, text)
    return ParsedNumber(None, text, f"not a number ({text!r})")


def _group_arm(group: dict[str, Any], arm_groups: list[dict[str, Any]], n_groups: int) -> tuple[str, str]:
    """Which arm a results group is (treatment/control/single/unknown) and how that was decided."""
    if n_groups == 1:
        return "single", "only group"
    title = (group.get("title") or "").strip()
    desc = group.get("description") or ""
    # an outcome group is usually titled after its arm group ("Arm A" inside "Palbociclib ... (Arm A)")
    matches = [
        a
        for a in arm_groups
        if a.get("label")
        and (
            a["label"].strip().lower() == title.lower()
            or re.search(r"(?<!\w)" + re.escape(a["label"].strip()) + r"(?!\w)", title, re.IGNORECASE)
        )
    ]
    if len(matches) == 1 and matches[0].get("type"):
        t = matches[0]["type"]
        if t in _CONTROL_TYPES:
            return "control", f"arm group {matches[0]['label']!r} is {t}"
        if t in _TREATMENT_TYPES:
            return "treatment", f"arm group {matches[0]['label']!r} is {t}"
    if _CONTROL_WORDS.search(title) or (not title and _CONTROL_WORDS.search(desc)):
        return "control", "group title names a control"
    return "unknown", "arm not recognised: set treatment or control when accepting"


def _ref(
    nct: str, measure: dict[str, Any], cls: dict[str, Any] | None = None, cat: dict[str, Any] | None = None
) -> str:
    parts = [
        f"ctgov:{nct} outcome measure ({(measure.get('type') or '').lower() or 'unknown type'}): "
        f"{measure.get('title') or '(untitled)'}"
    ]
    if cls and cls.get("title"):
        parts.append(f"class: {cls['title']}")
    if cat and cat.get("title"):
        parts.append(f"category: {cat['title']}")
    if measure.get("timeFrame"):
        parts.append(f"time frame: {measure['timeFrame']}")
    return "; ".join(parts)


def _denominators(measure: dict[str, Any], cls: dict[str, Any] | None) -> tuple[dict[str, ParsedNumber], str | None]:
    denoms = (cls or {}).get("denoms") or measure.get("denoms") or []
    if not denoms:
        return {}, None
    # participants are what an analysis counts; other units (eyes, lesions) are noted
    chosen = next((d for d in denoms if (d.get("units") or "").lower() == "participants"), denoms[0])
    return ({c.get("groupId"): parse_number(c.get("value")) for c in chosen.get("counts") or []}, chosen.get("units"))


def suggest_extraction_rows(study: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Suggested extraction rows from a study's posted results (never used until a person accepts them).

    Participant counts become events/total per group; means with SD (or SE, converted by SE·√n) become
    mean/sd/n; reported analyses with a ratio or difference estimate become contrast rows with their CI.
    Arms are taken from the registry's arm group types (experimental/active -> treatment; placebo/sham/no
    intervention -> control); when that is not clear the arm is "unknown" and must be set by the person.

    Args:
        study: one API v2 study (with `resultsSection`).
    Returns:
        (rows, problems): rows as dicts with the Extraction CSV columns (`arm`, `group_label`, `events`, `total`,
        `mean`, `sd`, `n`, `estimate`, `se`, `ci_lower`, `ci_upper`, `scale`, `source_ref`, `notes`) plus `registry`
        details (outcome title, type, time frame, units, param type, group id/title, CI level, problems);
        problems: one line per value that could not be used, naming the outcome, group and raw value.
    """
    nct = _get(study, "protocolSection", "identificationModule", "nctId", default="?")
    measures = _get(study, "resultsSection", "outcomeMeasuresModule", "outcomeMeasures", default=[])
    arm_groups = _get(study, "protocolSection", "armsInterventionsModule", "armGroups", default=[])
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for mi, m in enumerate(measures):
        groups = {g.get("id"): g for g in m.get("groups") or []}
        param = (m.get("paramType") or "").upper()
        units = m.get("unitOfMeasure") or ""
        disp = (m.get("dispersionType") or "").upper()
        where = f"ctgov:{nct} outcome {mi + 1} ({m.get('title') or 'untitled'})"
        arm_of = {gid: _group_arm(g, arm_groups, len(groups)) for gid, g in groups.items()}
        is_count = param == "COUNT_OF_PARTICIPANTS" or (
            param == "NUMBER"
            and units.strip().lower() in ("participants", "patients", "subjects", "number of participants")
        )
        is_mean = param in ("MEAN", "LEAST_SQUARES_MEAN")
        if m.get("reportingStatus") and m.get("reportingStatus") != "POSTED":
            continue
        if not (is_count or is_mean):
            if (m.get("classes") or []) and param:
                problems.append(
                    f"{where}: parameter type {m.get('paramType')} ({units or 'no unit'}) is not turned "
                    "into counts or means; read it in the registry if needed"
                )
        for cls in m.get("classes") or []:
            denom, denom_units = _denominators(m, cls)
            for cat in cls.get("categories") or []:
                for meas in cat.get("measurements") or []:
                    gid = meas.get("groupId")
                    g = groups.get(gid, {})
                    arm, arm_why = arm_of.get(gid, ("unknown", "group not listed in the outcome's groups"))
                    if not (is_count or is_mean):
                        continue
                    n = denom.get(gid, ParsedNumber(None, None, "no denominator"))
                    value = parse_number(meas.get("value"))
                    notes, row_problems = [f"arm: {arm_why}"], []
                    if units:
                        notes.append(f"units: {units}")
                    if denom_units and denom_units.lower() != "participants":
                        row_problems.append(f"denominator counts {denom_units}, not participants")
                    if value.problem:
                        row_problems.append(f"value {value.problem}")
                    if n.problem:
                        row_problems.append(f"denominator {n.problem}")
                    row: dict[str, Any] = {
                        "arm": arm,
                        "group_label": g.get("title") or gid,
                        "source_ref": _ref(nct, m, cls, cat),
                    }
                    if is_count:
                        row.update(events=value.value, total=n.value)
                        if value.value is not None and n.value is not None and value.value > n.value:
                            row_problems.append(f"events {value.raw} exceed the denominator {n.raw}")
                    else:
                        row.update(mean=value.value, n=n.value)
                        spread = parse_number(meas.get("spread"))
                        if disp == "STANDARD_DEVIATION":
                            if spread.problem:
                                row_problems.append(f"SD {spread.problem}")
                            row["sd"] = spread.value
                        elif disp in ("STANDARD_ERROR", "STANDARD_ERROR_OF_MEAN"):
                            if spread.problem or n.value is None:
                                row_problems.append(f"SE {spread.problem or 'without a denominator'}")
                                row["sd"] = None
                            else:
                                assert spread.value is not None  # a spread without a problem has a value
                                row["sd"] = spread.value * math.sqrt(n.value)
                                notes.append(f"SD derived from SE {spread.raw} x sqrt(n)")
                        else:
                            row["sd"] = None
                            row_problems.append(f"dispersion {m.get('dispersionType') or 'missing'} is not an SD or SE")
                    if row_problems:
                        problems.append(f"{where}, group {g.get('title') or gid}: " + "; ".join(row_problems))
                    usable = (
                        (row.get("events") is not None and row.get("total") is not None)
                        if is_count
                        else row.get("mean") is not None
                    )
                    if not usable:
                        continue
                    row["notes"] = "; ".join(notes + [f"could not use: {p}" for p in row_problems])
                    row["registry"] = _details(m, gid, g.get("title"), None, row_problems)
                    rows.append(row)
        for ai, a in enumerate(m.get("analyses") or []):
            rows_a, probs = _analysis_row(nct, m, a, groups, where=f"{where} analysis {ai + 1}")
            rows.extend(rows_a)
            problems.extend(probs)
    return rows, problems


def _details(
    m: dict[str, Any], gid: str | None, gtitle: str | None, ci_level: float | None, problems: list[str]
) -> dict[str, Any]:
    return {
        "outcome_title": m.get("title"),
        "outcome_type": m.get("type"),
        "time_frame": m.get("timeFrame"),
        "units": m.get("unitOfMeasure"),
        "param_type": m.get("paramType"),
        "group_id": gid,
        "group_title": gtitle,
        "ci_level": ci_level,
        "problems": list(problems),
    }


def _analysis_row(
    nct: str, m: dict[str, Any], a: dict[str, Any], groups: dict[str, Any], where: str
) -> tuple[list[dict[str, Any]], list[str]]:
    ptype = a.get("paramType") or ""
    if _RATIO_WORDS.search(ptype):
        scale = "ratio"
    elif _DIFFERENCE_WORDS.search(ptype):
        scale = "difference"
    else:
        if ptype or a.get("paramValue"):
            return [], [
                f"{where}: effect type {ptype or 'missing'!r} is neither a ratio nor a difference; not suggested"
            ]
        return [], []
    est = parse_number(a.get("paramValue"))
    lo, hi = parse_number(a.get("ciLowerLimit")), parse_number(a.get("ciUpperLimit"))
    level = parse_number(a.get("ciPctValue"))
    row_problems = [
        f"{name} {p.problem}" for name, p in (("estimate", est), ("CI lower", lo), ("CI upper", hi)) if p.problem
    ]
    titles = [groups.get(g, {}).get("title") or g for g in a.get("groupIds") or []]
    notes = [
        f"{ptype} comparing {' vs '.join(titles) or 'unnamed groups'} (order as listed in the registry; "
        "check which group is the reference)"
    ]
    if a.get("statisticalMethod"):
        notes.append(f"method: {a['statisticalMethod']}")
    odd_level = level.value is not None and level.value != 95
    if odd_level:
        # a 95% interval is assumed downstream: keep another level out of the CI columns
        row_problems.append(f"{level.raw}% CI ({lo.raw} to {hi.raw}) is not a 95% CI; convert it by hand")
    if a.get("ciNumSides") == "ONE_SIDED":
        row_problems.append("one-sided CI")
    if a.get("pValue"):
        notes.append(f"p = {a['pValue']}")
    problems = [f"{where}: " + "; ".join(row_problems)] if row_problems else []
    if est.value is None:
        return [], problems
    if scale == "ratio" and any(p.value is not None and p.value <= 0 for p in (est, lo, hi)):
        return [], problems + [f"{where}: a ratio must be positive (estimate {est.raw}, CI {lo.raw} to {hi.raw})"]
    one_sided = a.get("ciNumSides") == "ONE_SIDED" or odd_level
    row: dict[str, Any] = {
        "arm": "contrast",
        "group_label": " vs ".join(titles) or None,
        "estimate": est.value,
        "ci_lower": None if one_sided else lo.value,
        "ci_upper": None if one_sided else hi.value,
        "scale": scale,
        "source_ref": _ref(nct, m),
        "notes": "; ".join(notes + [f"could not use: {p}" for p in row_problems]),
    }
    disp = (a.get("dispersionType") or "").upper()
    if disp in ("STANDARD_ERROR_OF_MEAN", "STANDARD_ERROR") and scale == "difference":
        se = parse_number(a.get("dispersionValue"))
        row["se"] = se.value
    row["registry"] = {
        **_details(m, ",".join(a.get("groupIds") or []), row["group_label"], level.value, row_problems),
        "param_type": ptype,
    }
    return [row], problems
