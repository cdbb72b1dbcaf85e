"""Live re-ranking (issue 17 item 1): after each decision the next record comes from a model that has seen it.

`warehouse.screening.next_to_screen` is the API the terminal and the web app share. Real DuckDB files; the
features cache beside them (`<warehouse>.features/`) is the real one.
"""

from __future__ import annotations

import datetime as dt
import random
import threading

import duckdb
import numpy as np
from typer.testing import CliRunner

import warehouse.screening_features as features_cache
from flows.cli import app
from test_screening_queue import REVIEW, T0, ingest, make_config, open_review, pubmed
from warehouse import connect
from warehouse.screening import (flag_candidates, next_to_screen, rank_queue, record_decision, records_to_screen,
                                 undo_decision)
from warehouse.screening_features import cache_path

FILLER = ("cohort outcome patients adults children follow measured baseline week month dose therapy "
          "clinical hospital treatment response analysis group study effect severe mild chronic acute "
          "serum level index score visit trial evidence review data model").split()
TOPIC = "immunoglobulin infusion neuropathic polyneuropathy sensory axonal fibre".split()
TWIN = "glaucoma trabeculectomy intraocular drainage tube bleb".split()


def _text(rng: random.Random, own: list[str], k: int = 30) -> str:
    return " ".join(rng.choice(own) if rng.random() < 0.5 else rng.choice(FILLER) for _ in range(k))


def live_review(tmp_path, n_topic: int = 8, n_other: int = 14, min_decisions: int = 6):
    """A review whose model can train after `min_decisions`: topic records (likely includes), other records,
    and a pair of near-duplicate twins (pubmed:901, pubmed:902) about something else."""
    rng = random.Random(7)
    cfg = make_config(min_decisions_to_train=min_decisions)
    con = open_review(tmp_path, cfg)
    recs = [pubmed(100 + i, _text(rng, TOPIC, 8), _text(rng, TOPIC)) for i in range(n_topic)]
    recs += [pubmed(500 + i, _text(rng, FILLER, 8), _text(rng, FILLER)) for i in range(n_other)]
    twin = " ".join(TWIN * 3)
    recs += [pubmed(901, "Glaucoma drainage tube versus trabeculectomy", twin + " bleb needling"),
             pubmed(902, "Glaucoma drainage tube versus trabeculectomy surgery", twin + " bleb revision")]
    ingest(con, recs, T0)
    flag_candidates(con, REVIEW, cfg, T0)
    return con, cfg


def decide(con, rid, decision, at, reviewer="ana"):
    return record_decision(con, review_id=REVIEW, record_id=rid, reviewer=reviewer, stage="title_abstract",
                           decision=decision, reason=None, origin="terminal", now=at)


def ranks(con) -> dict[str, int]:
    # ranks among the records waiting at title/abstract (v_screening_queue numbers both stages together)
    return dict(con.execute("SELECT record_id, row_number() OVER (ORDER BY rank) FROM v_screening_queue "
                            "WHERE review_id = ? AND stage = 'title_abstract'", [REVIEW]).fetchall())


def scores(con) -> dict[str, float]:
    return dict(con.execute("SELECT record_id, score FROM screening_queue WHERE review_id = ?", [REVIEW]).fetchall())


def first_decisions(con, start: dt.datetime) -> dt.datetime:
    """3 includes (topic records) and 3 excludes (other records): enough for the model to train."""
    at = start
    for rid, d in [("pubmed:100", "include"), ("pubmed:500", "exclude"), ("pubmed:101", "include"),
                   ("pubmed:501", "exclude"), ("pubmed:102", "include"), ("pubmed:502", "exclude")]:
        at += dt.timedelta(minutes=1)
        decide(con, rid, d, at)
    return at


