"""Incremental flagging and ranking give exactly what flagging and ranking from scratch give.

First the features: texts analysed once (`TermCounts`) and turned into TF-IDF (`tfidf_matrix`) are bit for bit
scikit-learn's `TfidfVectorizer.fit_transform`, and every ranker scores them exactly as from the texts; a kept
model (`Vocabulary`, `ScoringModel`) scores later texts exactly as the fitted vectoriser's `transform` and the
SVM's `decision_function`. Then two real warehouses go through the same update cycles (records through the real
ingest path, linking, flagging, people's decisions): one links incrementally and ranks from the stored rule
scores, the analysed texts and the kept model; the other relinks everything and ranks from scratch (rules over
every record, every text analysed again, the model refitted). After every cycle every link row, alert and queue
row must be equal. Scores are equal too whenever the decisions changed (both refit); in a cycle where they did
not, the incremental warehouse keeps the scores of the records it had scored and scores the new and changed
ones with the model it has, and every score is checked against scikit-learn fitted from scratch at the last
change of the decisions.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from livingmeta.config import load_review
from livingmeta.records import Record
from livingmeta.screening.features import SortedTerms, TermCounts, fit_tfidf, tfidf_matrix
from livingmeta.screening.ranking import _balanced_weights, make_ranker
from warehouse import opened
from warehouse.ingest import Fetched, finish_search_run, start_search_run
from warehouse.linking import record_link_decision, relink
from warehouse.reviews import upsert_review
from warehouse.screening import flag_candidates, import_decisions, rank_queue, record_decision
from warehouse.screening_features import cache_path, load_model, save_model

WORDS = ("immunoglobulin intravenous neuropathy painful small fibre diabetic trial randomised placebo controlled "
         "chronic inflammatory pregabalin duloxetine adults children outcome efficacy safety dose weeks responders "
         "pain relief mice rats guillain-barre kawasaki review cohort registry the of and in a").split()
WORDS += [f"term{i}" for i in range(200)]


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 40))) for _ in range(n)]
    out[3] = ""  # a record without title or abstract
    out[4] = "Éléphant café naïve ÉTUDE"  # accents and case
    return out


@pytest.mark.parametrize("ngram_max", [1, 2])
def test_term_counts_give_tfidfvectorizer_bit_for_bit(ngram_max):
    texts = _texts(300, ngram_max)
    ref = TfidfVectorizer(ngram_range=(1, ngram_max), sublinear_tf=True, max_df=0.95, min_df=1).fit_transform(texts)
    analyzer = TfidfVectorizer(ngram_range=(1, ngram_max)).build_analyzer()
    keys = [f"k{i}" for i in range(len(texts))]
    # analysed in three batches, out of order, one document analysed twice (replaced), as nightly updates do
    docs = TermCounts.empty().add(list(zip(keys[150:], texts[150:])), analyzer)
    docs = docs.add(list(zip(keys[:160], texts[:160])), analyzer).add([(keys[7], texts[7])], analyzer)
    got = tfidf_matrix(docs.select(keys), max_df=0.95, min_df=1, sublinear_tf=True)
    ref = ref.tocsr()
    assert got.shape == ref.shape
    assert np.array_equal(got.indptr, ref.indptr) and np.array_equal(got.indices, ref.indices)
    assert np.array_equal(got.data, ref.data)
    # a subset, compacted (terms no longer used dropped), is the vectoriser over that subset
    sub = docs.select(keys[100:]).compact()
    ref_sub = TfidfVectorizer(ngram_range=(1, ngram_max), sublinear_tf=True, max_df=0.95).fit_transform(texts[100:])
    assert np.array_equal(tfidf_matrix(sub, max_df=0.95, min_df=1, sublinear_tf=True).data, ref_sub.tocsr().data)


def test_analysing_the_queue_in_slices_gives_the_counts_of_one_pass(monkeypatch):
    import duckdb

    import warehouse.screening_features as stored

    texts = _texts(57, 3)
    keys = [f"r{i}\th{i}" for i in range(len(texts))]
    analyzer = TfidfVectorizer(ngram_range=(1, 2)).build_analyzer()
    asked: list[int] = []

    def fetch(rids):
        asked.append(len(rids))
        return {rid: texts[int(rid[1:])] for rid in rids}

    out = []
    for batch in (10_000, 4):
        monkeypatch.setattr(stored, "ANALYSE_BATCH", batch)
        with duckdb.connect(":memory:") as con:  # no cache file: every text is analysed
            out.append(stored.queue_documents(con, "r", keys, "key", analyzer, fetch))
    assert asked[0] == 57 and max(asked[1:]) == 4 and sum(asked[1:]) == 57
    one, sliced = out
    assert one.terms == sliced.terms and one.keys == sliced.keys
    for field in ("indptr", "indices", "counts"):
        assert np.array_equal(getattr(one, field), getattr(sliced, field))


@pytest.mark.parametrize("name", ["tfidf-svm", "tfidf-svm-1gram", "tfidf-svm-rankavg"])
def test_rankers_score_counts_exactly_as_texts(name):
    texts = _texts(250, 5)
    labels = {i: int(i % 4 == 0) for i in range(0, 250, 3)}
    from_texts = make_ranker({"name": name, "seed": 3})
    expected = from_texts.fit_rank(texts, labels)
    from_counts = make_ranker({"name": name, "seed": 3})
    docs = TermCounts.empty().add([(str(i), t) for i, t in enumerate(texts)], from_counts.analyzer())
    assert np.array_equal(from_counts.fit_rank_counts(docs, labels), expected)
    assert from_counts.describe() == from_texts.describe()


def test_a_kept_model_scores_later_texts_as_the_fitted_vectoriser_and_svm(tmp_path):
    texts, later = _texts(300, 9), _texts(40, 10) + ["", "words the vocabulary never saw: zzyzx qwv"]
    labels = {i: int(i % 5 == 0) for i in range(0, 300, 2)}
    ranker = make_ranker({"name": "tfidf-svm", "seed": 0})
    docs = TermCounts.empty().add([(str(i), t) for i, t in enumerate(texts)], ranker.analyzer())
    scores, kept, features = ranker.fit_rank_counts_model(docs, labels)
    assert np.array_equal(scores, make_ranker({"name": "tfidf-svm", "seed": 0}).fit_rank(texts, labels))
    same = ranker.features_from_counts(docs)  # the features it returns are the queue's, to keep for live re-ranks
    assert np.array_equal(features.data, same.data) and np.array_equal(features.indices, same.indices)
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_df=0.95, min_df=1).fit(texts)
    assert kept.vocabulary.terms == vec.get_feature_names_out().tolist()
    assert np.array_equal(kept.vocabulary.idf, vec.idf_)
    new_docs = TermCounts.empty().add([(f"n{i}", t) for i, t in enumerate(later)], ranker.analyzer())
    got, ref = kept.vocabulary.transform(new_docs), vec.transform(later).tocsr()
    assert np.array_equal(got.indptr, ref.indptr) and np.array_equal(got.indices, ref.indices)
    assert np.array_equal(got.data, ref.data)  # bit for bit
    pos = sorted(labels)
    y = np.array([labels[p] for p in pos])
    svm = LinearSVC(C=0.11, loss="squared_hinge", random_state=0).fit(
        vec.transform(texts)[pos], y, sample_weight=_balanced_weights(y, 9.8))
    assert np.allclose(kept.score(new_docs), svm.decision_function(vec.transform(later)), rtol=0, atol=SCORE_ATOL)
    _, vocabulary = fit_tfidf(docs, max_df=0.95, min_df=1, sublinear_tf=True)
    assert vocabulary.terms == kept.vocabulary.terms
    # kept on disk and read back memory-mapped: the same scores, bit for bit
    save_model(tmp_path / "m.model.json", "t1", "key", kept)
    assert load_model(tmp_path / "m.model.json", "t2", "key") is None  # another token: not this model
    assert load_model(tmp_path / "m.model.json", "t1", "other analyzer") is None
    back = load_model(tmp_path / "m.model.json", "t1", "key")
    assert np.array_equal(back.score(new_docs), kept.score(new_docs))
    assert np.array_equal(back.vocabulary.transform(new_docs).data, got.data)
    with pytest.raises(NotImplementedError, match="rank"):  # ranks among the queue: nothing to keep
        make_ranker({"name": "tfidf-svm-rankavg"}).fit_rank_counts_model(docs, labels)


def test_sorted_terms_find_every_term_and_only_those():
    long = "x" * 30
    terms = sorted({"a", "ab", "b", "café", "cafe", "naïve study", "zz", long, long + "a", long + "b",
                    "y" * 24, "y" * 24 + " z", "étude", "日本"})
    st = SortedTerms.build(terms)
    assert st.find(terms).tolist() == list(range(len(terms)))
    missing = ["", "aa", "caf", long + "c", "x" * 24, "y" * 25, "日", "zzz", "étud"]
    assert st.find(missing).tolist() == [-1] * len(missing)
    assert SortedTerms.build([]).find(["a"]).tolist() == [-1]


REVIEW_TOML = '''id = "scr"
title = "Incremental screening"
[sources.pubmed]
query = "x"
[screening]
reviewers = 1
include_publication_types = ["Randomized Controlled Trial"]
exclude_publication_types = ["Review"]
include_keywords = ["pain", "placebo"]
exclude_keywords = ["kawasaki"]
out_of_scope_animal = true
min_decisions_to_train = 4
[screening.model]
name = "tfidf-svm"
seed = 0
'''
REVIEW = "scr"
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
QUEUE = "SELECT * EXCLUDE (review_id) FROM screening_queue WHERE review_id = ? ORDER BY record_id"
QUEUE_BUT_SCORES = "SELECT * EXCLUDE (review_id, score) FROM screening_queue WHERE review_id = ? ORDER BY record_id"
# scores computed by two routes (the kept model, scikit-learn) agree to the last bits of a float64 margin
SCORE_ATOL = 1e-12
OTHER = {
    "links": "SELECT record_id, study_id, method, score, linked_at FROM study_links WHERE review_id = ? ORDER BY ALL",
    "alerts": "SELECT kind, severity, title, body, dedupe_key FROM alerts WHERE review_id = ? ORDER BY ALL",
    "conflicts": "SELECT record_id, other_record_id, reason FROM study_link_conflicts WHERE review_id = ? ORDER BY ALL",
}


class Twin:
    def __init__(self, tmp_path):
        folder = tmp_path / "review"
        folder.mkdir()
        (folder / "review.toml").write_text(REVIEW_TOML)
        self.cfg = load_review(folder)
        self.paths = {"inc": tmp_path / "inc.duckdb", "full": tmp_path / "full.duckdb"}
        self.now = T0
        self.reference = Reference()
        for path in self.paths.values():
            with opened(path) as con:
                upsert_review(con, self.cfg, str(folder), T0)

    def store(self, *records: Record) -> None:
        for path in self.paths.values():
            with opened(path) as con:
                run = start_search_run(con, review_id=REVIEW, source="pubmed", query="x", mode="replay",
                                       window_start=None, window_end=self.now, now=self.now)
                finish_search_run(con, run_id=run, review_id=REVIEW, source="pubmed", now=self.now, watermark=self.now,
                                  fetched=[Fetched(r, json.dumps(r.to_dict())) for r in records])

    def both(self, fn) -> list:
        out = []
        for name, path in self.paths.items():
            with opened(path) as con:
                out.append(fn(con, name == "full"))
        return out

    def cycle(self, *, refits: bool) -> dict:
        """Link and flag both warehouses at one instant; every link, alert and queue row must be equal, scores
        included when the incremental one refits too (decisions changed, kept model gone); the incremental scores must be scikit-learn's."""
        self.now += dt.timedelta(days=1)
        inc, full = self.both(lambda con, full: (relink(con, REVIEW, self.now, full=full),
                                                 flag_candidates(con, REVIEW, self.cfg, self.now, full_rank=full)))
        self.compare(scores=refits)
        with opened(self.paths["inc"]) as con:
            self.reference.check(con, refit=refits)
        assert inc[1] == full[1]
        return inc[1]

    def compare(self, *, scores: bool = True) -> None:
        queue = QUEUE if scores else QUEUE_BUT_SCORES
        tables = self.both(lambda con, _: {"queue": con.execute(queue, [REVIEW]).fetchall(),
                                           **{k: con.execute(q, [REVIEW]).fetchall() for k, q in OTHER.items()}})
        for k in tables[0]:
            assert tables[0][k] == tables[1][k], f"{k} differs on {self.now:%Y-%m-%d}"


