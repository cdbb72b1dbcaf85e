"""Screening-order metrics on small orders computed by hand."""

import numpy as np
import pytest

from livingmeta.screening.metrics import atd, compute_metrics, loss, n_at_recall, rrf, wss_asreview, wss_strict

PERFECT = [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
WORST = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1]
MIXED = [0, 1, 0, 0, 1, 0, 0, 0, 0, 0]


def test_perfect_order():
    # N=10, R=2: n95 = position of the 2nd include = 2 -> 8/10 - 0.05.
    m = compute_metrics(PERFECT)
    assert m["wss95_strict"] == pytest.approx(0.75)
    # ASReview: k = floor(1.9) = 1, found at position 1; round(linspace(0, 2, 10)) =
    # 0,0,0,1,1,1,1,2,2,2 first reaches 1 at index 3 -> (3 - 0) / 10.
    assert m["wss95"] == pytest.approx(0.3)
    assert m["rrf10"] == pytest.approx(0.5)  # first 1 record holds 1 of 2 includes
    assert m["atd"] == pytest.approx(0.15)  # positions 1, 2 -> 1.5 / 10
    assert m["loss"] == pytest.approx(0.0)


def test_worst_order():
    m = compute_metrics(WORST)
    assert m["wss95_strict"] == pytest.approx(-0.05)  # n95 = N: no work saved, minus the 5% allowance
    assert m["wss95"] == pytest.approx(-0.5)  # k = 1 found at position 9: (3 - 8) / 10
    assert m["rrf10"] == 0.0
    assert m["atd"] == pytest.approx(0.95)  # positions 9, 10
    assert m["loss"] == pytest.approx(1.0)


def test_mixed_order():
    assert n_at_recall(MIXED) == 5
    assert wss_strict(MIXED) == pytest.approx(0.45)
    assert rrf(MIXED) == 0.0
    assert atd(MIXED) == pytest.approx(0.35)
    # recall counts 0,1,1,1,2,2,2,2,2,2: trapezoid area 14; best 20-0.5-2 = 17.5, worst 2.
    assert loss(MIXED) == pytest.approx(3.5 / 15.5)
    # ASReview: k = floor(1.9) = 1, found at position 2; round(linspace(0, 2, 10)) first
    # reaches 1 at index 3 -> (3 - 1) / 10.
    assert wss_asreview(MIXED) == pytest.approx(0.2)
    m = compute_metrics(MIXED)
    assert m["wss95"] == wss_asreview(MIXED) and m["wss95_strict"] == wss_strict(MIXED)


def test_recall_target_uses_integer_arithmetic():
    # R = 20: 95% is exactly 19 includes; float 0.95 * 20 must not round up to 20.
    order = [1] * 19 + [0] * 30 + [1]
    assert n_at_recall(order) == 19
    assert wss_strict(order) == pytest.approx((50 - 19) / 50 - 0.05)
    # R = 15: Cohen's recall >= 95% needs all 15, ASReview's floor(14.25) = 14.
    order = [1] * 14 + [0] * 85 + [1]
    assert n_at_recall(order) == 100
    assert wss_strict(order) == pytest.approx(-0.05)
    # 14th include at position 14; round(linspace(0, 15, 100)) first reaches 14 at index 90
    # (90 * 15 / 99 = 13.64) -> (90 - 13) / 100.
    assert wss_asreview(order) == pytest.approx(0.77)


def test_loss_edges_match_asreview_examples():
    assert loss([1, 0]) == pytest.approx(0.0)
    assert loss([0, 1]) == pytest.approx(1.0)
    assert loss([1, 1, 0, 0, 0]) == pytest.approx(0.0)
    assert loss([0, 0, 0, 1, 1]) == pytest.approx(1.0)


def test_metrics_are_fractions_for_random_orders():
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(2, 80))
        order = rng.integers(0, 2, n)
        order[rng.integers(0, n)] = 1
        m = compute_metrics(order)
        assert 0.0 <= m["rrf10"] <= 1.0
        assert 0.0 < m["atd"] <= 1.0
        assert 0.0 <= m["loss"] <= 1.0 + 1e-12
        assert -0.05 - 1e-12 <= m["wss95_strict"] <= 0.95
        assert -1.0 < m["wss95"] < 1.0


@pytest.mark.parametrize("bad", [[], [0, 0, 0], [0, 2, 1], [[1, 0]]])
def test_bad_orders_are_refused(bad):
    with pytest.raises(ValueError):
        compute_metrics(bad)
