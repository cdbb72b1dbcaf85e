"""Calibrated include probabilities (livingmeta.screening.calibration): metrics by hand, Platt's fit, no leakage.

Tolerances: 1e-12 for the hand-computed Brier/ECE sums; 1e-6 for the Platt fit against a direct Newton
maximisation of the same likelihood (lbfgs stops at its own tolerance, far below what matters here).
"""

from __future__ import annotations

import numpy as np
import pytest

from livingmeta.screening.calibration import (
    brier,
    expected_calibration_error,
    out_of_fold_scores,
    platt,
    platt_probabilities,
)
from livingmeta.screening.ranking import make_ranker


def test_brier_and_ece_by_hand():
    p = np.array([0.05, 0.15, 0.12, 0.85, 0.95, 0.55])
    y = np.array([0, 0, 1, 1, 1, 0])
    assert brier(p, y) == pytest.approx((0.05**2 + 0.15**2 + 0.88**2 + 0.15**2 + 0.05**2 + 0.55**2) / 6, abs=1e-12)
    # bins: [0,.1): {0.05|0}; [.1,.2): {0.15|0, 0.12|1}; [.5,.6): {0.55|0}; [.8,.9): {0.85|1}; [.9,1]: {0.95|1}
    ece = (1 * 0.05 + 2 * abs(0.135 - 0.5) + 1 * 0.55 + 1 * 0.15 + 1 * 0.05) / 6
    assert expected_calibration_error(p, y) == pytest.approx(ece, abs=1e-12)
    assert expected_calibration_error(np.array([1.0]), np.array([1])) == 0.0  # p = 1 falls in the last bin


def _newton_platt(s, y):
    n_pos, n_neg = y.sum(), (1 - y).sum()
    t = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    w = np.zeros(2)
    x = np.column_stack([s, np.ones_like(s)])
    for _ in range(100):
        p = 1 / (1 + np.exp(-x @ w))
        grad = x.T @ (t - p)
        hess = (x * (p * (1 - p))[:, None]).T @ x
        w += np.linalg.solve(hess, grad)
    return w


def test_platt_matches_a_direct_maximum_likelihood_fit():
    rng = np.random.default_rng(3)
    s = np.concatenate([rng.normal(1.0, 1.0, 30), rng.normal(-1.0, 1.0, 200)])
    y = np.concatenate([np.ones(30, int), np.zeros(200, int)])
    a, b = platt(s, y)
    wa, wb = _newton_platt(s, y)
    assert (a, b) == pytest.approx((wa, wb), abs=1e-6)


def test_out_of_fold_scores_never_see_their_own_label():
    texts = [f"statin trial ldl number {i}" if i % 4 == 0 else f"asthma inhaler study number {i}" for i in range(40)]
    labels = {i: int(i % 4 == 0) for i in range(40)}
    ranker = make_ranker({"name": "tfidf-svm"})
    feats = ranker.features(texts)
    pos = np.arange(40)
    y = np.array([labels[i] for i in pos])
    oof = out_of_fold_scores(ranker, feats, pos, y, folds=5, seed=0)
    # every score comes from a model trained on the other folds only (the same stratified split)
    from sklearn.model_selection import StratifiedKFold

    for train, test in StratifiedKFold(n_splits=5, shuffle=True, random_state=0).split(pos, y):
        assert set(train).isdisjoint(test)
        assert np.array_equal(oof[test], ranker._score(feats, pos[train], y[train])[pos[test]])
    # and not the model trained on everything, which has seen each record's own label
    assert not np.allclose(oof, ranker.fit_rank(texts, labels))
    scores, probs = platt_probabilities(ranker, texts, labels)
    assert np.all((probs > 0) & (probs < 1))
    # monotone in the model's score: calibration changes no ranking
    assert np.array_equal(np.argsort(-scores, kind="stable"), np.argsort(-probs, kind="stable"))
    assert probs[[i for i in range(40) if i % 4 == 0]].min() > probs[[i for i in range(40) if i % 4]].max()
