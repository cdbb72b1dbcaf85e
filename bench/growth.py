"""Benchmark: how an update's cost grows with the warehouse (first load, nightly, no-change nightly).

For each size N it writes a synthetic review offline (about 1 ClinicalTrials.gov record per 10 PubMed ones;
PubMed efetch XML and CT.gov API v2 JSON pages shaped like tests/fixtures and the recorded snapshots of
reviews/ivig-pnp; realistic duplicates: publications carrying their trial's NCT id in DataBankList or in
the abstract, registry entries listing their result PMIDs, conference abstracts and full papers of one
trial with near-identical titles a year apart, a shared DOI), then runs, each in a fresh process:

  first    the first update over all N records,
  (setup)  screening decisions for ~1% of the records are imported (not timed), so the model ranks,
  nightly  150 new records (some of them new reports of known trials) + 50 changed ones,
  nochange the same replay again: nothing new.

Each cycle drives the real task functions of the `update-review` flow (`.fn`, without the Prefect engine,
whose fixed overhead of ~1-10 s per flow run would hide the growth) in replay mode: register, search PubMed
and CT.gov, link, flag/rank, analyse, record version, publish, finish. `--flow` also runs the real flow
once (Prefect engine included) for the nightly at the largest size. Figures: process CPU seconds of the
cycle (user + system, children included, from the parent's getrusage), peak RSS, per-stage CPU seconds,
and the growth exponent log(cpu2/cpu1)/log(N2/N1) between sizes. Printed, never asserted.

Each cycle line shows the process CPU (what a fresh worker process pays, imports included) and the CPU spent in
the cycle's steps (what a long-running `serve` process pays); the issue's targets are printed beside the figures.

Run:  .venv/bin/python bench/growth.py --sizes 10000 50000 [200000] [--flow] [--keep DIR [--reuse]] [--only-first]
      [--profile DIR]
(--keep DIR --reuse: reuse the size folders an earlier run generated there, removing only their warehouse, its
side files and the outputs; generating 200k takes ~5 min. --only-first: only the first load.)

Peak RSS per stage: ru_maxrss after each stage (monotonic), how much the stage raised it and the resident size when
it returned; the cycle's peak is the last stage that raised it. Linux folds the parent's RSS at fork into the
child's ru_maxrss (exec keeps it), so a run that generates the review in the parent has that as a floor for small
cycles; --reuse runs start from a small parent.

Measured 2026-12-03, end of session 4 (incremental ranking with a kept model, lazy imports, memory work below):
  quiet run, `.venv/bin/python bench/growth.py --sizes 10000 50000` (CPU-s process / in the cycle):
    10k  first 17.2 / 14.6 (501 MB), nightly 7.11 / 4.66 (flag/rank 1.94), no-change 3.59 / 1.46 (snapshot kept)
    50k  first 86.7 / 84.0 (987 MB), nightly 11.33 / 8.53 (search/ingest 2.04, link 2.34, flag/rank 2.61,
         publish 1.40), no-change 4.41 / 1.78; setup (first model fit over 50k texts) 125 CPU-s, 1482 MB
    exponents 10k -> 50k: nightly 0.29 / 0.38, no-change 0.13 / 0.12. Runs on this machine vary by 10-25%: a run
    earlier the same day (before the memory work) gave 50k nightly 8.97 / 6.53, no-change 3.68 / 1.22.
  `nice -n 5 .venv/bin/python bench/growth.py --sizes 200000 --keep /work/g200k --reuse` (with the CI suite
  running beside it): first load 631.2 CPU-s / 603.4 s wall (link 451.3, search/ingest 126.1, flag/rank 50.1),
  peak 1309 MB; setup 371 CPU-s, 7815 MB (the first model fit over 200k texts, before its texts were analysed in
  slices); nightly 17.53 / 15.18 CPU-s, 892 MB (search/ingest 4.20, link 6.24, flag/rank 2.64, publish 1.92);
  no-change 3.69 / 1.87, 440 MB. Exponent 10k -> 200k (loaded run: 10k nightly 5.67 / 3.48): nightly 0.38 / 0.49.
  What still grows in a nightly: titles compared with every registry title / publication of the review (linking),
  the Parquet export of every dashboard view when anything changed (publish), ingest's lookups of the fetched
  records. Ranking no longer does (flag/rank 23.6 -> 2.6 CPU-s at 200k).

Earlier (2 shared cores, other sessions loading the machine; 10k and 50k as separate runs, nice 10):
  N=10k  nightly 8.49 CPU-s process / 4.59 in the cycle, no-change 5.18 / 1.30 (snapshot kept), first load 20.8
  N=50k  nightly 12.53 / 9.69 (flag/rank 5.72 of it), no-change 3.69 / 1.06 (snapshot kept; start-up 2.63),
         first load 81.2 CPU-s (link 35.1, was 198 with link ~100), peak RSS 2085 MB in the first load
  200k (2026-12-03, quiet machine): first load 520.0 CPU-s / 358.9 s wall (link 386.1), peak RSS 5785 MB (target
  2 GB NOT met); nightly 39.6 CPU-s (flag/rank 23.6), no-change 5.7 CPU-s (2.3 in the cycle).
  Before this change (last session): 50k nightly 24.8, no-change 12.1 (publish 7.6).

Memory (issue 15), 2026-12-03, 2 shared cores under load (load average 3-4), nice 10:
  before (commit 0c11852): the first load's peak was set in search/ingest, not in linking: 50k 2052 MB (ingest
    raised it by 1785 MB; 78.2 CPU-s), 200k 5840 MB (+4922 MB in ingest; 622.8 CPU-s / 680.6 s wall: ingest 106.5,
    link 460.9, flag/rank 49.2). Every parsed record with its payload was held until storing, then the whole plan,
    its frames and DuckDB's copies (DuckDB's buffer pool may grow to 80% of the machine).
  after (fetched records spooled to disk, stored in batches of 5,000, DuckDB memory_limit 1 GB, linking without
    abstracts and with compact components and sliced title comparisons):
    50k  first load 951 MB peak, set in search/ingest (link and flag/rank below it), 101.2 CPU-s on the loaded
         machine; back to back on a calmer one (load ~1), the first-load cycle's steps: 0c11852 97.0 CPU-s / 1980 MB,
         this code 93.5 CPU-s / 939 MB (ingest 34.4 -> 36.1, link 43.9 -> 39.9, flag/rank 17.8 -> 16.7), with the
         same records, links, evidence, conflicts, keys and queue (scores included), table for table. Setup 99.4
         CPU-s / 2226 MB; nightly 9.48 CPU-s / 514 MB; no-change 4.82 CPU-s / 267 MB.
    200k first load 1877 MB peak, set in flag/rank (ingest 1308, link below 1308; warehouse.screening.flag_candidates
         loads every new record's full row at once, ~900 MB at 200k), 711.8 CPU-s / 648.6 s wall (ingest 143.6,
         link 499.4, flag/rank 63.1: CPU target NOT met on this loaded machine); nightly 902 MB (24.1 CPU-s),
         no-change 446 MB (5.3 CPU-s): peak RSS < 2 GB in every cycle. The setup step (2,000 decisions imported,
         model refitted over the queue) is not a cycle: 591 CPU-s and about 7.6 GB resident (ps).
    commands: nice -n 10 .venv/bin/python bench/growth.py --sizes 200000 --keep /work/g200k --reuse
              nice -n 10 .venv/bin/python bench/growth.py --sizes 50000 --keep /work/g50k --reuse
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REVIEW_TOML = '''id = "growth"
title = "Synthetic review for the growth benchmark"

[sources.pubmed]
query = "synthetic[tiab]"
earliest_date = 2000-01-01

[sources.ctgov]
condition = "synthetic"
earliest_date = 2000-01-01

[screening]
reviewers = 1
include_publication_types = ["Randomized Controlled Trial", "Clinical Trial"]
exclude_publication_types = ["Review", "Systematic Review", "Meta-Analysis"]
include_keywords = ["pain", "placebo", "randomized", "randomised"]
exclude_keywords = ["guillain-barre", "kawasaki"]
out_of_scope_animal = true
min_decisions_to_train = 6

[screening.model]
name = "tfidf-svm"
seed = 0

[[outcomes]]
id = "responders"
label = "Responders"
kind = "binary"

[[analyses]]
id = "responders-or-mh"
outcome = "responders"
measure = "OR"
method = "MH"
'''

DOCTYPE = ('<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
           '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n<PubmedArticleSet>\n')
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
PUB_TYPES = [("D016428", "Journal Article"), ("D016449", "Randomized Controlled Trial"), ("D016430", "Clinical Trial"),
             ("D016454", "Review"), ("D016422", "Letter"), ("D017418", "Meta-Analysis")]
MESH = ["Humans", "Animals", "Pain Measurement", "Immunoglobulins, Intravenous", "Neuralgia", "Double-Blind Method",
        "Treatment Outcome", "Polyneuropathies", "Adult", "Aged", "Female", "Male", "Rats", "Chronic Pain"]
STATUSES = ["RECRUITING", "ACTIVE_NOT_RECRUITING", "COMPLETED", "TERMINATED", "WITHDRAWN"]
NIGHTLY_NEW, NIGHTLY_CHANGED = 150, 50
HEAVY_MODULES = ("scipy", "scipy.stats", "sklearn", "matplotlib")
FIRST_PMID = 20_000_000
FIRST_NCT = 1_000_000


class Corpus:
    """Deterministic synthetic words, surnames and texts (Zipf-distributed like real abstracts)."""

    def __init__(self, seed: int = 7, n_words: int = 12_000, n_surnames: int = 4_000):
        self.rng = np.random.default_rng(seed)
        syll = ["ka", "lo", "mi", "ne", "tru", "pha", "zo", "ri", "sta", "ben", "cor", "dex", "fil", "gan", "hy", "im",
                "jur", "kel", "lum", "mor", "nov", "ost", "pel", "qui", "ros", "sul", "tan", "urb", "vel", "xan"]
        real = ["pain", "placebo", "randomized", "randomised", "trial", "patients", "neuropathy", "immunoglobulin",
                "treatment", "efficacy", "safety", "dose", "weeks", "outcome", "primary", "secondary", "study",
                "group", "controlled", "double", "blind", "chronic", "intravenous", "response", "score", "baseline"]
        words = set(real)
        while len(words) < n_words:
            k = int(self.rng.integers(2, 5))
            words.add("".join(syll[int(i)] for i in self.rng.integers(0, len(syll), k)))
        self.words = np.array(sorted(words))
        w = 1.0 / np.arange(1, len(self.words) + 1) ** 1.05
        self.p = w / w.sum()
        self.rng.shuffle(self.words)
        names = set()
        while len(names) < n_surnames:
            k = int(self.rng.integers(2, 4))
            names.add("".join(syll[int(i)] for i in self.rng.integers(0, len(syll), k)).capitalize())
        self.surnames = np.array(sorted(names))
        ws = 1.0 / np.arange(1, len(self.surnames) + 1) ** 0.9
        self.ps = ws / ws.sum()

    def text(self, n: int) -> str:
        return " ".join(self.rng.choice(self.words, n, p=self.p))

    def surname(self) -> str:
        return str(self.rng.choice(self.surnames, p=self.ps))

    def initials(self) -> str:
        return "".join(chr(65 + int(i)) for i in self.rng.integers(0, 26, int(self.rng.integers(1, 3))))


def _pub_xml(p: dict) -> str:
    authors = "".join(f'<Author ValidYN="Y"><LastName>{escape(s)}</LastName><ForeName>{i}</ForeName><Initials>{i}</Initials>'
                      f'</Author>' for s, i in p["authors"])
    abstract = "".join(f'<AbstractText Label="{lab}" NlmCategory="{lab}">{escape(t)}</AbstractText>'
                       for lab, t in p["abstract"])
    bank = ""
    if p.get("nct"):
        bank = ('<DataBankList CompleteYN="Y"><DataBank><DataBankName>ClinicalTrials.gov</DataBankName><AccessionNumberList>'
                f'<AccessionNumber>{p["nct"]}</AccessionNumber></AccessionNumberList></DataBank></DataBankList>')
    types = "".join(f'<PublicationType UI="{ui}">{name}</PublicationType>' for ui, name in p["types"])
    mesh = "".join(f'<MeshHeading><DescriptorName UI="D0000{k:02d}" MajorTopicYN="N">{escape(m)}</DescriptorName></MeshHeading>'
                   for k, m in enumerate(p["mesh"]))
    doi = f'<ELocationID EIdType="doi" ValidYN="Y">{p["doi"]}</ELocationID>' if p.get("doi") else ""
    ids = f'<ArticleId IdType="pubmed">{p["pmid"]}</ArticleId>' + (f'<ArticleId IdType="doi">{p["doi"]}</ArticleId>'
                                                                    if p.get("doi") else "")
    y, m = p["year"], p["month"]
    return (f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="{p["version"]}">{p["pmid"]}</PMID>'
            f'<DateRevised><Year>{y + 1}</Year><Month>0{1 + p["version"] % 9}</Month><Day>01</Day></DateRevised>'
            f'<Article PubModel="Print"><Journal><ISSN IssnType="Electronic">1234-5678</ISSN><JournalIssue CitedMedium="Internet">'
            f'<Volume>{p["pmid"] % 90 + 1}</Volume><Issue>{m}</Issue><PubDate><Year>{y}</Year><Month>{MONTHS[m - 1]}</Month></PubDate>'
            f'</JournalIssue><Title>{escape(p["journal"])}</Title><ISOAbbreviation>{escape(p["journal"][:12])}</ISOAbbreviation></Journal>'
            f'<ArticleTitle>{escape(p["title"])}</ArticleTitle><Pagination><MedlinePgn>{p["pmid"] % 900 + 1}-{p["pmid"] % 900 + 9}'
            f'</MedlinePgn></Pagination>{doi}<Abstract>{abstract}</Abstract><AuthorList CompleteYN="Y">{authors}</AuthorList>'
            f'<Language>eng</Language>{bank}<PublicationTypeList>{types}</PublicationTypeList></Article>'
            f'<MedlineJournalInfo><Country>United States</Country><MedlineTA>{escape(p["journal"][:12])}</MedlineTA></MedlineJournalInfo>'
            f'<MeshHeadingList>{mesh}</MeshHeadingList></MedlineCitation><PubmedData><PublicationStatus>ppublish</PublicationStatus>'
            f'<ArticleIdList>{ids}</ArticleIdList></PubmedData></PubmedArticle>\n')


def _reg_json(r: dict) -> dict:
    refs = [{"pmid": str(x), "type": "RESULT", "citation": "Result publication."} for x in r["refs"]]
    return {
        "protocolSection": {
            "identificationModule": {"nctId": r["nct"], "orgStudyIdInfo": {"id": f"ORG-{r['nct'][-5:]}"},
                                     "organization": {"fullName": "Example University Hospital", "class": "OTHER"},
                                     "briefTitle": r["brief"], "officialTitle": r["title"]},
            "statusModule": {"statusVerifiedDate": f"{r['year']}-05", "overallStatus": r["status"],
                             "startDateStruct": {"date": f"{r['year'] - 2}-02"},
                             "studyFirstPostDateStruct": {"date": f"{r['year'] - 2}-01-15", "type": "ACTUAL"},
                             "lastUpdatePostDateStruct": {"date": f"{r['year']}-05-{10 + r['version']:02d}", "type": "ACTUAL"}},
            "sponsorCollaboratorsModule": {"leadSponsor": {"name": "Example University Hospital", "class": "OTHER"}},
            "descriptionModule": {"briefSummary": r["summary"]},
            "conditionsModule": {"conditions": ["Neuropathic Pain"], "keywords": ["pain"]},
            "designModule": {"studyType": "INTERVENTIONAL", "phases": ["PHASE2"],
                             "designInfo": {"allocation": "RANDOMIZED", "maskingInfo": {"masking": "QUADRUPLE"}},
                             "enrollmentInfo": {"count": r["n"], "type": "ACTUAL"}},
            "armsInterventionsModule": {"interventions": [{"type": "BIOLOGICAL", "name": "Immunoglobulin"},
                                                          {"type": "DRUG", "name": "Placebo"}]},
            "referencesModule": {"references": refs},
        },
        "hasResults": False,
    }


class Review:
    """The synthetic review's records; `nightly()` adds new ones and changes some existing ones."""

    def __init__(self, n: int, seed: int = 7):
        self.c = Corpus(seed)
        self.rng = self.c.rng
        self.pubs: dict[int, dict] = {}
        self.regs: dict[str, dict] = {}
        self.next_pmid = FIRST_PMID
        self.next_nct = FIRST_NCT
        n_reg = n // 11
        for _ in range(n_reg):
            self._trial()
        while len(self.pubs) + len(self.regs) < n:
            self._pub()

    def _new_pmid(self) -> int:
        self.next_pmid += int(self.rng.integers(1, 40))
        return self.next_pmid

    def _pub(self, *, title=None, surname=None, year=None, nct=None, doi=None, types=None) -> dict:
        rng, c = self.rng, self.c
        pmid = self._new_pmid()
        authors = [(surname or c.surname(), c.initials())] + [(c.surname(), c.initials())
                                                               for _ in range(int(rng.integers(1, 7)))]
        kind = rng.random()
        types = types or ([PUB_TYPES[0], PUB_TYPES[1]] if kind < 0.25 else [PUB_TYPES[0], PUB_TYPES[2]] if kind < 0.35
                          else [PUB_TYPES[3]] if kind < 0.5 else [PUB_TYPES[4]] if kind < 0.53 else [PUB_TYPES[0]])
        abstract = [(lab, c.text(int(rng.integers(25, 60)))) for lab in ("BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS")]
        if nct and rng.random() < 0.15:  # the trial id only in the abstract, not in DataBankList
            abstract[0] = ("BACKGROUND", abstract[0][1] + f" (registered as {nct})")
            nct = None
        p = {"pmid": pmid, "version": 1, "title": title or c.text(int(rng.integers(9, 16))).capitalize(),
             "authors": authors, "year": year or int(rng.integers(2000, 2025)), "month": int(rng.integers(1, 13)),
             "journal": f"Journal of {c.text(2).title()}", "abstract": abstract, "nct": nct,
             "doi": doi or (f"10.{1000 + pmid % 8000}/j.{pmid}" if rng.random() < 0.8 else None), "types": types,
             "mesh": list(rng.choice(MESH, int(rng.integers(2, 7)), replace=False))}
        self.pubs[pmid] = p
        return p

    def _trial(self) -> None:
        rng, c = self.rng, self.c
        nct = f"NCT{self.next_nct:08d}"
        self.next_nct += int(rng.integers(1, 30))
        title = c.text(int(rng.integers(10, 16))).capitalize()
        year = int(rng.integers(2002, 2024))
        reg = {"nct": nct, "title": title, "brief": " ".join(title.split()[:6]), "year": year, "version": 1,
               "status": str(rng.choice(STATUSES)), "summary": c.text(int(rng.integers(30, 80))),
               "n": int(rng.integers(20, 400)), "refs": []}
        self.regs[nct] = reg
        n_pubs = int(rng.choice([0, 1, 1, 2, 3]))
        surname = c.surname()
        for k in range(n_pubs):
            how = rng.random()
            if k == 0:
                # primary report: NCT id (60%), listed by the registry only (20%), or the registry's own title (20%)
                p = self._pub(title=title if how >= 0.8 else None, surname=surname, year=year,
                              nct=nct if how < 0.6 else None, types=[PUB_TYPES[0], PUB_TYPES[1]])
                if 0.6 <= how < 0.8:
                    reg["refs"].append(p["pmid"])
                first = p
            elif how < 0.5:  # conference abstract / full paper: the same title a year apart, no trial id
                p = self._pub(title=first["title"].rstrip(".") + ".", surname=surname, year=first["year"] + 1)
            elif how < 0.6:  # a second record with the same DOI (erratum-like duplicate)
                self._pub(title=c.text(10).capitalize(), surname=c.surname(), doi=first["doi"] or f"10.9/dup.{first['pmid']}")
                if first["doi"] is None:
                    first["doi"] = f"10.9/dup.{first['pmid']}"
            else:  # secondary analysis naming the trial
                self._pub(surname=c.surname(), year=year + int(rng.integers(1, 4)), nct=nct)

    def nightly(self) -> tuple[list[dict], list[dict]]:
        """New and changed records of one night: (PubMed records, registry records)."""
        rng = self.rng
        pubs, regs = [], []
        n_new_regs = NIGHTLY_NEW // 11
        for _ in range(n_new_regs):
            before = set(self.pubs)
            self._trial()
            regs.append(self.regs[max(self.regs)])
            pubs += [self.pubs[p] for p in sorted(set(self.pubs) - before)]
        existing = sorted(self.regs)
        while len(pubs) + len(regs) < NIGHTLY_NEW:
            how = rng.random()
            if how < 0.15:  # a new report of a known trial, by its NCT id
                pubs.append(self._pub(nct=str(rng.choice(existing)), year=2025))
            elif how < 0.25:  # the full paper of an earlier conference abstract
                old = self.pubs[int(rng.choice(list(self.pubs)))]
                pubs.append(self._pub(title=old["title"], surname=old["authors"][0][0], year=old["year"] + 1))
            else:
                pubs.append(self._pub(year=2025))
        new = {p["pmid"] for p in pubs}
        old_pmids = [p for p in self.pubs if p not in new]
        for pmid in rng.choice(old_pmids, NIGHTLY_CHANGED - 5, replace=False):
            p = self.pubs[int(pmid)]
            p["version"] += 1
            p["abstract"] = p["abstract"][:-1] + [("CONCLUSIONS", self.c.text(30))]
            pubs.append(p)
        for nct in rng.choice([r for r in existing if self.regs[r] not in regs], 5, replace=False):
            r = self.regs[str(nct)]
            r["version"] += 1
            r["status"] = "COMPLETED" if r["status"] != "COMPLETED" else "TERMINATED"
            regs.append(r)
        return pubs, regs


