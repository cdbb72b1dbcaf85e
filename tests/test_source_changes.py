"""The "what counts as a changed record" rule (livingmeta.sources.changes), without any database.

A tiny in-memory store plays the warehouse: it keeps the current version of each record and the latest payload
hash per source id, exactly what `warehouse.ingest.finish_search_run` loads before it asks for a plan. The
DuckDB side of the same rule is tested in tests/test_warehouse_ingest.py.
"""

from __future__ import annotations

import json

from livingmeta.records import Record, hash_bytes
from livingmeta.sources.changes import (Fetched, Stored, apply_deletions, changed_fields, classify, plan_ingest,
                                        record_content, record_dict)


class Store:
    """Current versions and latest payload hashes, updated from plans as the warehouse would be."""

    def __init__(self) -> None:
        self.current: dict[str, Stored] = {}
        self.payloads: dict[str, str] = {}
        self.versions: dict[str, list[dict]] = {}

    def run(self, fetched, deletions=()):
        with_deleted, unknown = apply_deletions(fetched, deletions, self.current)
        plan = plan_ingest(with_deleted, self.current, self.payloads)
        for sid, _text, h in plan.payloads:
            self.payloads[sid] = h
        for ch in plan.changes:
            self.current[ch.record_id] = Stored(ch.content_hash, ch.version, ch.data_json, bool(ch.data["deleted"]))
            self.versions.setdefault(ch.record_id, []).append(ch.data)
        return plan, unknown


def pm(pmid: str, title: str = "IVIG for CIDP", **kw) -> Fetched:
    r = Record(source="pubmed", source_id=pmid, title=title, year=2020, authors=["Doe J"], **kw)
    return Fetched(r, f"<PubmedArticle><PMID>{pmid}</PMID><T>{title}</T></PubmedArticle>")


def delete_notice(pmid: str) -> Fetched:
    return Fetched(Record(source="pubmed", source_id=pmid), f"<DeleteCitation><PMID>{pmid}</PMID></DeleteCitation>")


def ct(nct: str, status: str = "RECRUITING", has_results: bool = False, **extra) -> Fetched:
    ex = {"overall_status": status, "has_results": has_results, **extra}
    r = Record(source="ctgov", source_id=nct, title="IVIG trial", extra=ex, registry_ids=[nct])
    return Fetched(r, json.dumps({"nctId": nct, "status": status, "results": has_results}))


def counts(plan):
    c = plan.counts
    return c.new, c.changed, c.unchanged, c.deleted


def test_pubmed_new_unchanged_changed_deleted_and_reappeared():
    store = Store()
    plan, _ = store.run([pm("1"), pm("2")])
    assert counts(plan) == (2, 0, 0, 0)
    assert [(c.record_id, c.kind, c.version, c.changed_fields) for c in plan.changes] == [
        ("pubmed:1", "new", 1, None), ("pubmed:2", "new", 1, None)]
    assert plan.counts.new_ids == ["pubmed:1", "pubmed:2"] and plan.member_ids == ["pubmed:1", "pubmed:2"]

    plan, _ = store.run([pm("1"), pm("2")])  # the same answer again
    assert counts(plan) == (0, 0, 2, 0) and plan.changes == [] and plan.payloads == []
    assert plan.member_ids == ["pubmed:1", "pubmed:2"]  # still seen by the run

    plan, _ = store.run([pm("1"), pm("2", "IVIG for CIDP (corrected)")])
    assert counts(plan) == (0, 1, 1, 0) and plan.counts.changed_ids == ["pubmed:2"]
    (ch,) = plan.changes
    assert (ch.version, ch.changed_fields, ch.events) == (2, ["title"], [])

    plan, unknown = store.run([], deletions=[delete_notice("2"), delete_notice("99")])
    assert counts(plan) == (0, 1, 0, 1) and unknown == 1  # 99 was never stored: nothing to mark
    (ch,) = plan.changes
    assert ch.record_id == "pubmed:2" and ch.version == 3 and ch.changed_fields == ["deleted"]
    assert ch.data["title"] == "IVIG for CIDP (corrected)"  # the content is kept, only marked deleted
    assert ch.events == [("deleted", None, "deleted")]

    plan, _ = store.run([], deletions=[delete_notice("2")])  # deleted again: nothing new
    assert counts(plan) == (0, 0, 1, 0)
    # still deleted but its content moved (sighted with a new title, then withdrawn again): a change, and not
    # a second deletion
    plan, _ = store.run([pm("2", "IVIG for CIDP (v3)")], deletions=[delete_notice("2")])
    assert counts(plan) == (0, 1, 0, 0) and plan.changes[0].changed_fields == ["title"]
    store.run([pm("2", "IVIG for CIDP (corrected)")], deletions=[delete_notice("2")])

    plan, _ = store.run([pm("2", "IVIG for CIDP (corrected)")])  # it reappears
    assert counts(plan) == (0, 1, 0, 0)
    (ch,) = plan.changes
    assert ch.version == 6 and ch.changed_fields == ["deleted"] and ch.data["deleted"] is False and ch.events == []
    assert [v["deleted"] for v in store.versions["pubmed:2"]] == [False, False, True, True, True, False]


