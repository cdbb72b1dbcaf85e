"""Incremental linking gives exactly what relinking the whole review gives, cycle after cycle.

Two real warehouses receive the same records through the real ingest path, cycle by cycle; one links
incrementally (`relink`), the other relinks every record from scratch each time (`relink(full=True)`, the
algorithm as it was before linking became incremental). After every cycle every row of studies, study_links,
study_link_evidence, study_link_conflicts and study_aliases must be equal. The cycles cover a first load, new
records, changed records, records that now join an existing study by NCT id / DOI / registry-listed PMID /
near-identical title / registry title, a record tying two studies together, people's link / unlink / merge
decisions, a deletion (PubMed DeleteCitation) and a record leaving the review; then random cycles of all of it.
"""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from livingmeta.records import Record
from warehouse import opened
from warehouse.ingest import Fetched, finish_search_run, start_search_run
from warehouse.linking import merge_studies, record_link_decision, relink

REVIEW = "inc"
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
TABLES = {
    "studies": "SELECT study_id, label, created_at FROM studies WHERE review_id = ? ORDER BY ALL",
    "study_links": "SELECT record_id, study_id, method, score, linked_at FROM study_links WHERE review_id = ? ORDER BY ALL",
    "study_link_evidence": "SELECT record_id, evidence FROM study_link_evidence WHERE review_id = ? ORDER BY ALL",
    "study_link_conflicts": "SELECT record_id, other_record_id, method, reason, found_at FROM study_link_conflicts "
                            "WHERE review_id = ? ORDER BY ALL",
    "study_aliases": "SELECT alias, study_id, reason, created_at FROM study_aliases WHERE review_id = ? ORDER BY ALL",
}


def pub(pmid, title, author="Geerts M", year=2021, doi=None, ncts=(), abstract="", deleted=False):
    return Record(source="pubmed", source_id=str(pmid), title=title, authors=[author, "Other B"], year=year, doi=doi,
                  registry_ids=list(ncts), abstract=abstract, publication_types=["Journal Article"], deleted=deleted)


def reg(nct, title, brief="", refs=(), year=2019):
    extra = {"brief_title": brief or None, "references": [{"pmid": str(p), "type": "RESULT"} for p in refs]}
    return Record(source="ctgov", source_id=nct, title=title, year=year, registry_ids=[nct], extra=extra,
                  publication_types=["INTERVENTIONAL"])


class Twin:
    """Two warehouses fed the same records and decisions: `inc` links incrementally, `full` from scratch."""

    def __init__(self, tmp_path):
        self.paths = {"inc": tmp_path / "inc.duckdb", "full": tmp_path / "full.duckdb"}
        self.now = T0

    def store(self, *records: Record) -> None:
        for path in self.paths.values():
            with opened(path) as con:
                for source in ("pubmed", "ctgov"):
                    batch = [Fetched(r, json.dumps(r.to_dict())) for r in records if r.source == source]
                    if batch:
                        run = start_search_run(con, review_id=REVIEW, source=source, query="q", mode="replay",
                                               window_start=None, window_end=self.now, now=self.now)
                        finish_search_run(con, run_id=run, review_id=REVIEW, source=source, fetched=batch,
                                          watermark=self.now, now=self.now)

    def decide(self, fn) -> None:
        """Apply a person's decision (fn(con, now)) to both warehouses."""
        for path in self.paths.values():
            with opened(path) as con:
                fn(con, self.now)

    def cycle(self) -> dict:
        """Link both warehouses at one instant and assert that every linking table is the same."""
        self.now += dt.timedelta(days=1)
        out = {}
        for name, path in self.paths.items():
            with opened(path) as con:
                out[name] = relink(con, REVIEW, self.now, full=(name == "full"))
        tables = {}
        for name, path in self.paths.items():
            with opened(path) as con:
                tables[name] = {t: con.execute(q, [REVIEW]).fetchall() for t, q in TABLES.items()}
        for t in TABLES:
            assert tables["inc"][t] == tables["full"][t], f"{t} differs after the cycle of {self.now:%Y-%m-%d}"
        same = {k for k in out["inc"] if k not in ("relinked", "mode")}
        assert {k: out["inc"][k] for k in same} == {k: out["full"][k] for k in same}
        return out["inc"]

    def study(self, record_id: str) -> str:
        with opened(self.paths["inc"]) as con:
            return con.execute("SELECT study_id FROM study_links WHERE review_id = ? AND record_id = ?",
                               [REVIEW, record_id]).fetchone()[0]


TITLE = "Intravenous immunoglobulin in painful idiopathic small fibre neuropathy: a randomised placebo-controlled trial"
TITLE2 = "Subcutaneous immunoglobulin for chronic inflammatory demyelinating polyneuropathy maintenance treatment"


