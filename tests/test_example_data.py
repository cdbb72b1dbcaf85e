"""The bundled example review's recorded data: shapes, cross-references, sources and the demo's key number."""

from __future__ import annotations

import csv
import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from flows.demo import load_timeline
from livingmeta.config import load_review

REVIEW = Path(__file__).resolve().parents[1] / "reviews" / "ivig-pnp"
SHARED_RECORDS = Path(__file__).resolve().parents[1].parent / "shared" / "reviews" / "ivig-pnp" / "records"
STEPS = load_timeline(REVIEW)
DECISION_COLUMNS = ["record_id", "reviewer", "stage", "decision", "reason", "decided_at"]
EXTRACTION_COLUMNS = ["study", "outcome", "arm", "group_label", "events", "total", "mean", "sd", "n", "estimate", "se",
                      "ci_lower", "ci_upper", "scale", "subgroup", "extractor", "extracted_on", "source_ref", "notes"]


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def pubmed_ids(step) -> list[str]:
    root = ET.parse(step.snapshot / "pubmed" / "efetch-001.xml").getroot()
    return [f"pubmed:{a.findtext('MedlineCitation/PMID')}" for a in root.findall("PubmedArticle")]


def ctgov_ids(step) -> list[str]:
    page = json.loads((step.snapshot / "ctgov" / "page-001.json").read_text(encoding="utf-8"))
    return [f"ctgov:{s['protocolSection']['identificationModule']['nctId']}" for s in page["studies"]]


def test_review_and_timeline_are_valid():
    cfg = load_review(REVIEW)
    assert cfg.id == "ivig-pnp"
    assert {a.id for a in cfg.analyses} == {"responders-or-mh", "responders-rr-re", "relief-share-pft"}
    assert [s.name for s in STEPS] == ["2010", "2020", "2021", "2023"]
    for step in STEPS:
        assert step.snapshot.is_dir(), step.snapshot
        assert step.inputs and all(p.exists() for p in step.inputs), f"step {step.name}: missing input file"


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.name)
def test_efetch_snapshot_is_a_pubmed_article_set_biopython_reads(step):
    from Bio import Entrez

    path = step.snapshot / "pubmed" / "efetch-001.xml"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<?xml")
    assert '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd"' in text.splitlines()[1]
    with path.open("rb") as h:
        parsed = Entrez.read(h)  # validates element names against the bundled DTD, offline
    articles = parsed["PubmedArticle"]
    assert articles, f"{path}: no PubmedArticle"
    for a in articles:
        cit = a["MedlineCitation"]
        assert cit["PMID"].attributes["Version"] == "1"
        art = cit["Article"]
        assert art["ArticleTitle"].strip()
        assert art["Journal"]["JournalIssue"]["PubDate"]["Year"].isdigit()
        assert art["Language"] == ["eng"]
        assert len(art["PublicationTypeList"]) >= 1
        ids = {str(i.attributes["IdType"]): str(i) for i in a["PubmedData"]["ArticleIdList"]}
        assert ids["pubmed"] == str(cit["PMID"])
        # third-party abstracts are never part of the project
        assert "Abstract" not in art, f"{path}: PMID {cit['PMID']} carries an abstract"


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.name)
def test_esearch_answer_lists_exactly_the_fetched_pmids(step):
    from Bio import Entrez

    with (step.snapshot / "pubmed" / "esearch-001.xml").open("rb") as h:
        answer = Entrez.read(h)
    assert int(answer["Count"]) == len(answer["IdList"])
    assert sorted(f"pubmed:{i}" for i in answer["IdList"]) == sorted(pubmed_ids(step))


def test_no_shared_abstract_text_is_copied():
    if not SHARED_RECORDS.exists():
        pytest.skip("../shared is not beside the repository")
    snapshots = "".join(p.read_text(encoding="utf-8") for p in REVIEW.rglob("*") if p.is_file())
    for f in SHARED_RECORDS.glob("*.json"):
        abstract = json.loads(f.read_text(encoding="utf-8")).get("abstract") or ""
        sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", abstract) if len(s.strip()) > 60]
        for s in sentences:
            assert s not in snapshots, f"abstract sentence from {f.name} found in the example data"


def test_synthetic_ids_are_documented():
    readme = (REVIEW / "README.md").read_text(encoding="utf-8")
    for step in STEPS:
        for rid in pubmed_ids(step):
            pmid = rid.split(":")[1]
            if pmid.startswith("99"):
                assert re.search(rf"{pmid} \(synthetic\)", readme), f"synthetic PMID {pmid} not documented"


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.name)
def test_ctgov_snapshot_is_an_api_v2_studies_page(step):
    page = json.loads((step.snapshot / "ctgov" / "page-001.json").read_text(encoding="utf-8"))
    assert set(page) == {"studies", "totalCount"}, "last page: studies + totalCount, no nextPageToken"
    assert page["totalCount"] == len(page["studies"])
    for s in page["studies"]:
        ps = s["protocolSection"]
        assert re.fullmatch(r"NCT\d{8}", ps["identificationModule"]["nctId"])
        assert ps["identificationModule"]["briefTitle"]
        assert ps["statusModule"]["overallStatus"] in {"RECRUITING", "COMPLETED", "TERMINATED", "ACTIVE_NOT_RECRUITING",
                                                       "NOT_YET_RECRUITING", "WITHDRAWN", "SUSPENDED", "UNKNOWN"}
        assert ps["designModule"]["studyType"] == "INTERVENTIONAL"
        assert isinstance(s["hasResults"], bool)