def test_a_deletion_wins_over_a_sighting_in_the_same_run_and_keeps_its_content():
    store = Store()
    plan, unknown = store.run([pm("5", "First title"), pm("5", "Latest title")], deletions=[delete_notice("5")])
    assert unknown == 0 and counts(plan) == (1, 0, 0, 1)
    (ch,) = plan.changes
    assert ch.data["deleted"] is True and ch.data["title"] == "Latest title"
    # the notice is what the source sent last for the PMID: its payload is the one kept
    assert [p[1] for p in plan.payloads] == ["<DeleteCitation><PMID>5</PMID></DeleteCitation>"]


def test_retraction_is_a_change_with_an_event():
    store = Store()
    store.run([pm("7")])
    plan, _ = store.run([pm("7", retracted=True, corrections=[{"type": "RetractionIn", "pmid": "8", "text": None}])])
    (ch,) = plan.changes
    assert ch.kind == "changed" and ch.changed_fields == ["corrections", "retracted"]
    assert ch.events == [("retracted", None, "retracted")] and not ch.newly_deleted


def test_ctgov_new_unchanged_status_change_results_posted_and_reappeared_status():
    store = Store()
    plan, _ = store.run([ct("NCT01"), ct("NCT02")])
    assert counts(plan) == (2, 0, 0, 0) and all(c.events == [] for c in plan.changes)  # new: no events

    plan, _ = store.run([ct("NCT01"), ct("NCT02")])
    assert counts(plan) == (0, 0, 2, 0)

    plan, _ = store.run([ct("NCT01", "COMPLETED"), ct("NCT02")])
    (ch,) = plan.changes
    assert counts(plan) == (0, 1, 1, 0) and ch.changed_fields == ["extra"]
    assert ch.events == [("status_change", "RECRUITING", "COMPLETED")]

    plan, _ = store.run([ct("NCT01", "COMPLETED", has_results=True, results_first_posted="2021-05-01")])
    (ch,) = plan.changes
    assert ch.version == 3 and ch.events == [("results_posted", None, "2021-05-01")]
    assert plan.counts.events == [{"record_id": "ctgov:NCT01", "kind": "results_posted", "old_value": None,
                                   "new_value": "2021-05-01"}]

    # a study missing from one run and back in a later one, unchanged: nothing new is stored
    store.run([ct("NCT02")])
    plan, _ = store.run([ct("NCT01", "COMPLETED", has_results=True, results_first_posted="2021-05-01")])
    assert counts(plan) == (0, 0, 1, 0)


def test_payloads_are_kept_when_they_differ_from_the_latest_stored_one():
    store = Store()
    a = Fetched(pm("1").record, "<A revised='2020'/>")
    b = Fetched(pm("1").record, "<A revised='2021'/>")  # only a field the record leaves out moved
    plan, _ = store.run([a])
    assert [(s, h) for s, _, h in plan.payloads] == [("1", hash_bytes(b"<A revised='2020'/>"))]
    plan, _ = store.run([b])
    assert counts(plan) == (0, 0, 1, 0) and len(plan.payloads) == 1  # record unchanged, the answer kept
    plan, _ = store.run([b])
    assert plan.payloads == []
    bytes_payload = Fetched(pm("1").record, "<A revised='2021'/>".encode())
    assert plan_ingest([bytes_payload], store.current, store.payloads).payloads == []  # bytes == its text


def test_the_content_hash_covers_every_field_and_nothing_else():
    base = pm("1").record
    data, text, h = record_content(base)
    assert data == base.to_dict() and record_dict(base) == base.to_dict()
    assert h == base.content_hash() and json.loads(text) == base.to_dict()
    for name, value in [("abstract", "x"), ("mesh", ["Humans"]), ("extra", {"k": 1}), ("source_version", "2"),
                        ("is_rct", True), ("keywords", ["ivig"])]:
        changed = Record(**{**base.to_dict(), name: value})
        assert record_content(changed)[2] != h, name
        assert changed_fields(data, changed.to_dict()) == [name]
    stored = Stored(h, 1, text, False)
    assert classify(Record(**base.to_dict()), stored).kind == "unchanged"  # an equal copy is the same record


def test_last_sighting_wins_within_a_run():
    plan = plan_ingest([pm("1", "old"), pm("2"), pm("1", "new")], {}, {})
    assert [(c.record_id, c.data["title"]) for c in plan.changes] == [("pubmed:2", "IVIG for CIDP"),
                                                                      ("pubmed:1", "new")]
    assert plan.counts.found == 2 and plan_ingest([pm("1")], {}, {}, n_found=5).counts.found == 5

