"""The stopping rule's statistics (livingmeta.screening.stopping) against hand-computed hypergeometric values.

Reference values come from scipy.stats.hypergeom and from exact integer arithmetic (math.comb); the
module computes the distribution itself in log space. Tolerance: relative 1e-9 for probabilities
(log-space summation error is about 1e-12; a wrong term or tail is off by far more).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy.stats import hypergeom

from livingmeta.screening.stopping import (
    RULE,
    hypergeom_cdf,
    irrelevant_in_a_row,
    k_target,
    recall_test,
    simulate_stop,
)

REL = 1e-9


def exact_cdf(k: int, population: int, successes: int, draws: int) -> Fraction:
    total = math.comb(population, draws)
    return sum((Fraction(math.comb(successes, i) * math.comb(population - successes, draws - i), total)
                for i in range(0, k + 1) if i <= successes and 0 <= draws - i <= population - successes), Fraction(0))


@pytest.mark.parametrize("population,successes,draws", [(50, 10, 20), (1000, 3, 630), (2000, 6, 800),
                                                         (5000, 40, 1000), (20000, 7, 9000), (30, 30, 5), (30, 0, 5)])
def test_hypergeom_cdf_matches_scipy_and_exact(population, successes, draws):
    for k in range(0, min(successes, draws) + 2):
        ours = hypergeom_cdf(k, population, successes, draws)
        assert ours == pytest.approx(float(hypergeom.cdf(k, population, successes, draws)), rel=REL, abs=1e-300)
        if population <= 2000:
            assert ours == pytest.approx(float(exact_cdf(k, population, successes, draws)), rel=REL, abs=1e-300)


def test_hypergeom_cdf_refuses_impossible_parameters():
    with pytest.raises(ValueError, match="out of range"):
        hypergeom_cdf(0, 10, 11, 5)
    with pytest.raises(ValueError, match="out of range"):
        hypergeom_cdf(0, 10, 3, 11)


def test_k_target_is_exact_at_integer_boundaries():
    # 19 found, tau 19/20: recall < 0.95 needs R > 20, i.e. R >= 21: K_tar = 21 - r_ranked
    assert k_target(19, 0, 0.95) == 2
    assert k_target(15, 4, 0.95) == 6
    # 40 found: 40/0.95 = 42.1 -> R >= 43 -> K = 3
    assert k_target(40, 0, 0.95) == 3
    assert k_target(100, 0, 0.95) == 6
    assert k_target(9, 0, 0.9) == 2  # 9/0.9 = 10 exactly -> R >= 11
    with pytest.raises(ValueError, match="target recall"):
        k_target(1, 0, 1.0)


def test_recall_test_p_value_is_the_hypergeometric_tail():
    # r_ranked 40 found, 1000 left, 300 sampled with 1 include: K_tar = floor(41/0.95) - 40 + 1 = 4
    t = recall_test(40, 1000, 300, 1)
    assert t.rule == RULE and t.k_tar == 4
    assert t.p_value == pytest.approx(float(hypergeom.cdf(1, 1000, 4, 300)), rel=REL)
    assert t.stop is (t.p_value < 0.05)


def test_more_needed_is_the_first_sample_size_that_stops():
    t = recall_test(40, 1000, 0, 0)
    # K_tar 3, no include: stop at the smallest n with P(X = 0) = C(997, n) / C(1000, n) < 0.05
    n = next(n for n in range(1001) if hypergeom.cdf(0, 1000, 3, n) < 0.05)
    assert t.more_needed == n and not t.stop
    assert recall_test(40, 1000, n, 0).stop
    assert not recall_test(40, 1000, n - 1, 0).stop
    # the rule counts from where the sample is: 100 already drawn
    assert recall_test(40, 1000, 100, 0).more_needed == n - 100


def test_rule_stops_when_the_urn_is_exhausted_or_cannot_hold_h0():
    assert recall_test(5, 10, 10, 0).stop
    assert recall_test(5, 10, 10, 3).p_value == 0.0
    # K_tar = floor(100/0.95) - 100 + 1 = 6 > 4 records left: recall >= 95% whatever they are
    t = recall_test(100, 4)
    assert t.stop and t.p_value == 0.0 and t.more_needed == 0


def test_recall_test_refuses_bad_counts():
    with pytest.raises(ValueError, match="cannot exceed the urn"):
        recall_test(3, 10, 11, 0)
    with pytest.raises(ValueError, match="cannot exceed sampled"):
        recall_test(3, 10, 2, 3)
    with pytest.raises(ValueError, match="whole number"):
        recall_test(-1, 10)
    with pytest.raises(ValueError, match="confidence"):
        recall_test(3, 10, confidence=1.5)


def test_irrelevant_in_a_row():
    order = [1, 0, 0, 1] + [0] * 5 + [1]
    assert irrelevant_in_a_row(order, 3) == 7
    assert irrelevant_in_a_row(order, 6) == len(order)


def test_simulate_stop_follows_the_test_draw_by_draw():
    rng = np.random.default_rng(7)
    order = np.zeros(1500, dtype=np.int64)
    order[rng.choice(120, 30, replace=False)] = 1  # ranked: includes early
    order[rng.choice(np.arange(400, 1500), 3, replace=False)] = 1  # a few late ones the ranker misses
    res = simulate_stop(order, known_records=2, known_includes=1, switch_after=50, seed=3)
    switch = irrelevant_in_a_row(order, 50)
    assert res["ranked"] == switch
    # replay the random phase one draw at a time with the plain test
    drawn = np.random.default_rng(3).permutation(order[switch:])
    r_ranked = 1 + int(order[:switch].sum())
    found = 0
    for n in range(0, drawn.size + 1):
        if n:
            found += int(drawn[n - 1])
        if recall_test(r_ranked, drawn.size, n, found).stop:
            break
    assert res["sampled"] == n
    assert res["screened"] == 2 + switch + n
    assert res["recall"] == pytest.approx((r_ranked + found) / 34)
    assert res["work_saved"] == pytest.approx(1 - (2 + switch + n) / 1502)


def test_lines_when_everything_was_screened_in_ranked_order():
    from livingmeta.screening.stopping import DecidedRecord, automation_statement, review_stopping, stopping_lines

    stop = review_stopping([DecidedRecord(1, False, 1), DecidedRecord(0, False, 2)], [])
    assert stop["phase"] == "ranked" and stop["stop"] and stop["urn"] == 0
    assert "every record has been screened (1 include(s)), nothing is left to sample" in stopping_lines(stop)[0]
    assert "no random sample was needed" in automation_statement(stop, "rules")
