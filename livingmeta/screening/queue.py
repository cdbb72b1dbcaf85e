"""The screening queue: which records people see, in which order, and why.

Decisions taken here (documented for reviewers):

* A new record whose study (`study_links`) already has a screened record is not screened again from
  scratch. If that study is already excluded, the record is set aside as a **duplicate** (state
  `duplicate`, counted once in PRISMA as "duplicates removed", note naming the screened record). If the
  study is included or still in play (passed title/abstract), the new record is a **new report** of it:
  it goes straight to the full-text stage (label `new_report`), because a new publication or registry
  entry of a trial we keep may carry new data or corrections that someone must read; the study itself is
  counted once (PRISMA "studies included" counts studies, "reports" counts records).
* A screened record that changed in a way people must see (retraction, withdrawal, erratum or other
  correction notice, new title/abstract or PMID version, registry status change, results posted) comes
  back (label `changed`, a note saying what changed) at the stage it had reached. Its earlier decisions
  stay in force until someone decides again. Changes people need not see (MeSH indexing added later,
  registry bookkeeping dates) only update the stored version.
* Ranking: rules order the queue until there are `min_decisions_to_train` title/abstract decisions with
  at least one include and one exclude; then the review's ranking model (active learning) does, retrained
  from all current decisions each time the queue is ranked (deterministic given the model seed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# fields whose change brings a screened record back to people
SIGNIFICANT_FIELDS = {
    "retracted": "retracted",
    "deleted": "withdrawn by the source",
    "corrections": "correction notices changed (erratum, retraction, expression of concern)",
    "title": "title changed",
    "abstract": "abstract changed",
    "source_version": "new source version",
    "publication_types": "publication types changed",
}
EVENT_TEXT = {
    "status_change": "registry status {old} -> {new}",
    "results_posted": "results posted{new_on}",
    "retracted": "retracted",
    "deleted": "withdrawn by the source",
}

# ranker label while rules alone order the queue
RULES_RANKER = "rules"
# title/abstract decisions the recent include rate is measured over (stopping guidance)
RECENT_WINDOW = 50


@dataclass
class StudyState:
    """What is known about a record's study from its other, already screened records.

    Attributes:
        study_id: the study.
        screened_record: one screened record of the study (for the note).
        status: "excluded" (all screened records finally excluded) or "in_play" (some record included or
            passed title/abstract, or still undecided after a decision).
        detail: the decision text shown in the note, e.g. "excluded at full text: wrong comparator".
    """

    study_id: str
    screened_record: str
    status: str
    detail: str = ""


@dataclass
class Placement:
    """Where a new record goes: state, stage, label and a note."""

    state: str = "pending"
    stage: str = "title_abstract"
    label: str = "candidate"
    note: str | None = None


def place_new_record(rule_label: str, study: StudyState | None) -> Placement:
    """Decide how a record that is new to the review's queue enters it (see the module docstring).

    Args:
        rule_label: the rules' label for the record ("candidate" | "out_of_scope").
        study: the record's study when another record of it was already screened, else None.
    Returns:
        the Placement (state pending|duplicate, stage, label, note).
    """
    if study is None:
        return Placement(label=rule_label)
    if study.status == "excluded":
        return Placement(
            state="duplicate",
            label="duplicate",
            note=f"same study as {study.screened_record} ({study.study_id}), already {study.detail}; "
            "not screened again",
        )
    return Placement(
        stage="full_text",
        label="new_report",
        note=f"new report of study {study.study_id} (screened via {study.screened_record}: {study.detail}); "
        "read the full text for new data or corrections",
    )


def describe_change(changed_fields: Iterable[str], events: Iterable[Mapping[str, Any]]) -> str | None:
    """What changed in a screened record, in words, when people must look again.

    Args:
        changed_fields: names of Record fields that changed since the version people saw
            (union of `record_versions.changed_fields`).
        events: registry events since then (`kind`, `old_value`, `new_value`).
    Returns:
        a note such as "retracted; registry status RECRUITING -> COMPLETED", or None when nothing that
        matters to a screener changed.
    """
    parts: list[str] = []
    for e in events:
        kind = e.get("kind")
        template = EVENT_TEXT.get(kind)
        if template:
            new_on = f" ({e.get('new_value')})" if kind == "results_posted" and e.get("new_value") else ""
            text = template.format(old=e.get("old_value") or "?", new=e.get("new_value") or "?", new_on=new_on)
            if text not in parts:
                parts.append(text)
    for f in sorted(set(changed_fields)):
        text = SIGNIFICANT_FIELDS.get(f)
        if text and text not in parts and not (f == "retracted" and "retracted" in parts):
            parts.append(text)
    return "; ".join(parts) if parts else None


@dataclass
class Ranking:
    """Scores for the texts given, and which ranker produced them."""

    scores: np.ndarray
    ranker: str
    trained_on: int = 0
    notes: list[str] = field(default_factory=list)
    model: Any = None  # the trained model (`ScoringModel`), when asked to keep it and the ranker can
    features: Any = None  # with `model`: the queue's features it was fitted on (`Ranker.features_from_counts`)


def rank_records(
    texts: Sequence[str] | Callable[[], Sequence[str]],
    labels: Mapping[int, int],
    rule_scores: Sequence[float],
    model: Mapping[str, Any],
    min_decisions: int,
    documents: Callable[[Any], Any] | None = None,
    features: Callable[[Any], Any] | None = None,
    keep_model: bool = False,
) -> Ranking:
    """Score the queue: rules until the model can learn, then the review's ranking model.

    Args:
        texts: title + abstract of every record of the queue, in a fixed order (or a function returning them,
            called only when the model ranks from texts).
        documents: optional function ranker -> the queue's documents already analysed with `ranker.analyzer()`
            (`livingmeta.screening.features.TermCounts`, same order as `rule_scores`); the model then ranks
            from them (`Ranker.fit_rank_counts`, the same scores as from the texts) instead of analysing texts.
        labels: position -> 1 (passed title/abstract or included) / 0 (excluded) for decided records.
        rule_scores: the rules score per text (used before the model can train).
        model: `[screening.model]` as a dict: name, seed and model parameters.
        min_decisions: `min_decisions_to_train`.
        features: optional function ranker -> the queue's features (`Ranker.features_from_counts`, e.g. kept
            from an earlier ranking of the same queue); the model is then only refitted on them
            (`Ranker.fit_rank_features`, the same scores). Takes precedence over `documents`.
        keep_model: when ranking from `documents`, also return the trained model (`Ranking.model`,
            `Ranker.fit_rank_counts_model`) for models that can score later records with it.
    Returns:
        Ranking with one score per text (higher = screen first) and the ranker's description ("rules", or
        e.g. "tfidf-svm (C=0.11, balanced 9.8) trained on 12 decisions").
    """
    rules = Ranking(scores=np.asarray(rule_scores, dtype=float), ranker=RULES_RANKER)
    try:
        from livingmeta.screening.ranking import can_train, make_ranker
    except ImportError:  # the ranking model is optional: rules still order the queue
        rules.notes.append("ranking model unavailable; rules rank the queue")
        return rules
    if len(labels) < min_decisions or not can_train(labels):
        return rules
    ranker = make_ranker(dict(model))
    if features is not None:
        try:
            ranker.analysis_key()
            feats = features(ranker)
        except NotImplementedError:
            feats = None
        if feats is not None:
            scores = np.asarray(ranker.fit_rank_features(feats, dict(labels)), dtype=float)
            return Ranking(scores=scores, ranker=ranker.describe(), trained_on=len(labels))
    docs = None
    if documents is not None:
        try:
            ranker.analysis_key()
            docs = documents(ranker)
        except NotImplementedError:  # a model that only ranks from texts
            docs = None
    if docs is not None and keep_model:
        try:
            scores, kept, feats = ranker.fit_rank_counts_model(docs, dict(labels))
        except NotImplementedError:
            kept = None
        if kept is not None:
            return Ranking(
                scores=np.asarray(scores, dtype=float),
                ranker=ranker.describe(),
                trained_on=len(labels),
                model=kept,
                features=feats,
            )
    if docs is not None:
        scores = np.asarray(ranker.fit_rank_counts(docs, dict(labels)), dtype=float)
    else:
        scores = np.asarray(ranker.fit_rank(list(texts() if callable(texts) else texts), dict(labels)), dtype=float)
    return Ranking(scores=scores, ranker=ranker.describe(), trained_on=len(labels))


def estimate_remaining(recent_labels: Sequence[int], n_pending: int, window: int = RECENT_WINDOW) -> float | None:
    """A simple upper estimate of includes still unfound among the records waiting.

    The queue shows the likeliest records first, so the share of includes among the last `window`
    title/abstract decisions is at least the share among the records still waiting; pending × that share
    is therefore an upper estimate (it falls to 0 after a long run of excludes). This is the "recent
    inclusion rate" heuristic used as a stopping signal in active-learning screening (cf. Boetje J,
    van de Schoot R. The SAFE procedure. Syst Rev 2024;13:81).

    Args:
        recent_labels: title/abstract outcomes in decision order (1 passed, 0 excluded), oldest first.
        n_pending: records still waiting for a title/abstract decision.
        window: how many of the latest decisions to measure the rate over.
    Returns:
        the estimate (float), or None before any decision.
    """
    if not recent_labels:
        return None
    last = list(recent_labels)[-window:]
    return n_pending * (sum(last) / len(last))


def since_last_include(labels_in_order: Sequence[int]) -> int:
    """Decisions made since the latest include (all of them when nothing was included yet)."""
    n = 0
    for v in reversed(list(labels_in_order)):
        if v == 1:
            return n
        n += 1
    return n


def stopping_guidance(
    *,
    screened: int,
    pending: int,
    conflicts: int,
    kappa: float | None,
    since_include: int,
    expected: float | None,
    ranker: str,
    awaiting_full_text: int = 0,
    changed: int = 0,
    review: str = "REVIEW",
) -> list[str]:
    """Lines for people: where screening stands and whether it is reasonable to stop.

    Args:
        screened, pending, conflicts, awaiting_full_text, changed: counts from the warehouse.
        kappa: Cohen's kappa of two-reviewer title/abstract decisions (None when not applicable).
        since_include: decisions since the latest include.
        expected: `estimate_remaining` (None before any decision).
        ranker: the ranker in use.
        review: the review id, for the commands suggested.
    Returns:
        short sentences, most important first.
    """
    lines = [f"screening: {screened} screened, {pending} waiting (ranked by {ranker})"]
    if changed:
        lines.append(f"{changed} screened record(s) changed and are back in the queue: check them first")
    if conflicts:
        lines.append(
            f"{conflicts} conflict(s) between reviewers: `livingmeta screen conflicts {review}`; "
            "a third reviewer's decision resolves each"
        )
    if kappa is not None:
        lines.append(f"agreement between reviewers: Cohen's kappa {kappa:.2f}")
    if awaiting_full_text:
        lines.append(
            f"{awaiting_full_text} record(s) passed title/abstract and wait for a full-text decision "
            f"(`livingmeta screen next {review} --stage full_text`)"
        )
    if pending == 0:
        lines.append("nothing waits for title/abstract screening")
    elif expected is not None:
        lines.append(
            f"{since_include} decision(s) since the last include; the recent include rate suggests at most "
            f"about {expected:.1f} include(s) among the {pending} waiting"
        )
        if since_include >= RECENT_WINDOW and expected < 1:
            lines.append(
                f"no include in the last {since_include} decisions: a heuristic, which promises no recall; "
                "the stopping rule below says when a random sample shows the recall target is met"
            )
    else:
        lines.append(f"no decisions yet: start with `livingmeta screen next {review}`")
    return lines