class Reference:
    """scikit-learn from scratch, refitted when the decisions change: TfidfVectorizer fitted on the queue's texts,
    LinearSVC (ELAS u4's settings) on the decided ones; between two refits a record scored for the first time (new,
    or its text changed) gets that model's score of its text, and every other record keeps its score."""

    ROWS = ("SELECT q.record_id, coalesce(r.content_hash, ''), coalesce(r.title, ''), coalesce(r.abstract, ''), "
            "q.score, q.ranker, s.title_abstract FROM screening_queue q LEFT JOIN records r USING (record_id) "
            "LEFT JOIN v_record_screening s USING (review_id, record_id) WHERE q.review_id = ? ORDER BY q.record_id")

    def __init__(self):
        self.model = None
        self.scored: dict[tuple[str, str], float] = {}

    def check(self, con, *, refit: bool) -> None:
        rows = con.execute(self.ROWS, [REVIEW]).fetchall()
        if not any(r[5].startswith("tfidf-svm") for r in rows):
            return  # the rules rank: tested elsewhere
        texts = [f"{t} {a}".strip() for _, _, t, a, *_ in rows]
        if refit or self.model is None:
            vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_df=0.95, min_df=1)
            x = vec.fit_transform(texts)
            pos = [k for k, r in enumerate(rows) if r[6] in ("include", "exclude", "maybe")]
            y = np.array([int(rows[k][6] != "exclude") for k in pos])
            svm = LinearSVC(C=0.11, loss="squared_hinge", random_state=0)
            svm.fit(x[pos], y, sample_weight=_balanced_weights(y, 9.8))
            self.model, self.scored = (vec, svm), {}
        vec, svm = self.model
        expected = []
        for (rid, content, *_), text in zip(rows, texts):
            key = (rid, content)
            if key not in self.scored:
                self.scored[key] = float(svm.decision_function(vec.transform([text]))[0])
            expected.append(self.scored[key])
        got = np.array([r[4] for r in rows], dtype=float)
        assert np.allclose(got, expected, rtol=0, atol=SCORE_ATOL), np.abs(got - np.array(expected)).max()


