"""Probabilities for ranked records, so "about 1.3 includes among the 3 waiting" can be honest.

The ranker's scores (SVM margins, with ASReview's class balancing) order records well but are not
probabilities. Platt scaling (Platt JC, "Probabilistic outputs for support vector machines", in Advances
in Large Margin Classifiers, MIT Press 1999) fits P(include | score) = 1 / (1 + exp(-(a·score + b))) on
*out-of-fold* scores: each labelled record is scored by a model trained without it (k-fold), so the fit
sees margins like those of records the model has never seen. The probability is a monotone function of
the full model's score, so it changes no ranking; summed over the records waiting it is the expected
number of includes among them.

Calibration is measured with the Brier score and the expected calibration error (ECE, 10 equal-width
bins; Naeini MP et al., AAAI 2015). bench/living_mode.py compares them on time-split batches.

Measured (bench/living_mode.py, train on the first 80% of each set by PMID, rank the rest, seed 0; chosen
on dev = 11 Cohen sets with >= 2 includes on both sides, then eval = 6 SYNERGY sets run once):
- ranking the new batch: the ELAS u4 replica (tfidf-svm) trained on all earlier decisions, RRF@10 62.5% /
  WSS@95 51.5% on dev (eval 47.8% / 56.1%); tfidf-svm-1gram 62.1% / 52.0%; a words + character 3-5-gram
  SVM 63.8% / 52.0% at 6.5x the CPU. No candidate is clearly better: the nightly queue stays ranked by the
  review's model score.
- the expected number of includes among 3 waiting records: Platt on out-of-fold scores has Brier 0.0545
  and a mean absolute error of 0.255 includes per night of 3 on dev (eval 0.0940, 0.401), against 0.0657
  and 0.346 (eval 0.1268, 0.527) for the training include rate given to every record, and 0.283 / 1.42 for
  the SVM margin read as a probability (never use it). Isotonic regression ties with Platt (dev Brier
  0.0566, 0.252); Platt is kept because it is monotone and smooth in the score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["brier", "expected_calibration_error", "out_of_fold_scores", "platt", "platt_probabilities"]


def out_of_fold_scores(
    ranker, features, positions: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Each labelled record's score from a model trained on the other folds (stratified, shuffled).

    ``ranker`` is a :class:`livingmeta.screening.ranking.Ranker`; ``features`` its feature matrix for all
    records; ``positions`` / ``y`` the labelled rows and their labels. Folds smaller than 2 per class fall
    back to as many folds as the rarer class allows (at least 2).
    """
    from sklearn.model_selection import StratifiedKFold

    n_min = int(min((y == 1).sum(), (y == 0).sum()))
    k = max(2, min(folds, n_min))
    out = np.empty(len(y), dtype=float)
    for train, test in StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(positions, y):
        scores = ranker._score(features, positions[train], y[train])
        out[test] = scores[positions[test]]
    return out


def platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt's sigmoid fit with his target smoothing ((n+ + 1)/(n+ + 2), 1/(n- + 2)): returns (a, b)."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y, dtype=int)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    # smoothed targets as sample weights on duplicated rows (LogisticRegression needs hard labels)
    t_pos, t_neg = (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2)
    x = np.concatenate([scores, scores]).reshape(-1, 1)
    labels = np.concatenate([np.ones(len(y)), np.zeros(len(y))])
    target = np.where(y == 1, t_pos, t_neg)
    weights = np.concatenate([target, 1 - target])
    # C large: no shrinkage (Platt fits plain maximum likelihood); tol small: lbfgs stops at the optimum
    model = LogisticRegression(C=1e10, solver="lbfgs", tol=1e-12, max_iter=10000).fit(x, labels, sample_weight=weights)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def platt_probabilities(
    ranker, texts: Sequence[str], labels: Mapping[int, int], folds: int = 5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and calibrated include probabilities for every text.

    Returns:
        (scores, probabilities): the ranker trained on all ``labels`` (as ``fit_rank``), and Platt's sigmoid
        fitted on out-of-fold scores applied to them.
    """
    scores = ranker.fit_rank(texts, labels)
    positions = np.fromiter(labels.keys(), dtype=np.int64, count=len(labels))
    y = np.fromiter(labels.values(), dtype=np.int64, count=len(labels))
    oof = out_of_fold_scores(ranker, ranker.features(texts), positions, y, folds=folds, seed=seed)
    a, b = platt(oof, y)
    return scores, 1.0 / (1.0 + np.exp(-(a * scores + b)))


def brier(p: np.ndarray, y: np.ndarray) -> float:
    """Mean squared difference between probability and outcome (0 is perfect)."""
    p, y = np.asarray(p, dtype=float), np.asarray(y, dtype=float)
    return float(np.mean((p - y) ** 2))


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """ECE: over equal-width probability bins, |mean probability - share included| weighted by the bin's size."""
    p, y = np.asarray(p, dtype=float), np.asarray(y, dtype=float)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() * abs(p[m].mean() - y[m].mean())
    return float(total / len(p))
