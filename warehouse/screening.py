"""Screening in the warehouse: the queue, human decisions (append-only), imports, exports, status, PRISMA.

The rules for what enters the queue and how it is ranked are in `livingmeta/screening/queue.py`; the
final-decision rules (one or two reviewers, conflicts, a third decision resolving) are SQL views in
`migrations/0005_screening.sql`. This module moves data between them and never updates or deletes a
decision: an undo is a new row in `screening_undos`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import inspect
import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import duckdb
import numpy as np

from livingmeta.config import ReviewConfig, Screening
from livingmeta.records import canonical_json, hash_json, normalise_doi
from livingmeta.screening.agreement import cohen_kappa
from livingmeta.screening.features import TermCounts
from livingmeta.screening.decisions import (
    DecisionFileError,
    DecisionRow,
    StoredDecision,
    check_decision,
    plan_against_stored,
    refuse,
    validate_decision_file,
)
from livingmeta.screening.prisma import shape_prisma
from livingmeta.screening.queue import (
    RULES_RANKER,
    StudyState,
    describe_change,
    estimate_remaining,
    place_new_record,
    rank_records,
    since_last_include,
    stopping_guidance,
)
from livingmeta.screening.rules import apply_rules
from livingmeta.screening.stopping import SAMPLE_ORIGIN, DecidedRecord, review_stopping, stopping_lines
from warehouse.alerts import add_alert
from warehouse.db import query, rows_as_dicts, transaction
from warehouse.reviews import stored_config
from warehouse.screening_features import (
    features_fingerprint,
    keep_queue_features,
    load_model,
    model_path,
    queue_documents,
    queue_features,
    save_model,
)
from warehouse.lazy import pandas as pd  # loads on first use

FLAG_BATCH = 10_000  # new records flagged per slice (memory, not results: tests/test_screening_queue.py)
_JSON_FIELDS = ("authors", "publication_types", "mesh", "keywords", "registry_ids", "corrections", "extra")
TOP_TITLES = 5
RANKING_VERSION = "3"  # bump when ranking changes in a way the inputs fingerprint cannot see


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# the review's stored, validated review.toml (None when the review was never registered)
review_config = stored_config


def _screening_settings(con: duckdb.DuckDBPyConnection, review_id: str) -> Screening:
    cfg = review_config(con, review_id)
    return cfg.screening if cfg else Screening()


def load_records(con: duckdb.DuckDBPyConnection, record_ids: list[str]) -> dict[str, dict]:
    """Records as `Record.to_dict()`-shaped dicts (JSON fields parsed), keyed by record id."""
    if not record_ids:
        return {}
    con.register("_screening_ids", pd.DataFrame({"record_id": record_ids}))
    try:
        rows = rows_as_dicts(con, "SELECT r.* FROM records r JOIN _screening_ids USING (record_id)")
    finally:
        con.unregister("_screening_ids")
    out = {}
    for row in rows:
        for k in _JSON_FIELDS:
            row[k] = json.loads(row[k]) if isinstance(row[k], str) else (row[k] or ([] if k != "extra" else {}))
        out[row["record_id"]] = row
    return out


def _text(rec: dict) -> str:
    return f"{rec.get('title') or ''} {rec.get('abstract') or ''}".strip()


# ---------------------------------------------------------------------------------------------- queue


def _study_states(con: duckdb.DuckDBPyConnection, review_id: str, new_ids: list[str]) -> dict[str, StudyState]:
    """For each new record whose study has another, already screened record: that study's state."""
    if not new_ids:
        return {}
    wanted = set(new_ids)
    # only the studies of these records: the review's other screened records do not matter here
    with _registered(con, "_screening_wanted", pd.DataFrame({"record_id": sorted(wanted)}, dtype=object)):
        rows = rows_as_dicts(con, query("screening_study_state_for"), [review_id])
        links = con.execute(query("screening_study_links_of"), [review_id]).fetchall()
    by_study: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_study[r["study_id"]].append(r)
    out: dict[str, StudyState] = {}
    for rid, sid in links:
        screened = [r for r in by_study.get(sid, []) if r["record_id"] not in wanted]
        if not screened:
            continue
        in_play = [
            r
            for r in screened
            if r["full_text"] == "include"
            or r["title_abstract"] in ("include", "maybe")
            or (r["full_text"] is None and r["title_abstract"] is None)
        ]
        if in_play:
            r = in_play[0]
            detail = (
                "included"
                if r["full_text"] == "include"
                else "passed title/abstract"
                if r["title_abstract"] in ("include", "maybe")
                else "being screened"
            )
            out[rid] = StudyState(sid, r["record_id"], "in_play", detail)
        else:
            r = screened[0]
            if r["full_text"] == "exclude":
                detail = "excluded at full text" + (f": {r['full_text_reason']}" if r["full_text_reason"] else "")
            else:
                detail = "excluded at title/abstract"
            out[rid] = StudyState(sid, r["record_id"], "excluded", detail)
    return out


def _queue_rows(con: duckdb.DuckDBPyConnection, review_id: str) -> list[dict]:
    return rows_as_dicts(con, "SELECT * FROM screening_queue WHERE review_id = ? ORDER BY record_id", [review_id])


def refresh_queue_states(con: duckdb.DuckDBPyConnection, review_id: str) -> int:
    """Bring each queue row's stage and state in line with the final decisions (after decisions change).

    A record is pending at title/abstract until it has a final decision there; an include or maybe sends
    it to full text (when the review has that stage), pending until a final include or exclude. A record
    that came back because it changed (or a new report of a study in play) stays pending at its stage until
    it is decided again: by one person in a one-reviewer review; in a two-reviewer review by two people
    independently, so that neither screener's decision from before the change closes it (a final decision
    made of one fresh and one stale word would agree with someone who never saw the retraction or the new
    results). A disagreement between the two fresh decisions is a conflict that a third decision resolves.

    Returns:
        the number of queue rows whose stage or state changed.
    """
    cfg = review_config(con, review_id)
    full_text_stage = cfg is None or "full_text" in cfg.screening.stages
    needed = cfg.screening.reviewers if cfg is not None else 1
    # rows nobody decided that wait at title/abstract stay there: only the others are read
    rows = rows_as_dicts(con, query("screening_queue_state_open"), [review_id])
    updates = []
    for r in rows:
        ta, ft = r["title_abstract"], r["full_text_decision"]
        if r["label"] in ("changed", "new_report"):
            stage = r["stage"]
            fresh = (r["fresh_ft"] if stage == "full_text" else r["fresh_ta"]) >= needed
            final = ft if stage == "full_text" else ta
            done = (
                fresh and final is not None and final != "maybe"
                if stage == "full_text"
                else fresh and final is not None
            )
            if done and stage == "title_abstract" and final in ("include", "maybe") and full_text_stage:
                stage, done = "full_text", ft in ("include", "exclude") and r["fresh_ft"] >= needed
            state = "decided" if done else "pending"
        elif ft in ("include", "exclude"):
            stage, state = "full_text", "decided"
        elif ta == "exclude":
            stage, state = "title_abstract", "decided"
        elif ta in ("include", "maybe"):
            stage, state = ("full_text", "pending") if full_text_stage else ("title_abstract", "decided")
        else:
            stage, state = "title_abstract", "pending"
        if (stage, state) != (r["stage"], r["state"]):
            updates.append((r["record_id"], stage, state))
    if updates:
        with _registered(
            con, "_queue_states", pd.DataFrame(updates, columns=["record_id", "stage", "state"], dtype=object)
        ):
            con.execute(query("screening_queue_states_write"), [review_id])
    return len(updates)


