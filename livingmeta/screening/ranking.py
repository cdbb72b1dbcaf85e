"""Ranking models that order unscreened records by how likely they are to be included.

A ranker is built from a plain dict (the ``[screening.model]`` table of review.toml)::

    ranker = make_ranker({"name": "tfidf-svm", "seed": 0, "C": 0.11})
    scores = ranker.fit_rank(texts, {3: 1, 17: 0})   # higher = screen first
    ranker.describe()  # "tfidf-svm (C=0.11, balanced 9.8) trained on 2 decisions"

The text features are computed once per list of texts and cached on the ranker, so an
active-learning loop that retrains after every decision only pays for the classifier fit.
Fitting the vectoriser on every text (labelled or not) is legitimate: texts carry no labels.

Reference for the baseline: ASReview LAB's default model ELAS u4 (TF-IDF on 1-2-grams,
sublinear tf, linear SVM with C=0.11 and "balanced" sample weights with ratio 9.8);
van de Schoot et al. (2021) Nat Mach Intell 3:125-133, doi:10.1038/s42256-020-00287-7.
``tfidf-svm`` stays that exact replica and is the default.

The variants tried and the figures that decided the default are in docs/screening-models.md; the
1-gram model (``name = "tfidf-svm-1gram"``) stays available for large queues where speed matters more.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from livingmeta.screening.features import ScoringModel, TermCounts, fit_tfidf, tfidf_matrix

__all__ = [
    "DEFAULT_MODEL",
    "RANKERS",
    "Ranker",
    "TfidfSvmRanker",
    "TfidfSvmRankAverageRanker",
    "TfidfSvmUnigramRanker",
    "can_train",
    "make_ranker",
]

DEFAULT_MODEL = "tfidf-svm"


def can_train(labels: Mapping[int, int]) -> bool:
    """Tell whether a ranking model can be trained on these decisions.

    Parameters
    ----------
    labels : mapping of record position -> decision (1 included, 0 excluded)

    Returns
    -------
    bool
        True when there is at least one included and one excluded decision: a classifier
        needs both classes, and until then the queue should stay in its default order.
    """
    values = set(labels.values())
    return 1 in values and 0 in values


def _check_labels(labels: Mapping[int, int], n_texts: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate decisions and return (positions, labels) as arrays sorted by position."""
    positions = np.fromiter(labels.keys(), dtype=np.int64, count=len(labels))
    values = np.fromiter(labels.values(), dtype=np.int64, count=len(labels))
    bad_pos = positions[(positions < 0) | (positions >= n_texts)]
    if bad_pos.size:
        raise ValueError(
            f"decision for record position {int(bad_pos[0])} is outside the {n_texts} texts given; "
            "labels must be keyed by the position of the text in the list passed to fit_rank"
        )
    bad_val = [p for p, v in labels.items() if v not in (0, 1)]
    if bad_val:
        raise ValueError(
            f"decision for record position {bad_val[0]} is {labels[bad_val[0]]!r}; "
            "use 1 for included and 0 for excluded"
        )
    if not can_train(labels):
        raise ValueError(
            "cannot rank yet: need at least one included and one excluded decision "
            f"(have {int((values == 1).sum())} included, {int((values == 0).sum())} excluded); "
            "check can_train(labels) before calling fit_rank"
        )
    order = np.argsort(positions, kind="stable")
    return positions[order], values[order]


def _balanced_weights(y: np.ndarray, ratio: float) -> np.ndarray:
    """ASReview's "balanced" sample weights.

    Excluded records get weight n_included / (ratio * n_excluded) relative to included ones,
    then all weights are rescaled to sum to the number of samples (ASReview LAB 2,
    ``asreview.models.balancers.Balanced``).
    """
    n_inc = float((y == 1).sum())
    n_exc = float((y == 0).sum())
    w = np.where(y == 1, 1.0, n_inc / (ratio * n_exc))
    return w * (len(y) / w.sum())