def write_snapshot(folder: Path, pubs: list[dict], regs: list[dict]) -> None:
    """A replay folder: pubmed/efetch-NNN.xml (10,000 articles each) and ctgov/page-NNN.json (1,000 studies each)."""
    (folder / "pubmed").mkdir(parents=True)
    (folder / "ctgov").mkdir(parents=True)
    for k in range(0, max(len(pubs), 1), 10_000):
        with open(folder / "pubmed" / f"efetch-{k // 10_000 + 1:03d}.xml", "w", encoding="utf-8") as f:
            f.write(DOCTYPE)
            for p in pubs[k:k + 10_000]:
                f.write(_pub_xml(p))
            f.write("</PubmedArticleSet>\n")
    for k in range(0, max(len(regs), 1), 1_000):
        page = {"studies": [_reg_json(r) for r in regs[k:k + 1_000]], "totalCount": len(regs)}
        (folder / "ctgov" / f"page-{k // 1_000 + 1:03d}.json").write_text(json.dumps(page))


def prepare(root: Path, n: int) -> dict:
    """Write the review folder, the first-load and nightly snapshots and the decisions file; return paths."""
    review = Review(n)
    (root / "review").mkdir(parents=True)
    (root / "review" / "review.toml").write_text(REVIEW_TOML)
    write_snapshot(root / "first", [review.pubs[k] for k in sorted(review.pubs)], [review.regs[k] for k in sorted(review.regs)])
    rng = np.random.default_rng(11)
    pmids = sorted(review.pubs)
    chosen = rng.choice(pmids, max(40, n // 100), replace=False)
    lines = ["record_id,reviewer,stage,decision,reason,decided_at"]
    for k, pmid in enumerate(sorted(int(x) for x in chosen)):
        rct = any(t[1] == "Randomized Controlled Trial" for t in review.pubs[pmid]["types"])
        lines.append(f"pubmed:{pmid},bench,title_abstract,{'include' if rct and k % 3 else 'exclude'},,2025-01-01")
    (root / "decisions.csv").write_text("\n".join(lines) + "\n")
    pubs, regs = review.nightly()
    write_snapshot(root / "nightly", pubs, regs)
    info = {"review": str(root / "review"), "warehouse": str(root / "wh.duckdb"), "out": str(root / "out"),
            "n_pub": len(review.pubs), "n_reg": len(review.regs)}
    (root / "info.json").write_text(json.dumps(info))  # written last: its presence marks a complete folder
    return info


def reuse(root: Path) -> dict | None:
    """The paths of an already generated, complete size folder, with its warehouse and outputs removed."""
    if not (root / "info.json").exists():
        return None
    info = json.loads((root / "info.json").read_text())
    for name in ("wh.duckdb", "wh.duckdb.wal", "wh.duckdb.lock"):
        (root / name).unlink(missing_ok=True)
    # what lives beside the warehouse too: the ranking's kept features and models, DuckDB's spill files
    for name in ("out", "wh.duckdb.features", "wh.duckdb.tmp"):
        shutil.rmtree(root / name, ignore_errors=True)
    return info


# ------------------------------------------------------------------------------------------- one cycle

def run_cycle(review_dir: str, warehouse: str, out_dir: str, snapshot: str, as_of: str) -> dict:
    """One update cycle through the flow's task functions; returns CPU seconds per stage."""
    from prefect.logging import disable_run_logger

    from tasks.analysis import analyze
    from tasks.ctgov import search_ctgov
    from tasks.linking import link_studies
    from tasks.publish import publish
    from tasks.pubmed import search_pubmed
    from tasks.reviews import finish_update, register_review, start_update
    from tasks.screening import flag_candidates
    from tasks.versions import record_version

    when = dt.datetime.fromisoformat(as_of)
    stages: dict[str, float] = {}
    summary: dict = {}

    def cpu() -> float:  # this process (all threads) and the child processes it waited for (publish's file copy)
        c = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + c.ru_utime + c.ru_stime

    rss: dict[str, dict] = {}  # per stage: the process's peak RSS after it and whether the stage raised it

    def timed(name, fn, *args, **kw):
        t, peak0 = cpu(), _peak_mb()
        out = fn(*args, **kw)
        stages[name] = stages.get(name, 0.0) + cpu() - t
        peak = _peak_mb()
        r = rss.setdefault(name, {"peak_mb": 0.0, "raised_mb": 0.0, "current_mb": 0.0})
        r["peak_mb"], r["current_mb"] = peak, _current_mb()
        r["raised_mb"] += peak - peak0
        return out

    with disable_run_logger():
        cfg = timed("search/ingest", register_review.fn, review_dir, warehouse)  # the validated config, as the flow
        rid = cfg.id
        uid = timed("search/ingest", start_update.fn, rid, warehouse, when, "bench")
        summary["pubmed"] = timed("search/ingest", search_pubmed.fn, review_dir, warehouse, uid, when,
                                  str(Path(snapshot) / "pubmed"), cfg=cfg)
        summary["ctgov"] = timed("search/ingest", search_ctgov.fn, review_dir, warehouse, uid, when,
                                 str(Path(snapshot) / "ctgov"), cfg=cfg)
        summary["studies"] = timed("link", link_studies.fn, rid, warehouse)
        summary["queue"] = timed("flag/rank", flag_candidates.fn, review_dir, rid, warehouse, cfg)
        timed("analyse", analyze.fn, review_dir, rid, warehouse, uid, cfg)
        timed("publish", record_version.fn, review_dir, rid, warehouse, uid, when, out_dir, cfg)
        summary["publish"] = timed("publish", publish.fn, review_dir, rid, warehouse, out_dir)
        timed("publish", finish_update.fn, uid, warehouse, "succeeded", {})
    return {"stages": stages, "rss": rss, "snapshot_unchanged": summary["publish"].get("snapshot_unchanged"), "new": summary["pubmed"].get("new", 0) + summary["ctgov"].get("new", 0),
            "changed": summary["pubmed"].get("changed", 0) + summary["ctgov"].get("changed", 0),
            "ranker": summary["queue"].get("ranker"), "studies": summary["studies"].get("studies")}


def _peak_mb() -> float:
    """This process's peak RSS so far (monotonic; Linux reports KiB). Counts DuckDB's buffer pool too."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_mb() -> float:
    """This process's resident set now (what a stage kept after it returned)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return float("nan")


def run_flow(review_dir: str, warehouse: str, out_dir: str, snapshot: str, as_of: str) -> dict:
    """One cycle through the real `update-review` flow (Prefect engine and temporary server included)."""
    from flows.update import update_review

    t = time.process_time()
    update_review(review_dir, warehouse, out_dir, as_of=dt.datetime.fromisoformat(as_of), replay_dir=snapshot)
    return {"stages": {"flow (in-process CPU)": time.process_time() - t}}


def import_decisions(review_dir: str, warehouse: str, path: str) -> dict:
    """Setup between the first load and the nightly (not timed): a reviewer's first decisions, then a re-rank."""
    from warehouse import opened
    from warehouse.screening import import_decisions as _import

    with opened(warehouse) as con:
        return _import(con, "growth", path, now=dt.datetime(2025, 1, 2, tzinfo=dt.timezone.utc))


def child(args: list[str]) -> dict:
    """Run one step in a fresh process; return its result with the process's CPU seconds and peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True,
                         env={**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING"})
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"step {args[0]} failed:\n{out.stderr[-4000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["wall"] = wall
    return result


def _child_main(argv: list[str]) -> None:
    step = argv[0]
    if step == "cycle" and os.environ.get("GROWTH_PROFILE"):
        import cProfile

        prof = cProfile.Profile()
        res = prof.runcall(run_cycle, *argv[1:6])
        target = Path(os.environ["GROWTH_PROFILE"]) / f"{Path(argv[4]).name}-{argv[5][:10]}.prof"
        prof.dump_stats(target)
    elif step == "cycle":
        res = run_cycle(*argv[1:6])
    elif step == "flow":
        res = run_flow(*argv[1:6])
    elif step == "decisions":
        res = {"stages": {}, "imported": import_decisions(*argv[1:4])["added"]}
    elif step == "noop":
        import prefect  # noqa: F401  - the fixed cost of importing the stack, for reference
        import tasks.linking  # noqa: F401
        import tasks.screening  # noqa: F401
        res = {"stages": {}}
    else:
        raise SystemExit(f"unknown step {step}")
    res["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # this process's peak (Linux: KiB)
    # the heavy modules the step loaded (a quiet nightly should need none: tests/test_cycle_imports.py)
    res["heavy_loaded"] = sorted(m for m in HEAVY_MODULES if m in sys.modules)
    print(json.dumps(res, default=str))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    ap.add_argument("--flow", action="store_true", help="also time the nightly once through the real Prefect flow")
    ap.add_argument("--keep", help="keep the generated reviews and warehouses under this folder")
    ap.add_argument("--reuse", action="store_true", help="with --keep: reuse a size folder generated by an earlier run "
                                                          "(skips generation; only its warehouse and outputs are removed)")
    ap.add_argument("--only-first", action="store_true", help="run only the first load (the memory-heavy cycle)")
    ap.add_argument("--profile", help="write a cProfile file per cycle into this folder (slows the cycles down; "
                                      "read with python -m pstats)")
    args = ap.parse_args()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="growth-"))
    base.mkdir(parents=True, exist_ok=True)
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        os.environ["GROWTH_PROFILE"] = str(Path(args.profile).resolve())
    env_prefect = base / "prefect-home"
    os.environ.setdefault("PREFECT_HOME", str(env_prefect))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    print(f"growth benchmark — python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores; "
          f"work in {base}")
    imports = child(["noop"])
    print(f"fixed cost of a fresh process importing prefect + tasks: {imports['cpu']:.2f} CPU-s "
          f"(included in every process figure below)", flush=True)
    rows = []
    for n in args.sizes:
        root = base / f"n{n}"
        t = time.perf_counter()
        info = reuse(root) if args.reuse else None
        if info is not None:
            print(f"\nN={n}: reusing {info['n_pub']} PubMed + {info['n_reg']} CT.gov records in {root} "
                  "(warehouse and outputs removed)", flush=True)
        else:
            if root.exists():
                shutil.rmtree(root)
            info = prepare(root, n)
            print(f"\nN={n}: {info['n_pub']} PubMed + {info['n_reg']} CT.gov records written in "
                  f"{time.perf_counter() - t:.0f} s", flush=True)
        common = [info["review"], info["warehouse"], info["out"]]
        def show(kind: str, r: dict) -> None:  # printed as soon as the cycle ends (a 200k run takes long)
            r["in_cycle"] = sum(r["stages"].values())
            rows.append((n, kind, r))
            st = "  ".join(f"{k} {v:.2f}" for k, v in r["stages"].items())
            print(f"  {kind:<9} cpu {r['cpu']:7.2f} s (in the cycle {r['in_cycle']:6.2f}, process start-up and imports "
                  f"{r['cpu'] - r['in_cycle']:4.2f})  wall {r['wall']:7.2f} s  peak RSS {r['rss_mb']:6.0f} MB  "
                  f"new {r['new']} changed {r['changed']}  [{st}]  snapshot "
                  f"{'kept (unchanged)' if r.get('snapshot_unchanged') else 'published'}  ranker: {r['ranker']}", flush=True)
            print("            peak RSS after each stage (MB; + = how much the stage raised the peak, now = resident "
                  "when it returned): " + "  ".join(
                      f"{k} {v['peak_mb']:.0f} (+{v['raised_mb']:.0f}, now {v['current_mb']:.0f})"
                      for k, v in r.get("rss", {}).items()), flush=True)
            if r.get("rss"):
                # the cycle's peak was reached in the last stage that raised it
                top = [k for k, v in r["rss"].items() if v["raised_mb"] > 0][-1:] or ["(before the first stage)"]
                print(f"            the cycle's peak RSS was reached in: {top[0]}", flush=True)

        show("first", child(["cycle", *common, str(root / "first"), "2025-01-01T00:00:00+00:00"]))
        if args.only_first:
            continue
        dec = child(["decisions", info["review"], info["warehouse"], str(root / "decisions.csv")])
        print(f"  setup: {dec['imported']} screening decisions imported and queue re-ranked: {dec['cpu']:.1f} CPU-s, "
              f"peak RSS {dec['rss_mb']:.0f} MB (not part of any cycle)", flush=True)
        show("nightly", child(["cycle", *common, str(root / "nightly"), "2025-01-02T00:00:00+00:00"]))
        show("no-change", child(["cycle", *common, str(root / "nightly"), "2025-01-03T00:00:00+00:00"]))
        if args.flow and n == args.sizes[-1]:
            flow = child(["flow", *common, str(root / "nightly"), "2025-01-04T00:00:00+00:00"])
            print(f"  nightly through the real update-review flow (no-change replay, Prefect engine + temporary server): "
                  f"cpu {flow['cpu']:.2f} s, wall {flow['wall']:.2f} s, peak RSS {flow['rss_mb']:.0f} MB")
    print("\n| N | cycle | CPU s (process) | CPU s (in the cycle) | peak RSS MB | search/ingest | link | flag/rank | analyse "
          "| publish | exponent vs previous N (process / in the cycle) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    prev: dict[str, tuple[int, float, float]] = {}
    exponents: dict[str, tuple[float, float]] = {}
    for n, kind, r in rows:
        exp = ""
        if kind in prev:
            n0, c0, i0 = prev[kind]
            exponents[kind] = (math.log(r["cpu"] / c0) / math.log(n / n0), math.log(r["in_cycle"] / i0) / math.log(n / n0))
            exp = f"{exponents[kind][0]:.2f} / {exponents[kind][1]:.2f}"
        prev[kind] = (n, r["cpu"], r["in_cycle"])
        s = r["stages"]
        print(f"| {n} | {kind} | {r['cpu']:.2f} | {r['in_cycle']:.2f} | {r['rss_mb']:.0f} | " + " | ".join(
            f"{s.get(k, 0):.2f}" for k in ("search/ingest", "link", "flag/rank", "analyse", "publish")) + f" | {exp} |")
    # the targets (#15), each beside what this run measured
    by = {(n, kind): r for n, kind, r in rows}
    print("\ntargets (issue #15):")

    def target(text: str, value: float | None, limit: float, unit: str) -> None:
        if value is None:
            print(f"  {text}: not measured (size not run)")
        else:
            print(f"  {text}: {value:.2f} {unit} (target < {limit} {unit}) {'met' if value < limit else 'NOT met'}")

    for kind in ("nightly", "no-change"):
        if kind in exponents:
            print(f"  {kind} growth exponent: {exponents[kind][0]:.2f} (process) / {exponents[kind][1]:.2f} (in the cycle) "
                  f"(target <= 0.2) {'met' if exponents[kind][0] <= 0.2 else 'met in the cycle' if exponents[kind][1] <= 0.2 else 'NOT met'}")
    for kind, limit in (("nightly", 15), ("no-change", 3)):
        r = by.get((50_000, kind))
        target(f"{kind} at 50k, process CPU", r and r["cpu"], limit, "CPU-s")
        target(f"{kind} at 50k, in the cycle", r and r["in_cycle"], limit, "CPU-s")
    r = by.get((200_000, "first"))
    target("first load at 200k, wall (inflated when other work loads the machine)", r and r["wall"], 600, "s")
    target("first load at 200k, process CPU", r and r["cpu"], 600, "CPU-s")
    target("peak RSS at 200k (any cycle)", max((by[(200_000, k)]["rss_mb"] for k in ("first", "nightly", "no-change")
                                                 if (200_000, k) in by), default=None), 2048, "MB")
    print(f"\nreproduce: .venv/bin/python bench/growth.py --sizes {' '.join(map(str, args.sizes))}"
          + (" --flow" if args.flow else ""))
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child_main(sys.argv[2:])
    else:
        main()