def pub(pmid, text, *, types=("Journal Article",), ncts=(), author="Geerts M", year=2021, version="1", deleted=False):
    title, _, abstract = text.partition(". ")
    return Record(source="pubmed", source_id=str(pmid), source_version=version, title=title, abstract=abstract,
                  authors=[author], year=year, publication_types=list(types), registry_ids=list(ncts), deleted=deleted,
                  is_rct="Randomized Controlled Trial" in types)


def test_cycles_equal_ranking_from_scratch(tmp_path):
    rng = random.Random(11)
    tw = Twin(tmp_path)
    texts = {}

    def new(k: int, **kw) -> Record:
        pmid = 50000000 + k
        texts[pmid] = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30)))
        return pub(pmid, texts[pmid], author=rng.choice(["Geerts M", "Zis P", "Li X", "Tesfaye S"]),
                   types=rng.choice([("Journal Article",), ("Randomized Controlled Trial",), ("Review",)]), **kw)

    tw.store(*[new(k) for k in range(30)], new(30, ncts=["NCT05000001"]))
    out = tw.cycle(refits=False)
    assert out["ranker"] == "rules" and out["new"] == 31

    # people decide enough records for the model to train; the next flag ranks with it
    decided = sorted(texts)[:8]
    tw.both(lambda con, _: [record_decision(con, review_id=REVIEW, record_id=f"pubmed:{p}", reviewer="ana",
                                            stage="title_abstract", decision="include" if i % 3 == 0 else "exclude",
                                            reason=None, origin="terminal", now=tw.now)
                            for i, p in enumerate(decided)])
    out = tw.cycle(refits=True)
    assert out["ranker"].startswith("tfidf-svm") and "trained on 8" in out["ranker"]

    # new records (one a new report of an excluded study), changed ones (new abstract, a new version): decided
    # records whose text changed are scored again by the kept model; the model learns their new text at its next refit
    changed = [pub(p, texts[p] + " with updated results", version="2") for p in decided[1:4]]
    tw.store(*[new(k) for k in range(40, 50)], new(51, ncts=["NCT05000001"]), *changed)
    out = tw.cycle(refits=False)
    assert out["new"] == 11 and out["changed"] >= 1

    # nothing new: flagging ranks nothing again (the inputs are those of the last ranking)
    out = tw.cycle(refits=False)
    with opened(tw.paths["inc"]) as con:
        assert rank_queue(con, REVIEW, tw.cfg)["skipped"] is True

    # a deletion, and the analysed-text cache thrown away: rebuilt, same scores
    tw.store(pub(decided[5], texts[decided[5]], deleted=True))
    with opened(tw.paths["inc"]) as con:
        folder = cache_path(con, REVIEW, "x").parent
    assert folder.is_dir()
    shutil.rmtree(folder)
    tw.cycle(refits=True)  # the kept model went with the cache: the next ranking refits
    assert folder.is_dir()

    # decisions imported from a file re-rank at once (a live re-rank reuses the analysed texts)
    csv = tmp_path / "decisions.csv"
    csv.write_text("record_id,reviewer,stage,decision,reason,decided_at\n" + "".join(
        f"pubmed:{p},bo,title_abstract,{'include' if i % 2 else 'exclude'},,2024-01-02\n"
        for i, p in enumerate(sorted(texts)[10:16])))
    tw.both(lambda con, _: import_decisions(con, REVIEW, csv, now=tw.now))
    tw.compare()
    with opened(tw.paths["inc"]) as con:
        tw.reference.check(con, refit=True)  # imported decisions: refitted at once

    # a person splits the duplicate off the excluded study: it comes back to the queue
    with opened(tw.paths["inc"]) as con:
        sid = con.execute("SELECT study_id FROM study_links WHERE review_id = ? AND record_id = 'pubmed:50000051'",
                          [REVIEW]).fetchone()[0]
    tw.both(lambda con, _: record_link_decision(con, REVIEW, "pubmed:50000051", "unlink", sid, "ana", tw.now))
    tw.store(*[new(k) for k in range(60, 63)])
    out = tw.cycle(refits=False)
    assert out["new"] == 3