def test_registry_status_change_between_2020_and_2023():
    def status(step_name):
        step = next(s for s in STEPS if s.name == step_name)
        page = json.loads((step.snapshot / "ctgov" / "page-001.json").read_text(encoding="utf-8"))
        return {s["protocolSection"]["identificationModule"]["nctId"]: s["protocolSection"]["statusModule"]["overallStatus"]
                for s in page["studies"]}

    assert status("2020")["NCT02915263"] == "RECRUITING"
    assert status("2023")["NCT02915263"] == "TERMINATED"


def test_every_decision_refers_to_a_record_seen_so_far():
    seen: set[str] = set()
    for step in STEPS:
        in_step = set(pubmed_ids(step)) | set(ctgov_ids(step))
        new = in_step - seen  # changed records (a registry update) keep their earlier decisions
        seen |= in_step
        cols, rows = read_csv(step.snapshot / "decisions.csv")
        assert cols == DECISION_COLUMNS
        for i, r in enumerate(rows, start=2):
            where = f"{step.name}/decisions.csv line {i}"
            assert r["record_id"] in seen, f"{where}: {r['record_id']} is not in this or an earlier snapshot"
            assert r["stage"] in {"title_abstract", "full_text"}, where
            assert r["decision"] in {"include", "exclude", "maybe"}, where
            assert r["reason"].strip(), f"{where}: every recorded decision says why"
            assert r["decided_at"] == step.as_of.date().isoformat(), where
        decided = {r["record_id"] for r in rows if r["stage"] == "title_abstract"}
        assert new <= decided, f"step {step.name}: records without a title/abstract decision: {sorted(new - decided)}"
        included = {r["record_id"] for r in rows if r["stage"] == "title_abstract" and r["decision"] != "exclude"}
        full_text = {r["record_id"] for r in rows if r["stage"] == "full_text"}
        assert included <= full_text, f"step {step.name}: included at title/abstract but no full-text decision"


def extraction_rows() -> list[tuple[str, int, dict]]:
    out = []
    for step in STEPS:
        for p in step.inputs:
            if p.name == "extraction.csv":
                cols, rows = read_csv(p)
                assert cols == EXTRACTION_COLUMNS, p
                out += [(step.name, i, r) for i, r in enumerate(rows, start=2)]
    return out


def test_every_extraction_row_cites_a_source_and_belongs_to_an_included_record():
    included: set[str] = set()
    for step in STEPS:
        _, rows = read_csv(step.snapshot / "decisions.csv")
        included |= {r["record_id"] for r in rows if r["stage"] == "full_text" and r["decision"] == "include"}
    rows = extraction_rows()
    assert rows
    cfg = load_review(REVIEW)
    outcomes = {o.id: o.kind for o in cfg.outcomes}
    for step, line, r in rows:
        where = f"{step}/extraction.csv line {line}"
        assert r["source_ref"].startswith("https://"), f"{where}: source_ref must be a public URL"
        assert r["notes"].strip(), f"{where}: notes say what was extracted"
        assert r["study"] in included, f"{where}: {r['study']} is not an included record"
        assert r["outcome"] in outcomes, where
        assert r["arm"] in {"treatment", "control", "single"}, where
        events, total = int(r["events"]), int(r["total"])
        assert 0 <= events <= total, where


def test_responders_give_the_demo_mantel_haenszel_odds_ratio():
    """Jann 2020 + Geerts 2021: MH OR 2.91 (95% CI 1.16-7.31), p = 0.023 (Robins-Breslow-Greenland variance)."""
    arms: dict[str, dict[str, tuple[int, int]]] = {}
    for _, _, r in extraction_rows():
        if r["outcome"] == "responders":
            arms.setdefault(r["study"], {})[r["arm"]] = (int(r["events"]), int(r["total"]))
    assert set(arms) == {"pubmed:99000001", "pubmed:33766992"}
    r_sum = s_sum = pr = ps_qr = qs = 0.0
    for study in arms.values():
        (a, n1), (c, n0) = study["treatment"], study["control"]
        b, d, n = n1 - a, n0 - c, n1 + n0
        r_i, s_i, p_i, q_i = a * d / n, b * c / n, (a + d) / n, (b + c) / n
        r_sum, s_sum = r_sum + r_i, s_sum + s_i
        pr, ps_qr, qs = pr + p_i * r_i, ps_qr + p_i * s_i + q_i * r_i, qs + q_i * s_i
    log_or = math.log(r_sum / s_sum)
    se = math.sqrt(pr / (2 * r_sum**2) + ps_qr / (2 * r_sum * s_sum) + qs / (2 * s_sum**2))
    p = math.erfc(abs(log_or / se) / math.sqrt(2))
    # published/seed figures are given to 2 decimals (p to 3): compare at that precision
    assert round(math.exp(log_or), 2) == 2.91
    assert round(math.exp(log_or - 1.959964 * se), 2) == 1.16
    assert round(math.exp(log_or + 1.959964 * se), 2) == 7.31
    assert round(p, 3) == 0.023