def _training_labels(con: duckdb.DuckDBPyConnection, review_id: str) -> dict[str, int]:
    """queue record id -> 1 (passed title/abstract or included) / 0 (excluded), from final decisions."""
    labels = {}
    for rid, ta, ft in con.execute(query("screening_rank_labels"), [review_id]).fetchall():
        if ta in ("include", "maybe") or ft == "include":
            labels[rid] = 1
        elif ta == "exclude" or ft == "exclude":
            labels[rid] = 0
    return labels


def _rules_fingerprint(screening: Screening) -> str:
    import livingmeta.screening.rules as rules

    settings = screening.model_dump(mode="json")
    settings.pop("model", None)
    return hash_json({"settings": settings, "code": hash_json(inspect.getsource(rules))})


def _write_scores(con: duckdb.DuckDBPyConnection, review_id: str, ranker: str, ids, scores, keys) -> None:
    frame = pd.DataFrame({"record_id": list(ids), "score": np.asarray(scores, dtype=float), "scored_key": list(keys)})
    with _registered(con, "_screening_scores", frame.astype({"scored_key": object})):
        con.execute(query("screening_scores_write"), [ranker, review_id, ranker])


def rank_queue(
    con: duckdb.DuckDBPyConnection,
    review_id: str,
    cfg: ReviewConfig | None = None,
    *,
    force: bool = False,
    full: bool = False,
    live: bool = False,
) -> dict:
    """Score the queue of a review (rules, or the model once it can train) and store the scores.

    What it costs follows what changed, not the size of the queue:

    - Rules' scores are stored per queued record version (`screening_queue.rule_score`): only rows without one
      are scored (every row when the rules' settings changed, or with `full`).
    - The model is refitted only when what it learns from changed: the decisions or the model settings
      (`screening_rank_state.inputs`); a decided record whose text changed is scored again, and its new text
      is learnt from at the next refit. Refitting fits the TF-IDF vocabulary once over the
      queue as it is (from texts analysed once per record version, `warehouse.screening_features`) and scores
      every row, exactly as `TfidfVectorizer(...).fit_transform` + `LinearSVC` from scratch would.
    - Between two refits, records that enter the queue or whose text changed are scored by the model that scored
      the rest (kept beside the warehouse: `screening_features.save_model`), exactly as that fitted vectoriser's
      `transform` and the SVM's `decision_function` would; the other rows keep their scores. So a nightly with
      150 new records scores 150 records, and the scores of a queue are comparable with one another.
      If the kept model is gone (cache deleted, in-memory warehouse, a model that ranks by rank), it refits.
    - A ranking with nothing to score is skipped. `force` refits the model anyway; `full` also recomputes every
      rules' score and analyses every text again.

    `live` (the re-rank after a decision, `next_to_screen`) keeps the queue's TF-IDF features, in memory and on
    disk beside the warehouse, so that the next decisions only refit the classifier, and builds them as soon as
    people have started screening, before the model can train. It keeps no model file (one per decision would
    cost more than it saves): the next update after a screening session refits once, and keeps the features
    it fitted on disk (`keep_queue_features`) for the live re-ranks that follow: a queue's TF-IDF vocabulary is
    fitted once, by the update or by the first live re-rank, and reused by the ones after it.

    Returns:
        {"ranker": description, "trained_on": n decisions, "scored": n records scored, "skipped": bool,
         "refit": bool (the model was fitted in this call)}.
    """
    cfg = cfg or review_config(con, review_id)
    screening = cfg.screening if cfg else Screening()
    model = {"name": screening.model.name, "seed": screening.model.seed, **screening.model.params}
    rules_fp = _rules_fingerprint(screening)
    state = next(
        iter(
            con.execute(
                "SELECT inputs, rules, ranker, trained_on, model FROM screening_rank_state WHERE review_id = ?",
                [review_id],
            ).fetchall()
        ),
        None,
    )
    # rule scores: stored per queued version; computed for rows without one (or all, when the rules changed)
    all_rules = full or (state is not None and state[1] != rules_fp)
    todo = con.execute(query("screening_rank_rule_todo"), [review_id, all_rules]).fetchall()
    unstored: dict[str, float] = {}  # rows whose record moved past the queued version: scored, not stored
    if todo:
        recs = load_records(con, [r[0] for r in todo])
        fresh = {rid: (apply_rules(recs[rid], screening).score if rid in recs else 0.0) for rid, _, _ in todo}
        store = [(rid, fresh[rid]) for rid, version, queued in todo if version == queued]
        unstored = {rid: fresh[rid] for rid, version, queued in todo if version != queued}
        if store:
            with _registered(
                con,
                "_rule_scores",
                pd.DataFrame({"record_id": [x for x, _ in store], "rule_score": [float(y) for _, y in store]}),
            ):
                con.execute(query("screening_rule_scores_write"), [review_id])
    label_values = _training_labels(con, review_id)
    inputs = hash_json(
        {
            "labels": sorted(label_values.items()),
            "model": model,
            "min": screening.min_decisions_to_train,
            "ranking": RANKING_VERSION,
        }
    )
    trains = len(label_values) >= screening.min_decisions_to_train and len(set(label_values.values())) == 2
    current = not (force or full) and state is not None and state[0] == inputs and state[2] != RULES_RANKER
    if trains and current:  # checked before the model's imports (scikit-learn): a quiet nightly needs none
        model_todo = con.execute(query("screening_rank_model_todo"), [review_id, state[2]]).fetchall()
        if not model_todo:
            return {"ranker": state[2], "trained_on": int(state[3]), "scored": 0, "skipped": True, "refit": False}
    if trains:
        try:
            from livingmeta.screening.ranking import make_ranker

            ranker = make_ranker(dict(model))
        except ImportError:  # the ranking model is optional: rules still order the queue
            trains = False
    if not trains:
        con.execute(query("screening_rules_rank_write"), [RULES_RANKER, review_id, RULES_RANKER])
        if unstored:
            _write_scores(con, review_id, RULES_RANKER, unstored, unstored.values(), [None] * len(unstored))
        if label_values and live and not full:
            _warm_features(model, lambda r: _queue_features(con, review_id, r, live))
        con.execute(
            query("screening_rank_state_upsert"), [review_id, inputs, rules_fp, RULES_RANKER, 0, _utcnow(), None]
        )
        return {"ranker": RULES_RANKER, "trained_on": 0, "scored": len(todo), "skipped": not todo, "refit": False}
    # the model: score only what the current model has not scored, with the kept model
    if current:
        rows = model_todo
        kept = _kept_model(con, review_id, ranker, state[4]) if state[4] else None
        if kept is not None:
            ids = [r[0] for r in rows]
            texts = {rid: _text(rec) for rid, rec in load_records(con, ids).items()}
            docs = TermCounts.empty().add(((f"{rid}\t{h}", texts.get(rid, "")) for rid, h in rows), ranker.analyzer())
            scores = kept.score(docs.select([f"{rid}\t{h}" for rid, h in rows]))
            _write_scores(con, review_id, state[2], ids, scores, [h for _, h in rows])
            con.execute(
                query("screening_rank_state_upsert"),
                [review_id, inputs, rules_fp, state[2], int(state[3]), _utcnow(), state[4]],
            )
            return {
                "ranker": state[2],
                "trained_on": int(state[3]),
                "scored": len(ids),
                "skipped": False,
                "refit": False,
            }
    # refit: the vocabulary and the classifier over the queue as it is, every row scored
    rows = con.execute(query("screening_rank_rows"), [review_id]).fetchall()
    ids = [r[0] for r in rows]
    hashes = [r[1] or "" for r in rows]
    keys = [f"{rid}\t{h}" for rid, h in zip(ids, hashes)]
    pos = {rid: k for k, rid in enumerate(ids)}
    labels = {pos[rid]: y for rid, y in label_values.items() if rid in pos}
    rule_scores = [float(unstored.get(r[0], r[4]) or 0.0) for r in rows]
    keep = not live and not full and _model_file(con, review_id, ranker) is not None

    def texts() -> list[str]:
        recs = load_records(con, ids)
        return [_text(recs.get(i, {})) for i in ids]

    def documents(rk):
        return queue_documents(
            con,
            review_id,
            keys,
            rk.analysis_key(),
            rk.analyzer(),
            lambda rids: {rid: _text(rec) for rid, rec in load_records(con, rids).items()},
        )

    ranking = rank_records(
        texts,
        labels,
        rule_scores,
        model,
        screening.min_decisions_to_train,
        documents=None if full else documents,
        features=None if (full or keep) else (lambda rk: _queue_features(con, review_id, rk, live, keys)),
        keep_model=keep,
    )
    token = None
    if ranking.model is not None:  # the state row (committed with the scores) names the file's model
        # what the model is a function of (decisions, settings, the queue's documents): a ranking rolled back
        # and run again writes the same model under the same name; another queue's model never matches
        token = f"{inputs[:16]}-{features_fingerprint(keys, ranker)[:32]}"
        save_model(_model_file(con, review_id, ranker), token, ranker.analysis_key(), ranking.model)
        # the live re-ranks after the next decisions start from these features instead of fitting them again
        keep_queue_features(con, review_id, keys, ranker, ranking.features)
    _write_scores(con, review_id, ranking.ranker, ids, ranking.scores, hashes)
    con.execute(
        query("screening_rank_state_upsert"),
        [review_id, inputs, rules_fp, ranking.ranker, ranking.trained_on, _utcnow(), token],
    )
    return {
        "ranker": ranking.ranker,
        "trained_on": ranking.trained_on,
        "scored": len(ids),
        "skipped": False,
        "refit": True,
    }


