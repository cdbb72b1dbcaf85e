"""Linking reads a publication's abstract only where it may name a trial, and finds the same trial ids (issue 15).

`load_link_records` used to read every abstract of the review to look for trial ids in "title abstract"; the
query now returns it only when that text contains "nct", "rctn" or "eudract" in some case. The ids found must be
the ones `find_registry_ids` finds in the whole text, for every way an id can be written (any case, the Unicode
letters Python's case-insensitive matching accepts, an id split between title and abstract), and an abstract that
names no trial must not be read at all.
"""

from __future__ import annotations

import datetime as dt
import json

from livingmeta.records import Record, find_registry_ids
from warehouse import connect
from warehouse.ingest import Fetched, finish_search_run, start_search_run
from warehouse.linking import _rows, load_link_records
from warehouse.db import query

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)

TEXTS = [  # (title, abstract)
    ("A randomised trial of drug A in pain", "Registered as NCT01234567. Results were good."),
    ("A randomised trial of drug B", "registered as nct 02345678 and ISRCTN12345678"),
    ("A trial of drug C", "EudraCT No. 2015-002624-31; also 2016-000001-01 without its prefix"),
    ("A trial of drug D, registered NCT", "03456789 was its number"),  # the id spans title and abstract
    ("Drug E", "IſRCTN23456789 with a long s, ıSRCTN34567890 with a dotless i, İSRCTN45678901"),
    ("Drug F", "eudract number 2017-123456-12 and NCT\u00a004567890 (no-break space)"),
    ("Drug G versus placebo", "No registration is mentioned in this abstract at all, 2015-002624-31 alone."),
    ("Drug H trial NCT05678901 in the title", "and nothing in the abstract"),
    ("Drug I", ""),
    ("Drug J", "ＮＣＴ01234567 in full-width letters; Ｎct06789012"),
]


def test_trial_ids_from_the_abstract_are_found_as_in_the_whole_text(tmp_path):
    con = connect(tmp_path / "wh.duckdb")
    recs = [
        Record(
            source="pubmed",
            source_id=str(k + 1),
            title=t,
            abstract=a,
            authors=["Smith J"],
            year=2020,
            registry_ids=["NCT09999999"] if k == 0 else [],
        )
        for k, (t, a) in enumerate(TEXTS)
    ]
    recs.append(
        Record(
            source="ctgov",
            source_id="NCT01234567",
            title="Registry entry",
            abstract="NCT07777777",
            registry_ids=["NCT01234567"],
        )
    )
    for source in ("pubmed", "ctgov"):
        run = start_search_run(
            con, review_id="r", source=source, query="q", mode="replay", window_start=None, window_end=T0, now=T0
        )
        batch = [Fetched(r, json.dumps(r.to_dict())) for r in recs if r.source == source]
        finish_search_run(con, run_id=run, review_id="r", source=source, fetched=batch, watermark=T0, now=T0)

    got = {r.record_id: r.registry_ids for r in load_link_records(con, "r")}
    for r in recs:
        ids = list(r.registry_ids)
        if r.source != "ctgov":  # the rule as it was: every id in "title abstract", after the stored ones
            ids += [x for x in find_registry_ids(f"{r.title} {r.abstract}") if x not in ids]
        assert got[r.record_id] == tuple(ids), r.record_id
    # the texts do exercise the rule: ids only in the abstract, split, in other letters
    assert got["pubmed:4"] == ("NCT03456789",) and got["pubmed:5"] and got["pubmed:3"] == ("EudraCT 2015-002624-31",)
    assert got["pubmed:1"] == ("NCT09999999", "NCT01234567")
    assert load_link_records(con, "r", ["pubmed:2"])[0].registry_ids == ("NCT02345678", "ISRCTN12345678")

    # an abstract naming no trial is not read (what a first load used to hold for every record)
    rows = {r["record_id"]: r for r in _rows(con, query("linking_records").format(join=""), ["r"])}
    assert rows["pubmed:7"]["abstract"] is None and rows["pubmed:9"]["abstract"] is None
    assert rows["ctgov:NCT01234567"]["abstract"] is None  # a registry entry's ids are its own
    assert rows["pubmed:1"]["abstract"] == TEXTS[0][1]