def test_the_decision_that_reaches_min_decisions_switches_the_next_record_to_the_model(tmp_path):
    con, cfg = live_review(tmp_path)
    at = T0
    for k, (rid, d) in enumerate([("pubmed:100", "include"), ("pubmed:500", "exclude"), ("pubmed:101", "include"),
                                  ("pubmed:501", "exclude"), ("pubmed:102", "include")]):
        at += dt.timedelta(minutes=1)
        decide(con, rid, d, at)
        nxt = next_to_screen(con, REVIEW, "ana", cfg=cfg)
        assert nxt["ranker"] == "rules", k  # 5 decisions < min_decisions_to_train = 6
    decide(con, "pubmed:502", "exclude", at + dt.timedelta(minutes=1))
    nxt = next_to_screen(con, REVIEW, "ana", cfg=cfg)
    # no update ran: the sixth decision alone brought the model in
    assert nxt["ranker"].startswith("tfidf-svm (") and nxt["ranker"].endswith("trained on 6 decisions")
    assert nxt["record_id"].startswith("pubmed:10")  # a topic record: the model learnt from the 3 includes
    assert nxt["waiting"] == 24 - 6
    assert con.execute("SELECT DISTINCT ranker FROM screening_queue WHERE review_id = ?", [REVIEW]).fetchall() == [
        (nxt["ranker"],)]  # stored: `status` names the same ranker


def test_a_decision_on_a_near_duplicate_moves_its_twin_to_the_top(tmp_path):
    con, cfg = live_review(tmp_path)
    at = first_decisions(con, T0)
    nxt = next_to_screen(con, REVIEW, "ana", cfg=cfg)
    before = ranks(con)
    assert before["pubmed:902"] > 3 and nxt["record_id"] != "pubmed:902"
    decide(con, "pubmed:901", "include", at + dt.timedelta(minutes=1))
    nxt = next_to_screen(con, REVIEW, "ana", cfg=cfg)
    assert nxt["record_id"] == "pubmed:902" and ranks(con)["pubmed:902"] == 1
    assert nxt["ranker"].endswith("trained on 7 decisions")
    # and back: excluding the twin instead sends the other one down again
    did = con.execute("SELECT max(decision_id) FROM screening_decisions").fetchone()[0]
    undo_decision(con, review_id=REVIEW, decision_id=did, reviewer="ana", now=at + dt.timedelta(minutes=2))
    decide(con, "pubmed:901", "exclude", at + dt.timedelta(minutes=3))
    nxt = next_to_screen(con, REVIEW, "ana", cfg=cfg)
    assert nxt["record_id"] != "pubmed:902" and ranks(con)["pubmed:902"] > before["pubmed:902"] - 1


def test_live_scores_equal_ranking_from_scratch(tmp_path):
    con, cfg = live_review(tmp_path)
    at = first_decisions(con, T0)
    for k, rid in enumerate(["pubmed:103", "pubmed:503", "pubmed:901"]):
        decide(con, rid, "include" if rid != "pubmed:503" else "exclude", at + dt.timedelta(minutes=k + 1))
        next_to_screen(con, REVIEW, "ana", cfg=cfg)
    live = scores(con)
    out = rank_queue(con, REVIEW, cfg, force=True, full=True)  # texts analysed again, TfidfVectorizer fitted again
    assert not out["skipped"] and out["trained_on"] == 9
    fresh = scores(con)
    assert live.keys() == fresh.keys() and all(live[k] == fresh[k] for k in live)


def test_next_record_skips_what_the_reviewer_skipped_and_what_they_decided(tmp_path):
    con, cfg = live_review(tmp_path)
    first_decisions(con, T0)
    a = next_to_screen(con, REVIEW, "ana", cfg=cfg)
    listed = [r["record_id"] for r in records_to_screen(con, REVIEW, "ana", "title_abstract")]
    assert a["record_id"] == listed[0] and a["waiting"] == len(listed)  # the same rules as the whole list
    b = next_to_screen(con, REVIEW, "ana", skip=[a["record_id"]], cfg=cfg)
    assert b["record_id"] == listed[1]
    assert b["record_id"] != a["record_id"] and b["rank"] > a["rank"] and b["waiting"] == a["waiting"] == 24 - 6
    # another reviewer has decided nothing: everything pending waits for them
    assert next_to_screen(con, REVIEW, "bob", cfg=cfg)["waiting"] == a["waiting"]
    ft = next_to_screen(con, REVIEW, "ana", "full_text", cfg=cfg)
    assert ft["stage"] == "full_text" and ft["waiting"] == 3  # the three includes
    assert ft["record_id"] == records_to_screen(con, REVIEW, "ana", "full_text")[0]["record_id"]
    all_ids = [r for (r,) in con.execute("SELECT record_id FROM v_screening_queue WHERE review_id = ?",
                                         [REVIEW]).fetchall()]
    assert next_to_screen(con, REVIEW, "ana", skip=all_ids, cfg=cfg) is None