def _model_file(con: duckdb.DuckDBPyConnection, review_id: str, ranker) -> Path | None:
    try:
        return model_path(con, review_id, ranker.analysis_key())
    except NotImplementedError:  # a model that ranks from texts keeps nothing
        return None


def _kept_model(con: duckdb.DuckDBPyConnection, review_id: str, ranker, token: str):
    path = _model_file(con, review_id, ranker)  # None for a model that ranks from texts, or in memory
    return load_model(path, token, ranker.analysis_key()) if path is not None else None


def _queue_features(con: duckdb.DuckDBPyConnection, review_id: str, ranker, live: bool, keys: list[str] | None = None):
    if keys is None:
        keys = [f"{rid}\t{h or ''}" for rid, h, *_ in con.execute(query("screening_rank_rows"), [review_id]).fetchall()]
    return queue_features(
        con,
        review_id,
        keys,
        ranker,
        lambda rids: {rid: _text(rec) for rid, rec in load_records(con, rids).items()},
        persist=live,
    )


def _warm_features(model: dict, features) -> None:
    """People have started screening but the model cannot train yet: build the queue's features now (once per
    queue), so that the decision that lets it train is answered by refitting the classifier only."""
    try:
        from livingmeta.screening.ranking import make_ranker

        ranker = make_ranker(dict(model))
        ranker.analysis_key()
    except (ImportError, NotImplementedError, ValueError):  # no model, or one that ranks from texts: nothing to keep
        return
    try:
        features(ranker)
    except ValueError:  # no terms at all (e.g. records without text): the model will say so when it trains
        pass


@contextlib.contextmanager
def _registered(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame):
    """A DataFrame visible to SQL under `name` for the duration (one set-based statement instead of a loop)."""
    con.complete()  # a result left half-read (fetchone) would refuse the registration
    con.register(name, frame)
    try:
        yield name
    finally:
        con.unregister(name)


def _latest_update_id(con: duckdb.DuckDBPyConnection, review_id: str) -> int | None:
    row = con.execute("SELECT max(update_id) FROM update_runs WHERE review_id = ?", [review_id]).fetchone()
    return row[0] if row and row[0] is not None else None


