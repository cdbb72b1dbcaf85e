"""Storing a run in batches, and from a spool on disk, stores exactly what storing it at once did (issue 15)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from livingmeta.records import Record
from livingmeta.sources.spool import FetchedSpool
from warehouse import connect
from warehouse.ingest import Fetched, finish_search_run, start_search_run

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
T1 = dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc)
T2 = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)


def pub(pmid: str, title: str = "A trial", **kw) -> Fetched:
    r = Record(source="pubmed", source_id=pmid, title=title, year=2020, authors=["Smith J"], **kw)
    return Fetched(
        r, f"<PubmedArticle><PMID>{pmid}</PMID><T>{title}</T><R>{kw.get('retracted', '')}</R></PubmedArticle>"
    )


def notice(pmid: str) -> Fetched:
    return Fetched(Record(source="pubmed", source_id=pmid, deleted=True), f"<DeleteCitation><PMID>{pmid}</PMID>")


def reg(nct: str, status: str) -> Fetched:
    r = Record(source="ctgov", source_id=nct, title=f"Registry entry {nct}", extra={"overall_status": status})
    return Fetched(r, json.dumps({"nct": nct, "status": status}))


# three runs per source: duplicates within a run (the last sighting wins, also across batch boundaries), new,
# changed, unchanged and retracted records, deletion notices (of a record of the same run, of a stored one, of
# one never seen), registry status changes (events) and a payload that changed while the record did not
PUBMED_RUNS = [
    ([pub(str(k)) for k in range(1, 12)] + [pub("3", "A trial, second sighting"), pub("7", "Seventh"), pub("1")], []),
    (
        [
            pub("2", "A trial (corrected)"),
            pub("4"),
            pub("12"),
            pub("5", retracted=True),
            pub("13"),
            pub("2", "Again"),
            pub("6"),
        ]
        + [pub(str(k)) for k in range(14, 20)],
        [notice("4"), notice("8"), notice("99")],
    ),
    ([pub("2", "Again"), pub("8"), pub("20"), pub("9", "Ninth, revised"), pub("20", "Twentieth")], [notice("20")]),
]
CTGOV_RUNS = [
    [reg(f"NCT{k:08d}", "RECRUITING") for k in range(1, 8)] + [reg("NCT00000002", "COMPLETED")],
    [reg(f"NCT{k:08d}", "TERMINATED" if k % 2 else "RECRUITING") for k in range(1, 10)],
    [reg("NCT00000003", "COMPLETED"), reg("NCT00000009", "RECRUITING")],
]


def store_all(path, batch_size: int, spool: bool) -> tuple[dict, list]:
    con = connect(path)
    results = []
    for now, (fetched, deletions), ct in zip((T0, T1, T2), PUBMED_RUNS, CTGOV_RUNS):
        for source, items, dels in (("pubmed", fetched, deletions), ("ctgov", ct, [])):
            run = start_search_run(
                con, review_id="r1", source=source, query="q", mode="replay", window_start=None, window_end=now, now=now
            )
            given = FetchedSpool(items) if spool else list(items)
            counts = finish_search_run(
                con,
                run_id=run,
                review_id="r1",
                source=source,
                fetched=given,
                watermark=now,
                now=now,
                deletions=dels,
                batch_size=batch_size,
            )
            results.append(
                (counts.as_dict(), counts.new_ids, counts.changed_ids, counts.events, counts.deleted_unknown)
            )
    tables = [
        t
        for (t,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_name <> "
            "'_migrations' ORDER BY 1"
        ).fetchall()
    ]
    contents = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}
    con.close()
    return contents, results


@pytest.mark.parametrize(("batch_size", "spool"), [(1, False), (2, True), (5, False), (10_000, True)])
def test_batches_and_spools_store_what_one_batch_stores(tmp_path, batch_size, spool):
    expected, expected_counts = store_all(tmp_path / "once.duckdb", 10_000, False)
    got, counts = store_all(tmp_path / "batched.duckdb", batch_size, spool)
    assert counts == expected_counts
    assert got == expected  # every table, row for row: raw ids, versions, events, membership, runs, watermarks
    # the scenario exercises what the batches must keep: versions, deletions, events, repeated sightings
    assert any(rows for t, rows in expected.items() if t == "registry_events")
    assert sum(c[0]["deleted"] for c in expected_counts) >= 2 and any(c[4] for c in expected_counts)
    assert {"pubmed:2", "pubmed:9", "ctgov:NCT00000003"} <= {r[0] for r in expected["record_versions"] if r[1] >= 2}


def test_a_spool_gives_back_its_records_in_order_any_number_of_times(tmp_path):
    items = [pub(str(k), f"Title {k}") for k in range(2_500)]  # more than one pickled frame, and a partial one
    with FetchedSpool(directory=str(tmp_path)) as spool:
        spool.extend(items[:1_200])
        first = [f.record.title for f in spool]
        spool.extend(items[1_200:])
        assert len(spool) == 2_500
        assert spool.record_ids == [f.record.record_id for f in items]
        for _ in range(2):
            back = list(spool)
            assert [f.record for f in back] == [f.record for f in items]
            assert [f.payload for f in back] == [f.payload for f in items]
        assert first == [f"Title {k}" for k in range(1_200)]