def test_queue_state_survives_a_restart_without_refitting_features(tmp_path):
    con, cfg = live_review(tmp_path)
    at = first_decisions(con, T0)
    decide(con, "pubmed:901", "include", at + dt.timedelta(minutes=1))
    before = next_to_screen(con, REVIEW, "ana", cfg=cfg)
    stored = scores(con)
    tfidf = cache_path(con, REVIEW, "x").parent
    files = {p.name: p.stat().st_mtime_ns for p in tfidf.glob("*.tfidf.npz")}
    assert len(files) == 1
    con.close()
    features_cache._MEMORY.clear()  # a new process: nothing in memory
    con = connect(tmp_path / "wh.duckdb")
    assert rank_queue(con, REVIEW)["skipped"]  # same records, decisions and settings: the stored ranking stands
    after = next_to_screen(con, REVIEW, "ana", cfg=cfg)
    assert (after["record_id"], after["rank"], after["ranker"]) == (before["record_id"], before["rank"],
                                                                    before["ranker"])
    assert scores(con) == stored
    # the next decision refits the classifier on the features read from disk (the file is not rewritten)
    features_cache._MEMORY.clear()
    decide(con, after["record_id"], "include", at + dt.timedelta(minutes=2))
    nxt = next_to_screen(con, REVIEW, "ana", cfg=cfg)
    assert nxt["ranker"].endswith("trained on 8 decisions")
    assert {p.name: p.stat().st_mtime_ns for p in tfidf.glob("*.tfidf.npz")} == files
    # a damaged features file is ignored and rebuilt, never trusted
    features_cache._MEMORY.clear()
    (tfidf / next(iter(files))).write_bytes(b"not an npz file")
    live = scores(con)
    rank_queue(con, REVIEW, cfg, force=True, live=True)
    assert scores(con) == live
    assert (tfidf / next(iter(files))).read_bytes()[:2] == b"PK"  # an npz (zip) again


def test_an_update_that_refits_keeps_the_features_for_the_live_re_ranks_that_follow(tmp_path):
    con, cfg = live_review(tmp_path)
    at = first_decisions(con, T0)  # decided in another tool: nothing ranked since
    features_cache._MEMORY.clear()
    # the update refits on the new decisions and keeps the model and the queue's features (on disk, not in memory)
    flag_candidates(con, REVIEW, cfg, at + dt.timedelta(hours=1))
    assert not features_cache._MEMORY
    folder = cache_path(con, REVIEW, "x").parent
    files = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.tfidf.npz")}
    assert len(files) == 1 and list(folder.glob("*.model.json"))
    # the next decision's live re-rank refits only the classifier on them: the file is read, not rewritten
    nxt = next_to_screen(con, REVIEW, "ana", cfg=cfg)
    decide(con, nxt["record_id"], "include", at + dt.timedelta(hours=2))
    assert next_to_screen(con, REVIEW, "ana", cfg=cfg)["ranker"].endswith("trained on 7 decisions")
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.tfidf.npz")} == files
    live = scores(con)
    rank_queue(con, REVIEW, cfg, force=True, full=True)  # texts analysed again, vectoriser fitted again
    assert scores(con) == live