def flag_candidates(
    con: duckdb.DuckDBPyConnection, review_id: str, cfg: ReviewConfig, now: dt.datetime, *, full_rank: bool = False
) -> dict:
    """Put new and changed records in the screening queue, rank it, and alert people (one transaction).

    New records enter with their rule reasons (see `livingmeta.screening.queue` for duplicates of studies
    already screened); screened records that changed come back labelled `changed`; a record set aside as a
    duplicate whose study no longer holds an excluded screened record (a person split it off, or relinking
    moved it) is restored to the queue, so a wrong link never drops a record unseen. Re-running changes nothing.
    Ranking touches only what changed (see `rank_queue`; `full_rank` ranks from scratch, with the same result).

    Returns:
        {"new", "duplicates", "new_reports", "out_of_scope", "changed", "restored", "pending", "ranker",
         "alert_id"}.
    """
    screening = cfg.screening
    counts = {"new": 0, "duplicates": 0, "new_reports": 0, "out_of_scope": 0, "changed": 0, "restored": 0}
    with transaction(con):
        new_ids = [r for (r,) in con.execute(query("screening_new_records"), [review_id]).fetchall()]
        studies = _study_states(con, review_id, new_ids)  # before any insert: as the queue was
        # the new records in slices: a first load of 200,000 records never holds all their rows at once
        for start in range(0, len(new_ids), FLAG_BATCH):
            batch = new_ids[start : start + FLAG_BATCH]
            recs = load_records(con, batch)
            inserts = []
            for rid in batch:
                rec = recs[rid]
                rules = apply_rules(rec, screening)
                place = place_new_record(rules.label, studies.get(rid))
                inserts.append(
                    (
                        rid,
                        rec["version"],
                        canonical_json(rules.reasons),
                        place.label,
                        place.note,
                        rules.score,
                        place.stage,
                        place.state,
                    )
                )
                counts["new"] += 1
                counts["duplicates"] += place.state == "duplicate"
                counts["new_reports"] += place.label == "new_report"
                counts["out_of_scope"] += place.label == "out_of_scope"
            del recs
            frame = pd.DataFrame(
                inserts,
                columns=["record_id", "record_version", "reasons", "label", "change_note", "score", "stage", "state"],
            ).astype({"change_note": object})
            with _registered(con, "_queue_new", frame):
                con.execute(query("screening_queue_insert"), [review_id, now, RULES_RANKER])
        restored = _restore_unlinked_duplicates(con, review_id, screening, now)
        counts["restored"] = len(restored)
        changed_back = _requeue_changed(con, review_id, screening, now)
        counts["changed"] = len(changed_back)
        # queue states follow decisions; they are not among the ranking's inputs
        refresh_queue_states(con, review_id)
        ranking = rank_queue(con, review_id, cfg, full=full_rank)
        (pending,) = con.execute("SELECT count(*) FROM v_screening_queue WHERE review_id = ?", [review_id]).fetchone()
        fresh = new_ids + changed_back + restored
        alert_id = None
        if cfg.alerts.rules.on_new_candidates and pending and fresh:
            alert_id = _alert_new_candidates(con, review_id, now, pending, counts, fresh)
    return {**counts, "pending": int(pending), "ranker": ranking["ranker"], "alert_id": alert_id}


def _restore_unlinked_duplicates(
    con: duckdb.DuckDBPyConnection, review_id: str, screening: Screening, now: dt.datetime
) -> list[str]:
    """Duplicates whose study no longer has an excluded screened record go back to people (see flag_candidates)."""
    dups = [
        r
        for (r,) in con.execute(
            "SELECT record_id FROM screening_queue WHERE review_id = ? AND state = 'duplicate' ORDER BY record_id",
            [review_id],
        ).fetchall()
    ]
    if not dups:
        return []
    studies = _study_states(con, review_id, dups)
    recs = load_records(con, [rid for rid in dups if studies.get(rid) is None or studies[rid].status != "excluded"])
    back = []
    for rid, rec in recs.items():
        rules = apply_rules(rec, screening)
        place = place_new_record(rules.label, studies.get(rid))
        note = "no longer linked to an excluded study (set aside as a duplicate before); screen it" + (
            f"; {place.note}" if place.note else ""
        )
        con.execute(
            query("screening_queue_restore"),
            [
                rec["version"],
                now,
                canonical_json(rules.reasons),
                place.label,
                note,
                rules.score,
                RULES_RANKER,
                place.stage,
                place.state,
                rules.score,
                review_id,
                rid,
            ],
        )
        back.append(rid)
    return sorted(back)


def _requeue_changed(
    con: duckdb.DuckDBPyConnection, review_id: str, screening: Screening, now: dt.datetime
) -> list[str]:
    """Records that changed since they entered the queue: screened ones with a change people must see come
    back; for the others only the stored version (and rule reasons) move on."""
    rows = rows_as_dicts(con, query("screening_changed_records"), [review_id])
    recs = load_records(con, [r["record_id"] for r in rows])
    back: list[str] = []
    for r in rows:
        fields: set[str] = set()
        for cf in r["changed_fields"] or []:
            fields.update(json.loads(cf) if isinstance(cf, str) else cf or [])
        events = [json.loads(e) if isinstance(e, str) else e for e in (r["events"] or [])]
        note = describe_change(fields, events)
        rec = recs[r["record_id"]]
        rules = apply_rules(rec, screening)
        reasons = canonical_json(rules.reasons)
        if note and r["screened"] and r["state"] != "duplicate":
            stage = "full_text" if r["passed_ta"] and "full_text" in screening.stages else "title_abstract"
            con.execute(
                query("screening_queue_requeue_changed"),
                [
                    r["version"],
                    now,
                    f"v{r['queued_version']} -> v{r['version']}: {note}",
                    reasons,
                    stage,
                    rules.score,
                    review_id,
                    r["record_id"],
                ],
            )
            back.append(r["record_id"])
        else:
            con.execute(
                query("screening_queue_refresh_version"),
                [r["version"], reasons, rules.score, note, note, review_id, r["record_id"]],
            )
    return back


def _alert_new_candidates(
    con: duckdb.DuckDBPyConnection, review_id: str, now: dt.datetime, pending: int, counts: dict, fresh: list[str]
) -> int | None:
    top = rows_as_dicts(
        con,
        "SELECT record_id, title, label, score FROM v_screening_queue WHERE review_id = ? ORDER BY rank LIMIT ?",
        [review_id, TOP_TITLES],
    )
    update_id = _latest_update_id(con, review_id)
    # one alert per update cycle; outside a cycle, one per set of newly flagged records
    key = (
        f"new_candidates:update:{update_id}"
        if update_id is not None
        else f"new_candidates:{hash_json(sorted(fresh))[:16]}"
    )
    parts = [f"{counts['new'] - counts['duplicates']} new", f"{counts['changed']} changed since screened"]
    body = [
        f"{pending} record(s) wait for screening ({', '.join(parts)}; {counts['duplicates']} set aside as "
        "duplicates of studies already screened). Top ranked:"
    ]
    for k, t in enumerate(top, 1):
        flag = f" [{t['label']}]" if t["label"] not in ("candidate",) else ""
        body.append(f"{k}. {t['title'] or '(no title)'} ({t['record_id']}){flag}")
    body.append(f"Screen them with `livingmeta screen next {review_id}`.")
    return add_alert(
        con,
        review_id=review_id,
        kind="new_candidates",
        severity="info",
        title=f"{pending} record(s) wait for screening in {review_id}",
        body="\n".join(body),
        now=now,
        dedupe_key=key,
    )


# ------------------------------------------------------------------------------------------ decisions


