"""Round trips through ASReview LAB (issue 17 item 5): only labels made in ASReview come back, with their time and
the reviewer's name; "maybe" is never sent (or read back) as an include; RIS written with rispy as ASReview reads it.

ASReview itself is not installed in the test environment: asreview >= 2 requires pandas < 3 and the lock pins
pandas 3.1.1 (asreview 1.1.1, what pip picks instead, pulls Flask and gevent). The files ASReview LAB writes
are therefore written here in its documented formats: the CSV of LAB 3.x `export_dataset` (the input file's
columns kept, the results joined as `asreview_label`, `asreview_time` as "%Y-%m-%d %H:%M:%S" UTC,
`asreview_note`, `asreview_user_name`, `asreview_user_email`, `asreview_group_id`; priors keep the label they
were given and name no user), and its RIS writer (the label as the first N1 note, then "asreview_<column>:
<JSON>" notes, other tags as read). Reading our RIS follows `asreview.data.ris.RISReader` (rispy with
skip_unknown_tags, a label note found by substring in the N1 notes).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import rispy
from typer.testing import CliRunner

from flows.cli import app
from test_screening_queue import REVIEW, T0, ctgov, decide, ingest, make_config, open_review, pubmed
from warehouse import connect
from warehouse.screening import flag_candidates, import_decisions, screening_kappa

runner = CliRunner()
NOW = T0 + dt.timedelta(days=3)
# ASReview's label notes (asreview.data.ris.RIS_NOTE_LABEL_MAPPING)
RIS_NOTE_LABEL_MAPPING = {"ASReview_relevant": 1, "ASReview_irrelevant": 0, "ASReview_not_seen": None}


def review(tmp_path):
    """5 records, 3 already decided by ana: include, maybe, exclude."""
    folder = tmp_path / "review"
    folder.mkdir()
    (folder / "review.toml").write_text(f'id = "{REVIEW}"\ntitle = "IVIG"\n[sources.pubmed]\nquery = "q"\n',
                                        encoding="utf-8")
    cfg = make_config()
    con = open_review(tmp_path, cfg)
    ingest(con, [pubmed(k, f"IVIG trial {k}", f"Abstract {k}.", authors=["Geerts M"], year=2020 + k)
                 for k in range(1, 5)], T0)
    ingest(con, [ctgov("NCT01234567", "IVIG registry entry")], T0, source="ctgov")
    flag_candidates(con, REVIEW, cfg, T0)
    decide(con, "pubmed:1", "include")
    decide(con, "pubmed:2", "maybe")
    decide(con, "pubmed:3", "exclude")
    con.close()
    return folder, str(tmp_path / "wh.duckdb")


def export(folder, wh, fmt: str, out) -> str:
    res = runner.invoke(app, ["screen", "export", str(folder), "--format", fmt, "--out", str(out), "-w", wh])
    assert res.exit_code == 0, res.output
    return out.read_text(encoding="utf-8")


def lab3_csv(exported: str, labels: dict[str, tuple[int, str, str]], project_created: str) -> str:
    """ASReview LAB 3.x `export_dataset` (CSV) of a project made from `exported`.

    labels: livingmeta_id -> (label, time, user name) for records the reviewer labelled in ASReview. A record
    exported with a label is a prior: it keeps that label, the project's creation time and no user, unless
    the reviewer relabelled it (then `labels` has it).
    """
    rows = list(csv.DictReader(io.StringIO(exported)))
    out_cols = list(rows[0]) + ["asreview_label", "asreview_time", "asreview_note", "asreview_user_name",
                                "asreview_user_email", "asreview_group_id"]
    done = []
    for k, r in enumerate(rows):
        lid = r["livingmeta_id"]
        if lid in labels:
            label, time, user = labels[lid]
            res = {"asreview_label": label, "asreview_time": time, "asreview_note": "",
                   "asreview_user_name": user, "asreview_user_email": f"{user.split()[0].lower()}@example.org" if user else ""}
        elif r["included"] != "":
            res = {"asreview_label": r["included"], "asreview_time": project_created, "asreview_note": "",
                   "asreview_user_name": "", "asreview_user_email": ""}
        else:
            res = {"asreview_label": "", "asreview_time": "", "asreview_note": "", "asreview_user_name": "",
                   "asreview_user_email": ""}
        done.append({**r, **res, "asreview_group_id": k})
    # LAB orders relevant, then not seen, then irrelevant
    done.sort(key=lambda r: {"1": 0, "": 1, "0": 2}[str(r["asreview_label"])])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=out_cols, lineterminator="\n")
    w.writeheader()
    w.writerows(done)
    return buf.getvalue()


def decisions(wh) -> list[tuple]:
    con = connect(wh)
    try:
        return con.execute("SELECT record_id, reviewer, decision, decided_at, origin FROM v_current_decisions "
                           "WHERE stage = 'title_abstract' ORDER BY record_id, reviewer").fetchall()
    finally:
        con.close()


def utc(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s).replace(tzinfo=dt.timezone.utc)


def test_csv_round_trip_imports_only_labels_made_in_asreview(tmp_path):
    folder, wh = review(tmp_path)
    exported = export(folder, wh, "csv", tmp_path / "out.csv")
    rows = {r["livingmeta_id"]: r for r in csv.DictReader(io.StringIO(exported))}
    # the maybe is not sent as an include: ASReview has no maybe, so it waits unlabelled for the reviewer there
    assert {k: r["included"] for k, r in rows.items()} == {
        "ctgov:NCT01234567": "", "pubmed:1": "1", "pubmed:2": "", "pubmed:3": "0", "pubmed:4": ""}
    # Bea screens in ASReview: two unlabelled records, and she changes the prior exclusion of pubmed:3
    back = tmp_path / "asreview_export.csv"
    back.write_text(lab3_csv(exported, {
        "pubmed:4": (1, "2024-03-02 10:15:00", "Bea Jansen"),
        "pubmed:2": (0, "2024-03-02 10:16:30", "Bea Jansen"),
        "pubmed:3": (1, "2024-03-02 10:20:00", "Bea Jansen"),
    }, project_created="2024-03-02 10:00:00"), encoding="utf-8")
    before = decisions(wh)
    con = connect(wh)
    res = import_decisions(con, REVIEW, back, now=NOW)  # no --reviewer: ASReview names her
    con.close()
    assert (res["format"], res["rows"], res["added"], res["priors"]) == ("asreview", 3, 3, 1)
    got = decisions(wh)
    new = sorted(set(got) - set(before))
    assert new == [
        ("pubmed:2", "Bea Jansen", "exclude", utc("2024-03-02T10:16:30"), "asreview"),
        ("pubmed:3", "Bea Jansen", "include", utc("2024-03-02T10:20:00"), "asreview"),
        ("pubmed:4", "Bea Jansen", "include", utc("2024-03-02T10:15:00"), "asreview"),
    ]
    # the prior include on pubmed:1 did not become Bea's; ana's maybe on pubmed:2 is still a maybe
    assert not [d for d in got if d[0] == "pubmed:1" and d[1] != "ana"]
    assert ("pubmed:2", "ana", "maybe") in [d[:3] for d in got]
    # agreement is measured only where both really decided: pubmed:2 (maybe/exclude) and pubmed:3 (exclude/include)
    con = connect(wh)
    assert screening_kappa(con, REVIEW) is not None and screening_kappa(con, REVIEW) < 0
    con.close()
    # importing it again adds nothing
    con = connect(wh)
    again = import_decisions(con, REVIEW, back, now=NOW)
    con.close()
    assert (again["added"], again["already_imported"], again["priors"]) == (0, 3, 1)


def test_an_unknown_export_number_is_refused_naming_the_line(tmp_path):
    folder, wh = review(tmp_path)
    exported = export(folder, wh, "csv", tmp_path / "out.csv").replace(",1\n", ",99\n")
    back = tmp_path / "asreview_export.csv"
    back.write_text(lab3_csv(exported, {"pubmed:4": (1, "2024-03-02 10:15:00", "Bea Jansen")},
                             project_created="2024-03-02 10:00:00"), encoding="utf-8")
    res = runner.invoke(app, ["screen", "import", str(folder), str(back), "-w", wh])
    assert res.exit_code == 2
    assert "column 'livingmeta_export'" in res.output and "export 99 is not an export of this review" in res.output
    assert len(decisions(wh)) == 3  # nothing stored


def test_a_label_in_asreview_naming_nobody_needs_a_reviewer(tmp_path):
    folder, wh = review(tmp_path)
    exported = export(folder, wh, "csv", tmp_path / "out.csv")
    back = tmp_path / "asreview_export.csv"
    back.write_text(lab3_csv(exported, {"pubmed:4": (1, "2024-03-02 10:15:00", "")},
                             project_created="2024-03-02 10:00:00"), encoding="utf-8")
    res = runner.invoke(app, ["screen", "import", str(folder), str(back), "-w", wh])
    assert res.exit_code == 2 and "column 'asreview_user_name'" in res.output and "--reviewer" in res.output
    res = runner.invoke(app, ["screen", "import", str(folder), str(back), "-r", "bea", "-w", wh])
    assert res.exit_code == 0, res.output
    assert ("pubmed:4", "bea", "include", utc("2024-03-02T10:15:00"), "asreview") in decisions(wh)


def test_ris_export_is_written_the_way_asreview_reads_it(tmp_path):
    folder, wh = review(tmp_path)
    text = export(folder, wh, "ris", tmp_path / "out.ris")
    assert not text.startswith("1.")  # no record numbers: plain RIS
    refs = list(rispy.load(io.StringIO(text), skip_unknown_tags=True))  # as asreview.data.ris.RISReader reads
    by_id = {r["id"]: r for r in refs}

    def label(notes):  # asreview.data.ris._parse_label_from_notes
        for note in notes:
            for key, val in RIS_NOTE_LABEL_MAPPING.items():
                if key in note:
                    return val

    assert {k: label(r["notes"]) for k, r in by_id.items()} == {
        "ctgov:NCT01234567": None, "pubmed:1": 1, "pubmed:2": None, "pubmed:3": 0, "pubmed:4": None}
    p1, reg = by_id["pubmed:1"], by_id["ctgov:NCT01234567"]
    assert (p1["type_of_reference"], p1["title"], p1["abstract"], p1["authors"], p1["year"]) == (
        "JOUR", "IVIG trial 1", "Abstract 1.", ["Geerts M"], "2021")
    assert (p1["accession_number"], p1["urls"]) == ("1", ["https://pubmed.ncbi.nlm.nih.gov/1/"])
    assert (reg["type_of_reference"], reg["accession_number"], reg["urls"]) == (
        "DATA", "NCT01234567", ["https://clinicaltrials.gov/study/NCT01234567"])
    assert all(any(n.startswith("livingmeta_export: ") for n in r["notes"]) for r in refs)


def lab3_ris(exported: str, labels: dict[str, tuple[int, str, str]], project_created: str) -> str:
    """ASReview LAB 3.x's RIS export of a project made from our RIS file (asreview.data.ris.RISWriter): every
    tag read comes back, the label note first, ASReview's own label notes dropped, asreview_* columns as
    "asreview_<column>: <JSON>" notes."""
    refs = list(rispy.load(io.StringIO(exported), skip_unknown_tags=True))
    out = []
    for k, ref in enumerate(refs):
        lid = ref["id"]
        kept = [n for n in ref.get("notes", []) if n not in RIS_NOTE_LABEL_MAPPING]
        prior = next((RIS_NOTE_LABEL_MAPPING[n] for n in ref.get("notes", []) if n in RIS_NOTE_LABEL_MAPPING), None)
        if lid in labels:
            lab, time, user = labels[lid]
        elif prior is not None:
            lab, time, user = prior, project_created, None
        else:
            lab, time, user = None, None, None
        notes = [{1: "ASReview_relevant", 0: "ASReview_irrelevant", None: "ASReview_not_seen"}[lab]] + kept
        for col, val in (("asreview_time", time), ("asreview_note", None), ("asreview_user_name", user),
                         ("asreview_group_id", k)):
            if val is not None:
                notes.append(f"{col}: {json.dumps(val)}")
        out.append({**{key: v for key, v in ref.items() if key != "notes"}, "notes": notes})
    return rispy.dumps(out)  # with rispy's "1." record numbers, as ASReview writes them


def test_ris_round_trip_through_asreview(tmp_path):
    folder, wh = review(tmp_path)
    exported = export(folder, wh, "ris", tmp_path / "out.ris")
    back = tmp_path / "asreview_export.ris"
    back.write_text(lab3_ris(exported, {"pubmed:4": (0, "2024-03-02 11:00:00", "Bea Jansen"),
                                        "pubmed:1": (0, "2024-03-02 11:05:00", "Bea Jansen")},
                             project_created="2024-03-02 10:00:00"), encoding="utf-8")
    assert back.read_text(encoding="utf-8").startswith("1.\nTY  - ")
    res = runner.invoke(app, ["screen", "import", str(folder), str(back), "-w", wh])
    assert res.exit_code == 0, res.output
    assert "(asreview-ris): 2 decision(s) read, 2 added" in res.output
    assert "1 label(s) repeat what livingmeta exported" in res.output  # the prior exclusion of pubmed:3
    new = [d for d in decisions(wh) if d[1] == "Bea Jansen"]
    assert new == [("pubmed:1", "Bea Jansen", "exclude", utc("2024-03-02T11:05:00"), "asreview"),
                   ("pubmed:4", "Bea Jansen", "exclude", utc("2024-03-02T11:00:00"), "asreview")]