def test_concurrent_update_and_live_screening_leave_a_consistent_queue(tmp_path):
    con, cfg = live_review(tmp_path)
    at = first_decisions(con, T0)
    errors: list[BaseException] = []
    conflicts = {"n": 0}

    def retrying(fn):
        for _ in range(50):
            try:
                return fn()
            except duckdb.TransactionException:  # DuckDB refused the later of two conflicting transactions
                conflicts["n"] += 1
        raise AssertionError("50 conflicts in a row")

    def nightly():  # an update: new records arrive and the queue is flagged and ranked
        try:
            cur = con.cursor()
            rng = random.Random(3)
            for k in range(4):
                new = [pubmed(2000 + 10 * k + i, _text(rng, TOPIC if i % 2 else FILLER, 8), _text(rng, FILLER))
                       for i in range(5)]
                retrying(lambda: ingest(cur, new, T0 + dt.timedelta(days=k + 1)))
                retrying(lambda: flag_candidates(cur, REVIEW, cfg, T0 + dt.timedelta(days=k + 1)))
            cur.close()
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    def screener():
        try:
            cur = con.cursor()
            clock = at
            for _ in range(10):
                nxt = retrying(lambda: next_to_screen(cur, REVIEW, "ana", cfg=cfg))
                clock += dt.timedelta(minutes=1)
                retrying(lambda: decide(cur, nxt["record_id"], "include" if nxt["record_id"].startswith("pubmed:10")
                                        else "exclude", clock))
            cur.close()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=nightly), threading.Thread(target=screener)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    print(f"transactions refused as conflicting and retried: {conflicts['n']}")
    assert con.execute("SELECT count(*) FROM screening_decisions").fetchone() == (16,)
    assert con.execute("SELECT count(*) FROM screening_queue WHERE review_id = ?", [REVIEW]).fetchone() == (44,)
    # whatever interleaving happened, the stored state is consistent: after one more live step nothing is left to
    # score (every row scored by the current ranker, for its current text), and refitting over the queue as it is
    # from the caches (analysed texts, features) gives exactly the scores of refitting from scratch
    next_to_screen(con, REVIEW, "ana", cfg=cfg)
    assert rank_queue(con, REVIEW, cfg)["skipped"]
    assert con.execute(
        "SELECT count(*) FROM screening_queue q JOIN records r USING (record_id) JOIN screening_rank_state s "
        "USING (review_id) WHERE q.review_id = ? AND (q.ranker IS DISTINCT FROM s.ranker "
        "OR q.scored_key IS DISTINCT FROM r.content_hash)", [REVIEW]).fetchone() == (0,)
    assert not rank_queue(con, REVIEW, cfg, force=True)["skipped"]
    stored = scores(con)
    rank_queue(con, REVIEW, cfg, force=True, full=True)
    fresh = scores(con)
    assert stored.keys() == fresh.keys()
    assert np.array_equal([stored[k] for k in sorted(stored)], [fresh[k] for k in sorted(fresh)])


def test_screen_next_shows_the_model_once_min_decisions_is_reached(tmp_path):
    con, cfg = live_review(tmp_path)
    con.close()
    folder = tmp_path / "review"
    folder.mkdir()
    (folder / "review.toml").write_text(
        f'id = "{REVIEW}"\ntitle = "IVIG"\n[sources.pubmed]\nquery = "q"\n[screening]\nmin_decisions_to_train = 6\n',
        encoding="utf-8")
    # six decisions, alternating, then one more look: the seventh record is shown ranked by the model
    keys = "".join(f"{k}\n\n" for k in "ieieie") + "q\n"
    res = CliRunner().invoke(app, ["screen", "next", str(folder), "-r", "ana", "-w", str(tmp_path / "wh.duckdb")],
                             input=keys)
    assert res.exit_code == 0, res.output
    panels = res.output.split("title/abstract screening")
    assert len(panels) == 8  # the text before the first panel, then 7 panels
    assert all("ranked by: rules" in p for p in panels[1:6]), res.output
    assert "ranked by: tfidf-svm (C=0.11, balanced 9.8) trained on 6 decisions" in panels[7], panels[7]
    assert "Session over: 6 decision(s) recorded by ana." in res.output