def _review_record_ids(con: duckdb.DuckDBPyConnection, review_id: str) -> set[str]:
    return {
        r for (r,) in con.execute("SELECT record_id FROM review_records WHERE review_id = ?", [review_id]).fetchall()
    }


def _other_reviews(con: duckdb.DuckDBPyConnection, review_id: str, record_ids: list[str]) -> dict[str, list[str]]:
    """For record ids this review does not hold: the other reviews that hold them (to name them in messages)."""
    if not record_ids:
        return {}
    con.register("_decision_unknown_ids", pd.DataFrame({"record_id": record_ids}))
    try:
        rows = con.execute(query("screening_records_other_reviews"), [review_id]).fetchall()
    finally:
        con.unregister("_decision_unknown_ids")
    return {rid: list(reviews) for rid, reviews in rows}


def _stored_decisions(
    con: duckdb.DuckDBPyConnection, review_id: str, record_ids: set[str]
) -> dict[tuple[str, str, str], StoredDecision]:
    """Each reviewer's current decision (undone ones aside) per record and stage, for the given records."""
    if not record_ids:
        return {}
    con.register("_decision_ids", pd.DataFrame({"record_id": sorted(record_ids)}))
    try:
        rows = con.execute(query("screening_current_decisions_of"), [review_id]).fetchall()
    finally:
        con.unregister("_decision_ids")
    return {(r[0], r[1], r[2]): StoredDecision(*r) for r in rows}


def _reviewers(con: duckdb.DuckDBPyConnection, review_id: str) -> int:
    """1 or 2: the review's reviewers per record (v_screening_settings; 1 for a review never registered)."""
    rows = con.execute("SELECT reviewers FROM v_screening_settings WHERE review_id = ?", [review_id]).fetchall()
    return int(rows[0][0]) if rows and rows[0][0] else 1


def _screeners(
    con: duckdb.DuckDBPyConnection, review_id: str, record_ids: set[str]
) -> dict[tuple[str, str], list[tuple[str, dt.datetime]]]:
    """(record, stage) -> (reviewer, first decision time) of everyone who decided it (undone ones aside), earliest
    first: the order `v_stage_final_as_of` takes a two-reviewer record's screeners in."""
    if not record_ids:
        return {}
    con.register("_screener_ids", pd.DataFrame({"record_id": sorted(record_ids)}))
    try:
        rows = con.execute(query("screening_screeners"), [review_id]).fetchall()
    finally:
        con.unregister("_screener_ids")
    out: dict[tuple[str, str], list[tuple[str, dt.datetime]]] = defaultdict(list)
    for rid, stage, who, first in rows:
        out[(rid, stage)].append((who, first))
    return dict(out)


def record_decision(
    con: duckdb.DuckDBPyConnection,
    *,
    review_id: str,
    record_id: str,
    reviewer: str,
    stage: str,
    decision: str,
    reason: str | None,
    origin: str,
    now: dt.datetime,
    decided_at: dt.datetime | None = None,
    key: str | None = None,
) -> int:
    """Append one human decision and update the queue; returns its decision_id.

    `key` makes the call idempotent: a decision already stored with this key (a form sent twice, a retried
    request) is returned as it is and nothing is added (stored in `import_key`, as file imports do).

    The rules of a decision file hold here too (`livingmeta.screening.decisions.check_decision` and
    `plan_against_stored`): a record of this review, a reviewer, a known stage and decision, a reason for a
    full-text exclusion, not dated in the future, and not older than the reviewer's current decision while
    saying something else. Raises DecisionFileError (a ValueError) naming what is wrong; nothing is stored.
    """
    reviewer = (reviewer or "").strip()
    source = f"decision on {record_id}"
    head = f"{source} by {reviewer or '(no reviewer)'}: not recorded"
    with transaction(con):
        if key is not None:
            seen = con.execute(
                "SELECT decision_id FROM screening_decisions WHERE review_id = ? AND import_key = ?", [review_id, key]
            ).fetchone()
            if seen:
                return int(seen[0])
        known = {
            r
            for (r,) in con.execute(
                "SELECT record_id FROM review_records WHERE review_id = ? AND record_id = ?", [review_id, record_id]
            ).fetchall()
        }
        problems = check_decision(
            record_id=record_id,
            reviewer=reviewer,
            stage=stage,
            decision=decision,
            reason=reason,
            decided_at=decided_at,
            now=now,
            is_known=known.__contains__,
        )
        if problems:
            raise refuse(source, problems, head)
        row = DecisionRow(record_id, reviewer, stage, decision, reason or None, decided_at, 0, "")
        plan = plan_against_stored(
            [row],
            _stored_decisions(con, review_id, {record_id}),
            now=now,
            source=source,
            head=head,
            reviewers=_reviewers(con, review_id),
            screeners=_screeners(con, review_id, {record_id}),
        )
        if plan.unchanged:
            # an older word repeating the current one changes nothing: report the current decision
            (did,) = con.execute(
                "SELECT decision_id FROM v_current_decisions WHERE review_id = ? AND record_id = ? "
                "AND stage = ? AND reviewer = ?",
                [review_id, record_id, stage, reviewer],
            ).fetchone()
            return int(did)
        ver = con.execute("SELECT version FROM records WHERE record_id = ?", [record_id]).fetchone()
        (did,) = con.execute(
            query("screening_decision_insert"),
            [
                review_id,
                record_id,
                ver[0] if ver else None,
                reviewer,
                decided_at or now,
                stage,
                decision,
                reason or None,
                origin,
                now,
                key,
            ],
        ).fetchone()
        refresh_queue_states(con, review_id)
    return int(did)


def undo_decision(
    con: duckdb.DuckDBPyConnection,
    *,
    review_id: str,
    decision_id: int,
    reviewer: str,
    now: dt.datetime,
    origin: str = "terminal",
) -> None:
    """Retract one decision (a new row in screening_undos; the decision itself stays on record)."""
    with transaction(con):
        row = con.execute(
            "SELECT reviewer FROM screening_decisions WHERE decision_id = ? AND review_id = ?", [decision_id, review_id]
        ).fetchone()
        if row is None:
            raise ValueError(f"no decision {decision_id} in review {review_id!r}")
        if row[0] != reviewer:
            raise ValueError(f"decision {decision_id} was made by {row[0]!r}; only they can undo it")
        con.execute(
            "INSERT INTO screening_undos (review_id, decision_id, reviewer, undone_at, origin) VALUES (?, ?, ?, ?, ?)",
            [review_id, decision_id, reviewer, now, origin],
        )
        refresh_queue_states(con, review_id)