class Ranker(ABC):
    """Base class: parameters from a dict, features cached per list of texts.

    Subclasses set ``name`` and ``defaults`` and implement ``_vectorise`` and ``_score``.
    """

    name: str = ""
    defaults: dict[str, Any] = {}

    def __init__(self, params: Mapping[str, Any] | None = None):
        params = dict(params or {})
        params.pop("name", None)
        unknown = sorted(set(params) - set(self.defaults) - {"seed"})
        if unknown:
            allowed = ", ".join(["name", "seed", *sorted(self.defaults)])
            raise ValueError(
                f"[screening.model] has unknown parameter {unknown[0]!r} for model {self.name!r}; allowed: {allowed}"
            )
        self.seed = int(params.pop("seed", 0))
        self.params = {**self.defaults, **params}
        self._texts_key: tuple[str, ...] | None = None
        self._features: Any = None
        self.n_trained = 0

    def features(self, texts: Sequence[str]) -> Any:
        """Return the feature matrix for ``texts``, computing it only when the texts change."""
        key = tuple(texts)
        # Tuples of the same str objects compare by identity first, so this check is cheap
        # in a loop that passes the same list again and again.
        if self._texts_key is None or self._texts_key != key:
            self._features = self._vectorise(list(key))
            self._texts_key = key
        return self._features

    def fit_rank(self, texts: Sequence[str], labels: Mapping[int, int]) -> np.ndarray:
        """Train on the decisions made so far and score every text.

        Parameters
        ----------
        texts : sequence of str
            Title + abstract of every record in the queue, in a fixed order.
        labels : mapping of int -> int
            Decisions so far, keyed by position in ``texts``: 1 included, 0 excluded.
            Must satisfy :func:`can_train`.

        Returns
        -------
        numpy.ndarray of float, shape (len(texts),)
            Relevance scores; higher means screen first. Labelled records are scored too;
            callers skip them when choosing what to show next.
        """
        positions, y = _check_labels(labels, len(texts))
        features = self.features(texts)
        scores = np.asarray(self._score(features, positions, y), dtype=float)
        self.n_trained = len(y)
        return scores

    def fit_rank_counts(self, docs: TermCounts, labels: Mapping[int, int]) -> np.ndarray:
        """As `fit_rank`, from documents analysed once (`livingmeta.screening.features`): the same scores.

        Parameters
        ----------
        docs : TermCounts
            The queue's documents in a fixed order, analysed with :meth:`analyzer`.
        labels : mapping of int -> int
            Decisions keyed by position in ``docs`` (as for ``fit_rank``).

        Returns
        -------
        numpy.ndarray of float, one score per document, equal to ``fit_rank`` on the same texts.
        """
        positions, y = _check_labels(labels, len(docs.keys))
        features = self._vectorise_counts(docs)
        scores = np.asarray(self._score(features, positions, y), dtype=float)
        self.n_trained = len(y)
        return scores

    def fit_rank_counts_model(
        self, docs: TermCounts, labels: Mapping[int, int]
    ) -> tuple[np.ndarray, ScoringModel, Any]:
        """As `fit_rank_counts`, also returning the trained model, to score records that arrive later
        (`ScoringModel.score`) without refitting, and the features it was fitted on (what
        `features_from_counts(docs)` gives, to keep for the live re-ranks that follow). Only linear models over
        one TF-IDF view can."""
        raise NotImplementedError(f"{self.name} cannot keep a model for later records")

    def features_from_counts(self, docs: TermCounts) -> Any:
        """The feature matrix (or matrices) `fit_rank_counts` would build from these documents.

        Features carry no labels, so they can be built once per queue and kept (see `fit_rank_features`):
        a live re-rank after each decision then only refits the classifier.
        """
        return self._vectorise_counts(docs)

    def fit_rank_features(self, features: Any, labels: Mapping[int, int]) -> np.ndarray:
        """As `fit_rank_counts`, from features already built by `features_from_counts`: the same scores.

        Parameters
        ----------
        features : the result of ``features_from_counts`` for the queue's documents.
        labels : mapping of int -> int
            Decisions keyed by row of ``features`` (as for ``fit_rank``).
        """
        first = features[0] if isinstance(features, tuple) else features
        positions, y = _check_labels(labels, int(first.shape[0]))
        scores = np.asarray(self._score(features, positions, y), dtype=float)
        self.n_trained = len(y)
        return scores

    def analyzer(self):
        """The text analyzer whose output `fit_rank_counts` expects (scikit-learn's, for these settings)."""
        raise NotImplementedError(f"{self.name} cannot rank from stored term counts")

    def analysis_key(self) -> str:
        """A name for the analyzer's settings: stored term counts are reusable only under the same key."""
        raise NotImplementedError(f"{self.name} cannot rank from stored term counts")

    def _vectorise_counts(self, docs: TermCounts) -> Any:
        raise NotImplementedError(f"{self.name} cannot rank from stored term counts")

    def describe(self) -> str:
        """One line naming the model, its settings and how many decisions it was trained on."""
        return f"{self.name} ({self._settings()}) trained on {self.n_trained} decisions"

    @abstractmethod
    def _settings(self) -> str: ...

    @abstractmethod
    def _vectorise(self, texts: list[str]) -> Any: ...

    @abstractmethod
    def _score(self, features: Any, positions: np.ndarray, y: np.ndarray) -> np.ndarray: ...