def test_scripted_cycles_equal_full_relinking(tmp_path):
    tw = Twin(tmp_path)
    # first load: a trial with its publication (NCT), a conference abstract of it (title), unrelated studies
    tw.store(reg("NCT01000001", TITLE, brief="IVIG in small fibre neuropathy", refs=[30000005]),
             pub(30000001, TITLE, ncts=["NCT01000001"], doi="10.1000/aaa"),
             pub(30000002, TITLE.replace("trial", "trial."), year=2020),
             reg("NCT01000002", TITLE2), pub(30000003, "Pregabalin versus duloxetine for diabetic neuropathic pain in adults",
                                             author="Tesfaye S", doi="10.1000/bbb"),
             pub(30000004, "A narrative review of immunoglobulin use in neurology clinics", author="Zis P"),
             pub(30000005, "Immunoglobulin outcomes reported by registry listing only here", author="Listed L"))
    first = tw.cycle()
    assert first["mode"] == "full"
    assert tw.study("pubmed:30000002") == tw.study("ctgov:NCT01000001")
    assert tw.cycle()["relinked"] == 0  # nothing new: nothing relinked

    # new records joining existing studies: by NCT id in the abstract, by DOI, by near-identical title a year on,
    # by the registry's title, and one naming two trials (a conflict people must see)
    tw.store(pub(30000010, "Long-term follow-up of an immunoglobulin trial in neuropathy", author="Other X",
                 abstract="Extension of NCT01000002."),
             pub(30000011, "Erratum-like duplicate record of the pregabalin comparison paper", author="Tesfaye S",
                 doi="10.1000/BBB"),
             pub(30000012, "Pregabalin versus duloxetine for diabetic neuropathic pain in adults!", author="Tesfaye S",
                 year=2022),
             pub(30000013, TITLE2, author="Van den Bergh P", year=2022),
             pub(30000014, "A pooled report of two immunoglobulin trials in painful neuropathies", author="Pool Q",
                 ncts=["NCT01000001", "NCT01000002"]))
    out = tw.cycle()
    assert out["mode"] == "incremental" and 0 < out["relinked"] < out["records"]
    assert tw.study("pubmed:30000011") == tw.study("pubmed:30000003") == tw.study("pubmed:30000012")
    assert tw.study("pubmed:30000013") == tw.study("ctgov:NCT01000002")

    # changed records: a publication now names the trial (ties two studies: one is merged), another loses its DOI
    tw.store(pub(30000004, "A narrative review of immunoglobulin use in neurology clinics", author="Zis P",
                 ncts=["NCT01000002"]),
             pub(30000003, "Pregabalin versus duloxetine for diabetic neuropathic pain in adults", author="Tesfaye S"))
    tw.cycle()
    # a record that ties two existing studies together (DOI of one, NCT of the other): one study id disappears
    tw.store(pub(30000020, "Combined immunoglobulin and pregabalin evidence", author="Bridge B", doi="10.1000/bbb",
                 ncts=["NCT01000001"]))
    out = tw.cycle()

    # people: link a record to a study, split one off, merge two studies
    tw.decide(lambda con, now: record_link_decision(con, REVIEW, "pubmed:30000010", "link",
                                                    tw.study("pubmed:30000001"), "ana", now))
    tw.cycle()
    assert tw.study("pubmed:30000010") == tw.study("pubmed:30000001")
    tw.decide(lambda con, now: record_link_decision(con, REVIEW, "pubmed:30000002", "unlink",
                                                    tw.study("pubmed:30000002"), "ana", now))
    tw.cycle()
    assert tw.study("pubmed:30000002") != tw.study("pubmed:30000001")
    keep, other = tw.study("pubmed:30000004"), tw.study("pubmed:30000005")
    tw.decide(lambda con, now: merge_studies(con, REVIEW, keep, other, "ana", now))
    tw.cycle()
    assert tw.study("pubmed:30000005") == keep
    # a person's decision still wins after later records arrive
    tw.store(pub(30000030, TITLE.replace("trial", "trial!!"), year=2021, author="Geerts M"))
    tw.cycle()
    assert tw.study("pubmed:30000002") != tw.study("pubmed:30000001")
    assert tw.study("pubmed:30000010") == tw.study("pubmed:30000001")

    # a deletion (DeleteCitation keeps the record, marked) and a record that leaves the review
    tw.store(pub(30000012, "Pregabalin versus duloxetine for diabetic neuropathic pain in adults!", author="Tesfaye S",
                 year=2022, deleted=True))
    tw.cycle()
    for path in tw.paths.values():
        with opened(path) as con:
            con.execute("DELETE FROM review_records WHERE review_id = ? AND record_id = 'pubmed:30000011'", [REVIEW])
    out = tw.cycle()
    assert out["records"] == out["relinked"] + (out["records"] - out["relinked"])  # summary counts stay whole-review
    assert tw.cycle()["relinked"] == 0