def import_decisions(
    con: duckdb.DuckDBPyConnection,
    review_id: str,
    path: str | Path,
    origin: str = "import",
    *,
    reviewer: str | None = None,
    stage: str | None = None,
    now: dt.datetime | None = None,
) -> dict:
    """Import a decision file (native CSV or ASReview LAB export) all-or-nothing.

    The whole file is validated first (`livingmeta.screening.decisions.validate_decision_file`: every row,
    contradictions inside the file, dates in the future, records of other reviews), then compared with the
    stored decisions (`plan_against_stored`) and written in one transaction. A file with any problem is
    refused whole: DecisionFileError lists every problem and nothing is written.

    Args:
        path: the CSV file (or ASReview LAB's RIS export).
        origin: stored with each decision ("import", "demo"; ASReview files are stored as "asreview" when
            origin is "import").
        reviewer: who decided (required for ASReview files; fills blank reviewer cells).
        stage: stage for rows without one (default title_abstract).
        now: the import time (default: the clock); decisions dated more than a day after it are refused.
    Returns:
        {"file", "format", "rows", "added", "already_imported", "duplicates", "unchanged", "replaced",
        "ranker"} — `rows` decisions read = added + already_imported (rows of an earlier import of this file)
        + duplicates (repeats inside the file, stored once) + unchanged (older than the reviewer's stored
        decision and saying the same); `priors`: ASReview labels that only repeat what livingmeta exported
        (ASReview's prior knowledge, not read as anyone's decision, not counted in `rows`); `replaced`: added
        rows that change a reviewer's earlier decision;
        `ranker`: the ranker the queue was re-ranked with (None when nothing was added).
    Raises:
        DecisionFileError: every problem (file, line, column, record id); nothing is stored.
        FileNotFoundError: the file does not exist.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such decision file")
    now = now or _utcnow()
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DecisionFileError(
            f"{p}: not UTF-8 text (byte {e.start}); save the CSV as UTF-8 and import again"
        ) from None
    with transaction(con):
        known = _review_record_ids(con, review_id)
        if not known:
            raise DecisionFileError(
                f"{p}: review {review_id!r} has no records yet; run an update before importing decisions"
            )
        dois = {}
        for rid, doi in con.execute(query("screening_review_dois"), [review_id]).fetchall():
            d = normalise_doi(doi)
            if d:
                dois.setdefault(d, rid)
        checked = validate_decision_file(
            text,
            source=str(p),
            is_known=known.__contains__,
            now=now,
            reviewer=reviewer,
            stage=stage,
            doi_to_record=dois,
            elsewhere=lambda ids: _other_reviews(con, review_id, ids),
            export_labels=lambda export_id: _export_labels(con, review_id, export_id),
        )
        stored_origin = "asreview" if checked.format.startswith("asreview") and origin == "import" else origin
        seen = {
            k
            for (k,) in con.execute(
                "SELECT import_key FROM screening_decisions WHERE review_id = ? AND import_key IS NOT NULL", [review_id]
            ).fetchall()
        }
        fresh = [r for r in checked.rows if r.import_key not in seen]
        ids = {r.record_id for r in fresh}
        plan = plan_against_stored(
            fresh,
            _stored_decisions(con, review_id, ids),
            now=now,
            source=str(p),
            reviewers=_reviewers(con, review_id),
            screeners=_screeners(con, review_id, ids),
        )
        versions = dict(
            con.execute(
                "SELECT r.record_id, r.version FROM records r JOIN review_records rr USING (record_id) "
                "WHERE rr.review_id = ?",
                [review_id],
            ).fetchall()
        )
        add = [
            (
                review_id,
                r.record_id,
                versions.get(r.record_id),
                r.reviewer,
                r.decided_at or now,
                r.stage,
                r.decision,
                r.reason,
                stored_origin,
                r.import_key,
                now,
            )
            for r in plan.add
        ]
        if add:
            con.executemany(query("screening_decision_import"), add)
            refresh_queue_states(con, review_id)
            # the decisions changed: retrain now, so the queue order and the ranker `status` names match them
            ranking = rank_queue(con, review_id)
    return {
        "file": str(p),
        "format": checked.format,
        "rows": checked.read,
        "added": len(add),
        "already_imported": len(checked.rows) - len(fresh),
        "duplicates": len(checked.duplicates),
        "unchanged": len(plan.unchanged),
        "replaced": len(plan.replaces),
        "priors": len(checked.priors),
        "ranker": ranking["ranker"] if add else None,
    }


def _export_labels(con: duckdb.DuckDBPyConnection, review_id: str, export_id: int) -> dict[str, int] | None:
    """record id -> label that export of this review carried (None: the review has no such export)."""
    if not con.execute(
        "SELECT 1 FROM screening_exports WHERE export_id = ? AND review_id = ?", [export_id, review_id]
    ).fetchall():
        return None
    return dict(
        con.execute("SELECT record_id, label FROM screening_export_labels WHERE export_id = ?", [export_id]).fetchall()
    )


# ------------------------------------------------------------------------------------- people's views


def records_to_screen(con: duckdb.DuckDBPyConnection, review_id: str, reviewer: str, stage: str) -> list[dict]:
    """Pending records at a stage that this reviewer has not decided yet, best first, with their fields."""
    rows = rows_as_dicts(con, query("screening_next"), [review_id, stage, reviewer])
    recs = load_records(con, [r["record_id"] for r in rows])
    for r in rows:
        rec = recs.get(r["record_id"], {})
        r["reasons"] = json.loads(r["reasons"]) if isinstance(r["reasons"], str) else (r["reasons"] or [])
        for k in ("abstract", "authors", "publication_types", "registry_ids", "doi", "mesh", "keywords"):
            r[k] = rec.get(k)
    return rows


def next_to_screen(
    con: duckdb.DuckDBPyConnection,
    review_id: str,
    reviewer: str,
    stage: str = "title_abstract",
    *,
    skip: Iterable[str] = (),
    cfg: ReviewConfig | None = None,
) -> dict | None:
    """Live re-ranking: the record this reviewer should screen next, ranked by a model that has seen every decision.

    The terminal (`livingmeta screen next`) and the web app call it after each decision. The queue is re-ranked
    first when its records, decisions or settings changed since it was last ranked (`rank_queue`: the TF-IDF
    features are built at most once per queue and kept, `warehouse.screening_features.queue_features`, so a
    re-rank refits only the classifier); the new scores are stored, so the order survives a restart and
    `status` names the ranker that produced it. One transaction: a concurrent writer either sees the whole
    re-rank or none of it (DuckDB refuses the later of two conflicting transactions; call again).

    Args:
        reviewer: who screens (records they decided since the record (re-)entered the queue are left out).
        stage: title_abstract | full_text.
        skip: record ids to pass over (skipped in this session).
        cfg: the review's settings (default: those stored with the review).
    Returns:
        the record as `records_to_screen` gives it (queue fields, rank, score, ranker, reasons, abstract, ...),
        plus "waiting" (how many records wait for this reviewer at this stage, skipped ones included); None
        when nothing else waits.
    """
    with transaction(con):
        rank_queue(con, review_id, cfg, live=True)
        skipped = sorted(set(skip))
        rows = rows_as_dicts(con, query("screening_next_one"), [skipped, review_id, stage, reviewer])
    if not rows:
        return None
    r = rows[0]
    rec = load_records(con, [r["record_id"]]).get(r["record_id"], {})
    r["reasons"] = json.loads(r["reasons"]) if isinstance(r["reasons"], str) else (r["reasons"] or [])
    for k in (
        "abstract",
        "authors",
        "publication_types",
        "registry_ids",
        "doi",
        "mesh",
        "keywords",
        "source_id",
        "retracted",
        "extra",
    ):  # the web app shows links, retraction and registry status too
        r[k] = rec.get(k)
    r["waiting"] = int(r["waiting"])
    return r


def conflict_details(con: duckdb.DuckDBPyConnection, review_id: str) -> list[dict]:
    """Each open conflict with both reviewers' current decisions and reasons side by side (for leads)."""
    out = []
    for c in list_conflicts(con, review_id):
        c["sides"] = rows_as_dicts(
            con,
            "SELECT reviewer, decision, reason, decided_at FROM v_current_decisions WHERE review_id = ? "
            "AND record_id = ? AND stage = ? ORDER BY decided_at, reviewer",
            [review_id, c["record_id"], c["stage"]],
        )
        out.append(c)
    return out