class TfidfSvmRanker(Ranker):
    """ELAS u4 replica: TF-IDF (1-2-grams, sublinear tf) + linear SVM with balanced weights.

    Parameters (dict keys): ``C`` (0.11), ``ratio`` (9.8, ASReview's balance ratio),
    ``ngram_max`` (2), ``sublinear_tf`` (True), ``max_df`` (0.95), ``min_df`` (1).
    """

    name = "tfidf-svm"
    defaults = {
        "C": 0.11,
        "ratio": 9.8,
        "ngram_max": 2,
        "sublinear_tf": True,
        "max_df": 0.95,
        "min_df": 1,
    }

    def _settings(self) -> str:
        return f"C={self.params['C']}, balanced {self.params['ratio']}"

    def _vectorise(self, texts: list[str]) -> sp.csr_matrix:
        p = self.params
        vectoriser = TfidfVectorizer(
            ngram_range=(1, int(p["ngram_max"])),
            sublinear_tf=bool(p["sublinear_tf"]),
            max_df=float(p["max_df"]),
            min_df=int(p["min_df"]),
        )
        return vectoriser.fit_transform(texts).tocsr()

    def analyzer(self):
        return TfidfVectorizer(ngram_range=(1, int(self.params["ngram_max"]))).build_analyzer()

    def analysis_key(self) -> str:
        import sklearn

        # the analyzer is scikit-learn's: another version may tokenise differently
        return f"words-1-{int(self.params['ngram_max'])}-sklearn-{sklearn.__version__}"

    def _tfidf_options(self) -> dict[str, Any]:
        p = self.params
        return {"max_df": float(p["max_df"]), "min_df": int(p["min_df"]), "sublinear_tf": bool(p["sublinear_tf"])}

    def _tfidf(self, docs: TermCounts, keep_term: np.ndarray | None = None) -> sp.csr_matrix:
        return tfidf_matrix(docs, keep_term=keep_term, **self._tfidf_options())

    def _vectorise_counts(self, docs: TermCounts) -> sp.csr_matrix:
        return self._tfidf(docs)

    def _fit_svm(self, features: sp.csr_matrix, positions: np.ndarray, y: np.ndarray) -> LinearSVC:
        model = LinearSVC(C=float(self.params["C"]), loss="squared_hinge", random_state=self.seed)
        model.fit(features[positions], y, sample_weight=_balanced_weights(y, float(self.params["ratio"])))
        return model

    def _score(self, features: sp.csr_matrix, positions: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self._fit_svm(features, positions, y).decision_function(features)

    def fit_rank_counts_model(
        self, docs: TermCounts, labels: Mapping[int, int]
    ) -> tuple[np.ndarray, ScoringModel, Any]:
        positions, y = _check_labels(labels, len(docs.keys))
        features, vocabulary = fit_tfidf(docs, **self._tfidf_options())
        svm = self._fit_svm(features, positions, y)
        self.n_trained = len(y)
        kept = ScoringModel(
            vocabulary,
            np.asarray(svm.coef_, dtype=np.float64).ravel().copy(),
            float(svm.intercept_[0]),
            self.describe(),
            len(y),
        )
        return np.asarray(svm.decision_function(features), dtype=float), kept, features


class TfidfSvmUnigramRanker(TfidfSvmRanker):
    """The ELAS u4 replica on single words only (TF-IDF 1-grams): same SVM and balancing.

    About a third of the baseline's time per run on the dev sets (far fewer features).
    Parameters as :class:`TfidfSvmRanker`, with ``ngram_max`` defaulting to 1.
    """

    name = "tfidf-svm-1gram"
    defaults = {**TfidfSvmRanker.defaults, "ngram_max": 1}


class TfidfSvmRankAverageRanker(TfidfSvmRanker):
    """Two ELAS-u4 SVMs, one on 1-2-gram and one on 1-gram TF-IDF, ranked by their mean rank.

    Each SVM scores every text; a record's score is the sum of its ranks under the two
    (ties share the average rank, then the 1-2-gram SVM's score decides). Rank averaging
    combines the two without calibrating their margins. Parameters as :class:`TfidfSvmRanker`
    (``ngram_max`` is the first view's; the second view is always 1-grams).
    """

    name = "tfidf-svm-rankavg"

    def _settings(self) -> str:
        return f"C={self.params['C']}, balanced {self.params['ratio']}, rank mean of 1-{self.params['ngram_max']}- and 1-grams"

    def _vectorise(self, texts: list[str]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        p = self.params
        views = []
        for ngram_max in (int(p["ngram_max"]), 1):
            vectoriser = TfidfVectorizer(
                ngram_range=(1, ngram_max),
                sublinear_tf=bool(p["sublinear_tf"]),
                max_df=float(p["max_df"]),
                min_df=int(p["min_df"]),
            )
            views.append(vectoriser.fit_transform(texts).tocsr())
        return views[0], views[1]

    def fit_rank_counts_model(
        self, docs: TermCounts, labels: Mapping[int, int]
    ) -> tuple[np.ndarray, ScoringModel, Any]:
        # a record's score is its rank among all records: every record's score moves when one arrives
        raise NotImplementedError(f"{self.name} ranks by rank among the queue: it keeps no model for later records")

    def _vectorise_counts(self, docs: TermCounts) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        # the 1-gram view from the 1-n-gram analysis: the analyzer emits every single word (in text order)
        # before any pair, so single words keep the order a 1-gram analyzer gives them
        single = np.fromiter((" " not in t for t in docs.terms), dtype=bool, count=len(docs.terms))
        return self._tfidf(docs), self._tfidf(docs, keep_term=single)

    def _score(self, features: tuple[sp.csr_matrix, sp.csr_matrix], positions: np.ndarray, y: np.ndarray) -> np.ndarray:
        from scipy.stats import rankdata  # scipy.stats takes about a second to import: only this model needs it

        scores = [super(TfidfSvmRankAverageRanker, self)._score(view, positions, y) for view in features]
        # Ranks are multiples of 0.5, so a 1e-9 share of the first margin only breaks exact ties.
        return rankdata(scores[0]) + rankdata(scores[1]) + 1e-9 * scores[0]


RANKERS: dict[str, type[Ranker]] = {
    TfidfSvmRanker.name: TfidfSvmRanker,
    TfidfSvmUnigramRanker.name: TfidfSvmUnigramRanker,
    TfidfSvmRankAverageRanker.name: TfidfSvmRankAverageRanker,
}


def make_ranker(params: Mapping[str, Any] | None = None) -> Ranker:
    """Build a ranker from the ``[screening.model]`` settings.

    Parameters
    ----------
    params : mapping, optional
        ``name`` (one of :data:`RANKERS`, default :data:`DEFAULT_MODEL`), ``seed`` (int, default 0)
        and model parameters (see each ranker's docstring), either flat or nested under
        ``params`` as in review.toml. Unknown keys are refused.

    Returns
    -------
    Ranker
    """
    params = dict(params or {})
    # review.toml's model (livingmeta.config.ScreeningModel) keeps model settings in a nested
    # ``params`` table; accept that shape as well as a flat one.
    nested = params.pop("params", None) or {}
    if not isinstance(nested, Mapping):
        raise ValueError("[screening.model] params must be a table of model settings, e.g. {C = 0.11}")
    params = {**params, **nested}
    name = params.get("name") or DEFAULT_MODEL
    if name not in RANKERS:
        raise ValueError(
            f"[screening.model] name {name!r} is not a known ranking model; choose one of: {', '.join(sorted(RANKERS))}"
        )
    return RANKERS[name](params)