SURNAMES = ["Geerts M", "Tesfaye S", "Zis P", "Van den Bergh P", "Li X", "Wang Y"]
WORDS = ("immunoglobulin intravenous subcutaneous neuropathy painful small fibre diabetic trial randomised placebo "
         "controlled chronic inflammatory demyelinating maintenance pregabalin duloxetine adults children outcome "
         "efficacy safety dose weeks responders pain relief").split()


def _title(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 9)))


@pytest.mark.parametrize("seed", [1, 2])
def test_random_cycles_equal_full_relinking(tmp_path, seed):
    rng = random.Random(seed)
    tw = Twin(tmp_path)
    pubs: dict[int, Record] = {}
    regs: dict[str, Record] = {}
    next_pmid = [40000000]

    def new_reg() -> Record:
        nct = f"NCT0{2000000 + len(regs) * 7:07d}"
        r = reg(nct, _title(rng), brief=_title(rng) if rng.random() < 0.5 else "",
                refs=rng.sample(sorted(pubs), k=min(len(pubs), rng.randint(0, 2))) if pubs else ())
        regs[nct] = r
        return r

    def new_pub() -> Record:
        next_pmid[0] += rng.randint(1, 5)
        how = rng.random()
        base = rng.choice(list(pubs.values())) if pubs and how < 0.35 else None
        title = (base.title + rng.choice(["", ".", "!"])) if base is not None else (
            rng.choice(list(regs.values())).title if regs and how < 0.45 else _title(rng))
        ncts = rng.sample(sorted(regs), k=rng.choice([0, 0, 1, 1, 2])) if regs else []
        doi = base.doi if base is not None and rng.random() < 0.3 else (
            f"10.9000/x{rng.randint(1, 40)}" if rng.random() < 0.5 else None)
        p = pub(next_pmid[0], title, author=(base.authors[0] if base is not None else rng.choice(SURNAMES)),
                year=(base.year or 2020) + rng.choice([0, 1]) if base is not None else rng.randint(2018, 2023),
                doi=doi, ncts=ncts)
        pubs[int(p.source_id)] = p
        return p

    def change(r: Record) -> Record:
        d = r.to_dict()
        what = rng.choice(["title", "ncts", "doi", "author", "deleted", "refs"])
        if what == "title":
            d["title"] = _title(rng)
        elif what == "ncts" and regs:
            d["registry_ids"] = rng.sample(sorted(regs), k=rng.choice([0, 1])) if r.source == "pubmed" else d["registry_ids"]
        elif what == "doi" and r.source == "pubmed":
            d["doi"] = None if d["doi"] else f"10.9000/x{rng.randint(1, 40)}"
        elif what == "author" and r.source == "pubmed":
            d["authors"] = [rng.choice(SURNAMES)]
        elif what == "deleted":
            d["deleted"] = not d["deleted"]
        elif what == "refs" and r.source == "ctgov" and pubs:
            d["extra"] = {**d["extra"], "references": [{"pmid": str(rng.choice(sorted(pubs))), "type": "RESULT"}]}
        d["abstract"] = (d.get("abstract") or "") + " changed"
        out = Record.from_dict(d)
        (pubs if r.source == "pubmed" else regs)[int(r.source_id) if r.source == "pubmed" else r.source_id] = out
        return out

    tw.store(*[new_reg() for _ in range(6)], *[new_pub() for _ in range(40)])
    tw.cycle()
    for _ in range(12):
        batch = [new_pub() for _ in range(rng.randint(0, 6))] + ([new_reg()] if rng.random() < 0.4 else [])
        batch += [change(rng.choice(list(pubs.values()) + list(regs.values()))) for _ in range(rng.randint(0, 3))]
        if batch:
            tw.store(*batch)
        for _ in range(rng.choice([0, 0, 1, 2])):
            with opened(tw.paths["inc"]) as con:
                links = con.execute("SELECT record_id, study_id FROM study_links WHERE review_id = ? ORDER BY ALL",
                                    [REVIEW]).fetchall()
            rid, sid = rng.choice(links)
            _, target = rng.choice(links)
            kind = rng.choice(["link", "unlink", "merge"])
            if kind == "merge" and target != sid:
                tw.decide(lambda con, now: merge_studies(con, REVIEW, target, sid, "ana", now))
            elif kind == "link":
                tw.decide(lambda con, now: record_link_decision(con, REVIEW, rid, "link", target, "ana", now))
            else:
                tw.decide(lambda con, now: record_link_decision(con, REVIEW, rid, "unlink", sid, "ana", now))
        out = tw.cycle()
        assert out["mode"] == "incremental"