def kappa_by_pair(con: duckdb.DuckDBPyConnection, review_id: str, stage: str = "title_abstract") -> list[dict]:
    """Cohen's kappa for every pair of reviewers over the records both decided at a stage (first decisions,
    undone ones aside, as `screening_kappa`)."""
    first = _first_decisions(con, review_id, stage)
    people = sorted({w for d in first.values() for w in d})
    out = []
    for i, a in enumerate(people):
        for b in people[i + 1 :]:
            pairs = [(d[a], d[b]) for d in first.values() if a in d and b in d]
            if pairs:
                out.append({"a": a, "b": b, "records": len(pairs), "kappa": cohen_kappa(pairs)})
    return out


def list_conflicts(con: duckdb.DuckDBPyConnection, review_id: str) -> list[dict]:
    """Two-reviewer disagreements waiting for a third decision: record, stage, each reviewer's decision, title."""
    return rows_as_dicts(
        con,
        "SELECT record_id, stage, decisions, title FROM v_screening_conflicts WHERE review_id = ? "
        "ORDER BY stage DESC, record_id",
        [review_id],
    )


def _first_decisions(con: duckdb.DuckDBPyConnection, review_id: str, stage: str) -> dict[str, dict[str, str]]:
    """Per record, each reviewer's FIRST decision at a stage (undone ones aside), reviewers in the order they
    first decided."""
    rows = con.execute(query("screening_kappa_decisions"), [review_id, stage]).fetchall()
    first: dict[str, dict[str, str]] = defaultdict(dict)
    for rid, who, decision in rows:
        first[rid].setdefault(who, decision)
    return dict(first)


def screening_kappa(con: duckdb.DuckDBPyConnection, review_id: str, stage: str = "title_abstract") -> float | None:
    """Cohen's kappa between the first two reviewers of each record at a stage (None when no record has two).

    Each reviewer's FIRST decision counts (undone ones aside): kappa measures independent screening, so a
    change of mind after the two compared notes must not raise it.
    """
    pairs = [tuple(list(a.values())[:2]) for a in _first_decisions(con, review_id, stage).values() if len(a) >= 2]
    return cohen_kappa(pairs)


def export_records(con: duckdb.DuckDBPyConnection, review_id: str) -> list[dict]:
    """The review's queue records (duplicates left out) with their title/abstract label, for CSV/RIS export.

    `record_id` numbers rows 1..n (ASReview LAB expects its own row ids); `livingmeta_id` carries our id so
    ASReview's export maps back; `included` is 1 / 0 / blank from the final title/abstract decision: 1 passed
    title/abstract (an include, or a maybe that went on to a full-text decision), 0 excluded, blank not decided
    or "maybe" (ASReview has no maybe: it is left for the person screening there to decide, never sent as an
    include); `decision` is that final title/abstract decision. `record_export` stores what a file carried.
    In a two-reviewer review `included` is always blank: ASReview LAB takes those labels as prior knowledge
    and writes them back in its export, where they would be imported as the second reviewer's own decisions
    (agreement nobody gave); screening stays blind instead.
    """
    blind = _screening_settings(con, review_id).reviewers == 2
    rows = rows_as_dicts(con, query("screening_export"), [review_id])
    recs = load_records(con, [r["livingmeta_id"] for r in rows])
    out = []
    for k, r in enumerate(rows, 1):
        rec = recs.get(r["livingmeta_id"], {})
        label = r["label_ta"]
        out.append(
            {
                "record_id": k,
                "livingmeta_id": r["livingmeta_id"],
                "title": rec.get("title") or "",
                "abstract": rec.get("abstract") or "",
                "authors": "; ".join(rec.get("authors") or []),
                "year": rec.get("year") or "",
                "journal": rec.get("journal") or "",
                "doi": rec.get("doi") or "",
                "keywords": "; ".join(rec.get("keywords") or []),
                "included": "" if label is None or blind else (1 if label == 1 else 0),
                "decision": r["decision_ta"],
                "source": rec.get("source"),
                "source_id": rec.get("source_id"),
                "keywords_list": rec.get("keywords") or [],
                "authors_list": rec.get("authors") or [],
            }
        )
    return out


def record_export(con: duckdb.DuckDBPyConnection, review_id: str, rows: list[dict], fmt: str, now: dt.datetime) -> int:
    """Store what an export carries (its labels), so a file coming back is read against it; returns its id.

    Args:
        rows: `export_records` rows as written to the file.
        fmt: csv | ris.
    Returns:
        the export id, to be written into the file (CSV column / RIS note `livingmeta_export`).
    """
    with transaction(con):
        (export_id,) = con.execute(
            "INSERT INTO screening_exports (review_id, exported_at, format, n_records) "
            "VALUES (?, ?, ?, ?) RETURNING export_id",
            [review_id, now, fmt, len(rows)],
        ).fetchone()
        labelled = [
            (export_id, r["livingmeta_id"], int(r["included"]), "include" if int(r["included"]) else "exclude")
            for r in rows
            if r["included"] != ""
        ]
        if labelled:
            con.executemany("INSERT INTO screening_export_labels VALUES (?, ?, ?, ?)", labelled)
    return int(export_id)


