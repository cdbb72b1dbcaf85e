"""TSA boundaries against an independent implementation: R's rpact 3.3.4 (Debian r-cran-rpact),
getDesignGroupSequential(typeOfDesign = "asOF", sided = 2, alpha = 0.05) — the Lan-DeMets O'Brien-Fleming
spending of alpha/2 per side used by gsDesign/ldbounds. rpact prints Inf where a look spends less alpha
than its precision; there we check the closed form of a first look instead.

Tolerance: TOL = 1e-4 on the Z scale (rpact's printed 6-7 digits; our 801-point Simpson grid is good to ~1e-5).
"""

from __future__ import annotations

import pytest
from scipy import stats

from livingmeta.stats.tsa import alpha_spent, efficacy_boundaries, trial_sequential_analysis

TOL = 1e-4
RPACT = [
    ([0.2, 0.4, 0.6, 0.8, 1.0], [4.87688, 3.35701, 2.68028, 2.28982, 2.03103]),
    ([1 / 3, 2 / 3, 1.0], [3.71030, 2.51143, 1.99305]),
    ([0.15, 0.45, 0.7, 1.0], [5.66967, 3.14378, 2.45153, 2.00109]),
    ([0.05, 0.1, 0.3, 0.6, 1.0], [None, None, 3.928577, 2.669972, 1.981025]),
]


@pytest.mark.parametrize("looks,want", RPACT)
def test_boundaries_match_rpact(looks, want):
    got = efficacy_boundaries(looks, alpha=0.05)
    for g, w in zip(got, want):
        if w is not None:
            assert g == pytest.approx(w, abs=TOL)


def test_first_look_is_the_closed_form_of_the_spent_alpha():
    # the demo's looks (23/431.7 and 60/4226.9 participants): b_1 = Phi^-1(1 - alpha(t)/2) exactly
    for t in (0.05328, 0.0142, 0.05):
        b = efficacy_boundaries([t, 1.0])[0]
        assert b == pytest.approx(stats.norm.isf(float(alpha_spent(t, 0.05)) / 2), abs=1e-9)
    assert float(alpha_spent(1.0, 0.05)) == pytest.approx(0.05, abs=1e-15)


def test_status_uses_the_latest_look_and_signed_futility():
    # z beyond the boundary in the harmful direction also crosses (two-sided boundaries)
    r = trial_sequential_analysis([{"label": "A", "information": 900, "z": -3.2}], 1000, direction=1)
    assert r["status"] == "boundary_crossed"
    # at the RIS, a z between the futility and efficacy boundaries is neither: the RIS is reached
    r = trial_sequential_analysis([{"label": "A", "information": 250, "z": 0.5},
                                   {"label": "B", "information": 500, "z": 1.0},
                                   {"label": "C", "information": 750, "z": 1.5},
                                   {"label": "D", "information": 1000, "z": 1.95}], 1000)
    last = r["points"][-1]
    assert last["futility"] < 1.95 < last["upper"] and r["status"] == "ris_reached"
