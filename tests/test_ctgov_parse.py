"""ClinicalTrials.gov parsing: request parameters, study -> Record, defensive numbers, suggested rows."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from livingmeta.sources.ctgov import (CtgovFormatError, next_page_params, parse_number, parse_studies_page,
                                      parse_study, search_params, suggest_extraction_rows)
from livingmeta.sources.events import registry_events

FIXTURES = Path(__file__).parent / "fixtures" / "ctgov"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_first_page_params_and_later_pages_repeat_them():
    first = search_params(condition="neuropathic pain", intervention="IVIG", updated_since=dt.date(2024, 1, 2),
                          page_size=50)
    assert first["query.cond"] == "neuropathic pain" and first["query.intr"] == "IVIG"
    assert "query.term" not in first
    assert first["filter.advanced"] == "AREA[LastUpdatePostDate]RANGE[2024-01-02,MAX]"
    assert first["pageSize"] == "50" and first["countTotal"] == "true"
    later = next_page_params(first, "tok2")
    assert later["pageToken"] == "tok2" and "countTotal" not in later
    assert {k: v for k, v in later.items() if k != "pageToken"} == {k: v for k, v in first.items() if k != "countTotal"}


def test_search_needs_something_to_search_for():
    with pytest.raises(ValueError, match="at least one of condition"):
        search_params(condition=" ")
    with pytest.raises(ValueError, match="between 1 and 1000"):
        search_params(terms="x", page_size=5000)


def test_study_becomes_a_record_with_registry_fields():
    rec = parse_study(load("study_NCT09000001_v2.json"))
    assert rec.record_id == "ctgov:NCT09000001"
    assert rec.source_version == "2022-05-10"
    assert rec.title.startswith("Intravenous Immunoglobulin Versus Placebo in Painful Idiopathic")
    assert rec.year == 2015 and rec.month == 12
    assert rec.is_rct and "Randomized Controlled Trial" in rec.publication_types
    assert rec.registry_ids == ["NCT09000001", "EudraCT 2015-009999-11"]
    x = rec.extra
    assert x["overall_status"] == "COMPLETED" and x["has_results"] is True
    assert x["enrollment"] == 60 and x["enrollment_type"] == "ACTUAL"
    assert x["masking"] == "QUADRUPLE" and x["phases"] == ["PHASE2"]
    assert x["results_first_posted"] == "2022-05-10" and x["first_posted"] == "2015-12-20"
    assert {"type": "BIOLOGICAL", "name": "Immunoglobulin"} in x["interventions"]
    assert [a["type"] for a in x["arm_groups"]] == ["EXPERIMENTAL", "PLACEBO_COMPARATOR"]
    assert x["references"][0]["pmid"] == "39000001" and x["references"][0]["type"] == "RESULT"
    assert x["results"][0]["title"].startswith("Participants With") and x["results"][0]["analyses"] == 1


def test_single_arm_study_is_not_an_rct():
    rec = parse_study(load("study_NCT09000003.json"))
    assert not rec.is_rct and rec.extra["why_stopped"] == "slow recruitment"
    assert rec.extra["results"] is None and rec.extra["has_results"] is False


def test_status_change_and_results_posted_are_events():
    old = parse_study(load("study_NCT09000001_v1.json")).to_dict()
    new = parse_study(load("study_NCT09000001_v2.json")).to_dict()
    assert registry_events(old, new) == [("status_change", "RECRUITING", "COMPLETED"),
                                         ("results_posted", None, "2022-05-10")]


@pytest.mark.parametrize("raw, value, problem", [
    ("12", 12.0, None), ("-3.5", -3.5, None), ("1,024", 1024.0, None), ("2.5e-3", 0.0025, None), (7, 7.0, None),
    ("NA", None, "not available"), ("", None, "empty"), (None, None, "missing"), ("<0.001", None, "a bound"),
    ("≥5", None, "a bound"), ("12.5%", None, "percentage"), ("1.2 to 3.4", None, "not a number"),
    ("1,2", None, "not a number"), ("inf", None, "not a number"),
])
def test_numbers_are_parsed_strictly(raw, value, problem):
    got = parse_number(raw)
    assert got.value == value
    if problem is None:
        assert got.problem is None
    else:
        assert problem in got.problem


def test_results_become_suggested_rows_and_problems_are_named():
    rows, problems = suggest_extraction_rows(load("study_NCT09000001_v2.json"))
    counts = [r for r in rows if r.get("events") is not None]
    assert [(r["arm"], r["events"], r["total"]) for r in counts[:2]] == [("treatment", 12, 30), ("control", 9, 30)]
    assert counts[0]["registry"]["time_frame"] == "12 weeks" and counts[0]["registry"]["group_title"] == "IVIG"
    odds = next(r for r in rows if r["arm"] == "contrast" and r["scale"] == "ratio")
    assert (odds["estimate"], odds["ci_lower"], odds["ci_upper"]) == (1.56, 0.53, 4.53)
    means = [r for r in rows if r.get("mean") is not None]
    assert (means[0]["mean"], means[0]["sd"], means[0]["n"]) == (-1.1, 1.6, 29)
    assert means[1]["sd"] is None and "SD not available" in means[1]["notes"]
    se_row = next(r for r in means if "Sleep" in r["source_ref"])
    assert se_row["sd"] == pytest.approx(0.2 * 25 ** 0.5)  # SD = SE * sqrt(n)
    # a 90% CI is never put where a 95% CI is expected
    md = next(r for r in rows if r["arm"] == "contrast" and r["scale"] == "difference")
    assert md["ci_lower"] is None and md["ci_upper"] is None and "90% CI" in md["notes"]
    text = "\n".join(problems)
    for expected in ("'12.5%'", "'<5'", "denominator not available", "90% CI", "MEDIAN"):
        assert expected in text
    # a value that could not be read produces no row for that group
    assert not any(r.get("mean") is None and r.get("events") is None and r["arm"] != "contrast" for r in rows)
    assert not any("Serious" in r["source_ref"] and r["arm"] == "control" for r in rows)


def test_bad_pages_are_refused_with_a_reason():
    with pytest.raises(CtgovFormatError, match="truncated"):
        parse_studies_page(b'{"studies": [{"protocolSection"', where="page 2")
    with pytest.raises(CtgovFormatError, match="`studies` list"):
        parse_studies_page(b'{"error": "bad"}')
    # one study without a valid NCT id is a named skip, not a failed page (issue 14); parse_study still refuses it
    with pytest.raises(CtgovFormatError, match="nctId"):
        parse_study({"protocolSection": {"identificationModule": {"nctId": "123"}}})
    page = parse_studies_page({"studies": [{"protocolSection": {"identificationModule": {"nctId": "123"}}}]})
    assert page.studies == [] and len(page.skipped) == 1
    assert page.skipped[0].field == "protocolSection.identificationModule.nctId" and "nctId" in page.skipped[0].problem
    with pytest.raises(CtgovFormatError, match="nextPageToken must be a string"):
        parse_studies_page({"studies": [], "nextPageToken": 7})


def _odd(study: dict, path: str, value) -> dict:
    study = json.loads(json.dumps(study))
    *parents, last = path.split(".")
    d = study
    for p in parents:
        d = d.setdefault(p, {})
    if value is _DELETE:
        d.pop(last, None)
    else:
        d[last] = value
    return study


_DELETE = object()
ODD_FIELDS = [
    ("protocolSection.referencesModule.references", ["39000001", "Some citation"],
     "protocolSection.referencesModule.references[0]"),
    ("protocolSection.designModule.phases", "PHASE2", "protocolSection.designModule.phases"),
    ("protocolSection.designModule.enrollmentInfo.count", {"value": 60}, "protocolSection.designModule.enrollmentInfo.count"),
    ("protocolSection.identificationModule.nctId", _DELETE, "protocolSection.identificationModule.nctId"),
    ("protocolSection.statusModule.lastUpdatePostDateStruct", "2022-05-10", "protocolSection.statusModule.lastUpdatePostDateStruct"),
    ("protocolSection.conditionsModule.conditions", [{"name": "SFN"}], "protocolSection.conditionsModule.conditions[0]"),
    ("hasResults", "yes", "hasResults"),
    ("protocolSection", ["not", "an", "object"], "protocolSection"),
]


@pytest.mark.parametrize("path,value,field", ODD_FIELDS, ids=[f[0].rsplit(".", 1)[-1] for f in ODD_FIELDS])
def test_a_study_with_an_odd_field_is_a_named_skip_and_the_others_are_kept(path, value, field):
    good = load("study_NCT09000001_v2.json")
    other = load("study_NCT09000002.json")
    odd = _odd(load("study_NCT09000003.json"), path, value)
    page = parse_studies_page({"studies": [good, odd, other], "totalCount": 3})
    assert [r.source_id for r, _ in page.studies] == ["NCT09000001", "NCT09000002"]
    assert len(page.skipped) == 1
    skip = page.skipped[0]
    assert skip.field == field, skip
    assert field in skip.problem and "studies[1]" in skip.problem
    if field not in ("protocolSection.identificationModule.nctId", "protocolSection"):  # else nothing names it
        assert skip.source_id == "NCT09000003" and "NCT09000003" in skip.problem
    assert json.loads(skip.payload) == odd


def test_a_study_that_is_not_an_object_is_skipped():
    page = parse_studies_page({"studies": ["NCT09000003", load("study_NCT09000002.json")]})
    assert [r.source_id for r, _ in page.studies] == ["NCT09000002"]
    assert page.skipped[0].source_id is None and "must be a JSON object" in page.skipped[0].problem


def test_complete_results_record_from_shared_fixtures():
    path = SHARED / "fixtures" / "ctgov" / "mcode_NCT02513394.json"
    if not path.exists():
        pytest.skip(f"{path} is not available")
    study = json.loads(path.read_text(encoding="utf-8"))
    page = parse_studies_page({"studies": [study], "nextPageToken": None})
    rec = page.studies[0][0]
    assert rec.source_id == "NCT02513394" and rec.extra["acronym"] == "PALLAS"
    assert "EudraCT 2014-005181-30" in rec.registry_ids
    assert rec.extra["enrollment"] == 5796 and rec.extra["has_results"]
    assert rec.extra["overall_status"] == "ACTIVE_NOT_RECRUITING"
    rows, problems = suggest_extraction_rows(study)
    hrs = [r for r in rows if r["arm"] == "contrast"]
    assert len(hrs) == 5 and all(r["scale"] == "ratio" for r in hrs)
    assert (hrs[0]["estimate"], hrs[0]["ci_lower"], hrs[0]["ci_upper"]) == (0.96, 0.81, 1.14)
    # percentages of participants are not silently turned into counts
    assert all(r.get("events") is None for r in rows)
    assert any("percentage of participants" in p for p in problems)