def screening_status(con: duckdb.DuckDBPyConnection, review_id: str) -> dict:
    """Screening progress and stopping guidance (read-only; `livingmeta status` prints `guidance`).

    Returns:
        {"screened", "included" (studies included at full text), "excluded" (records excluded at either
        stage), "pending", "conflicts", "kappa", "since_last_include", "expected_remaining", "ranker",
        "changed_waiting", "awaiting_full_text", "stopping" (`stopping_status`), "guidance": [lines]}.
    """
    p = rows_as_dicts(con, "SELECT * FROM v_prisma_counts WHERE review_id = ?", [review_id])
    p = p[0] if p else {}
    (pending,) = con.execute(
        "SELECT count(*) FROM v_screening_queue WHERE review_id = ? AND stage = 'title_abstract'", [review_id]
    ).fetchone()
    (changed,) = con.execute(
        "SELECT count(*) FROM v_screening_queue WHERE review_id = ? AND label = 'changed'", [review_id]
    ).fetchone()
    (conflicts,) = con.execute("SELECT count(*) FROM v_screening_conflicts WHERE review_id = ?", [review_id]).fetchone()
    ranker_row = con.execute(
        "SELECT any_value(ranker) FROM screening_queue WHERE review_id = ?", [review_id]
    ).fetchone()
    ranker = ranker_row[0] if ranker_row and ranker_row[0] else RULES_RANKER
    order = [
        1 if d in ("include", "maybe") else 0
        for (d,) in con.execute(query("screening_title_abstract_decisions"), [review_id]).fetchall()
    ]
    kappa = screening_kappa(con, review_id)
    expected = estimate_remaining(order, int(pending))
    since = since_last_include(order)
    screened = int(p.get("screened") or 0)
    status = {
        "screened": screened,
        "included": int(p.get("included_studies") or 0),
        "excluded": int(p.get("excluded_title_abstract") or 0) + int(p.get("excluded_full_text") or 0),
        "pending": int(pending),
        "conflicts": int(conflicts),
        "kappa": kappa,
        "since_last_include": since,
        "expected_remaining": expected,
        "ranker": ranker,
        "changed_waiting": int(changed),
        "awaiting_full_text": int(p.get("awaiting_full_text") or 0),
    }
    status["guidance"] = stopping_guidance(
        screened=screened,
        pending=int(pending),
        conflicts=int(conflicts),
        kappa=kappa,
        since_include=since,
        expected=expected,
        ranker=ranker,
        awaiting_full_text=status["awaiting_full_text"],
        changed=int(changed),
        review=review_id,
    )
    status["stopping"] = stopping_status(con, review_id)
    if screened:
        status["guidance"] += stopping_lines(status["stopping"], review_id, since_include=since)
    return status


def stopping_status(con: duckdb.DuckDBPyConnection, review_id: str) -> dict:
    """The recall-target stopping rule on the review as it stands (`livingmeta.screening.stopping.review_stopping`).

    A record counts for the random sample when its first title/abstract decision was made on a random draw
    (origin 'sample', `livingmeta screen next REVIEW --sample`); its outcome is its final title/abstract
    decision (the latest one while two reviewers have not agreed), include or maybe counting as an include.
    """
    decided = [
        DecidedRecord(
            label=1 if (final or latest) in ("include", "maybe") else 0,
            sampled=origin == SAMPLE_ORIGIN,
            decided_at=first_at,
        )
        for _rid, first_at, origin, latest, final in con.execute(
            "SELECT d.record_id, min(d.decided_at), arg_min(d.origin, (d.decided_at, d.decision_id)), "
            "arg_max(d.decision, (d.decided_at, d.decision_id)), any_value(f.title_abstract) "
            "FROM v_current_decisions d LEFT JOIN v_record_screening f USING (review_id, record_id) "
            "WHERE d.review_id = ? AND d.stage = 'title_abstract' GROUP BY d.record_id",
            [review_id],
        ).fetchall()
    ]
    waiting = [
        t
        for (t,) in con.execute(
            "SELECT q.entered_at FROM v_screening_queue q WHERE q.review_id = ? AND q.stage = 'title_abstract' "
            "AND NOT EXISTS (SELECT 1 FROM v_current_decisions d WHERE d.review_id = q.review_id "
            "AND d.record_id = q.record_id AND d.stage = 'title_abstract')",
            [review_id],
        ).fetchall()
    ]
    return review_stopping(decided, waiting)


def prisma_by_version(con: duckdb.DuckDBPyConnection, review_id: str) -> list[dict]:
    """PRISMA 2020 counts of every version of a review, each shaped as previous / new / total."""
    rows = rows_as_dicts(con, "SELECT * FROM v_prisma_by_version WHERE review_id = ? ORDER BY version", [review_id])
    out, previous = [], None
    for r in rows:
        out.append(shape_prisma(r, previous))
        previous = r
    return out


_PRISMA_COLUMNS = (
    "identified_pubmed",
    "identified_ctgov",
    "identified_total",
    "duplicates_removed",
    "screened",
    "excluded_title_abstract",
    "full_text_sought",
    "full_text_assessed",
    "excluded_full_text",
    "excluded_full_text_reasons",
    "included_reports",
    "included_studies",
    "awaiting_full_text",
)


def freeze_prisma(con: duckdb.DuckDBPyConnection, review_id: str, version: int, now: dt.datetime) -> dict:
    """Store a review version's PRISMA counts as they stand now, so later merges or splits never rewrite them.

    Call it right after the version's `review_versions` row is written (inside that transaction or just after
    it: this is one INSERT and opens no transaction of its own). The counts are those of `v_prisma_as_of` at
    the version's created_at; a version frozen once keeps its first row (re-running is safe).

    Returns:
        the frozen counts ({"version", "frozen": True if this call stored them, ...counts}).
    Raises:
        ValueError: the review has no such version.
    """
    cols = ", ".join(_PRISMA_COLUMNS)
    exists = con.execute(
        "SELECT 1 FROM review_versions WHERE review_id = ? AND version = ?", [review_id, version]
    ).fetchone()
    if not exists:
        raise ValueError(
            f"review {review_id!r} has no version {version}; create the version before freezing its PRISMA counts"
        )
    stored = con.execute(query("screening_freeze_prisma").format(cols=cols), [now, review_id, version]).fetchall()
    out = rows_as_dicts(
        con, f"SELECT version, {cols} FROM prisma_versions WHERE review_id = ? AND version = ?", [review_id, version]
    )[0]
    return {**out, "frozen": bool(stored)}


__all__ = [
    "DecisionFileError",
    "export_records",
    "flag_candidates",
    "record_export",
    "freeze_prisma",
    "import_decisions",
    "list_conflicts",
    "load_records",
    "next_to_screen",
    "prisma_by_version",
    "rank_queue",
    "record_decision",
    "records_to_screen",
    "refresh_queue_states",
    "review_config",
    "screening_kappa",
    "screening_status",
    "undo_decision",
]
