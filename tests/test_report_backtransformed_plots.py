"""Report figures show the numbers people read: forest plots back-transformed (proportions on a 0-1 axis, PFT
per study with the study's own n, pooled value as in the summary table; ratios on a log axis) and TSA charts
that keep the monitoring boundary in view or mark it off scale with its value.

Rows are our own; the engine's numbers are checked against metafor in tests/test_stats_study_backtransform.py.
"""

from __future__ import annotations

import math

import pytest

from livingmeta.report.document import display_numbers, fmt_interval, fmt_value
from livingmeta.report.plots import TSA_Y_CAP, forest_plot, forest_values, tsa_plot
from livingmeta.stats import meta_analyze

SHARE = [("Jann2020", 7, 11), ("Geerts2021", 6, 15), ("Novak2023", 10, 10)]
BINARY = [("Jann2020", 7, 11, 1, 12), ("Geerts2021", 12, 30, 9, 30), ("Novak2023", 30, 50, 12, 50)]


def _pft():
    return meta_analyze([dict(study=s, events=x, total=n) for s, x, n in SHARE], measure="PFT", method="REML").to_dict()


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_pft_forest_shows_each_studys_proportion_and_the_summary_tables_pooled_value():
    meta = _pft()
    values, pooled, on_display = forest_values(meta["studies"], meta, "PFT", False)
    assert on_display
    for (s, x, n), (e, lo, hi) in zip(SHARE, values):
        assert e == pytest.approx(x / n, abs=1e-9)
        assert 0 <= lo <= e <= hi <= 1
    assert pooled == display_numbers(meta)
    assert pooled["estimate"] == meta["estimate_bt"]  # harmonic-mean back-transform, as the summary table
    fig = forest_plot(meta["studies"], meta, "PFT", False, "Share with relief")
    texts = _texts(fig)
    assert f"{fmt_value(7 / 11)} ({fmt_interval(values[0][1], values[0][2])})" in texts
    assert f"{fmt_value(meta['estimate_bt'])} ({fmt_interval(meta['ci_lower_bt'], meta['ci_upper_bt'])})" in texts
    assert f"{fmt_value(meta['estimate'])} ({fmt_interval(meta['ci_lower'], meta['ci_upper'])})" not in texts
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    assert -0.05 <= lo <= 0 and 1 <= hi <= 1.05
    assert ax.get_xlabel().startswith("Proportion") and "back-transformed" in ax.get_xlabel()


def test_pft_result_stored_without_study_backtransforms_stays_on_the_analysis_scale():
    meta = _pft()
    old = [{k: s[k] for k in ("study", "yi", "vi", "weight", "ci_lower", "ci_upper")} for s in meta["studies"]]
    values, pooled, on_display = forest_values(old, meta, "PFT", False)
    assert not on_display and pooled["estimate"] == meta["estimate"]  # never a mix of scales
    assert values[0][0] == meta["studies"][0]["yi"]
    assert "(analysis scale)" in forest_plot(old, meta, "PFT", False, "x").axes[0].get_xlabel()


@pytest.mark.parametrize("measure,f", [("PLO", lambda y: 1 / (1 + math.exp(-y))),
                                       ("PAS", lambda y: math.sin(y) ** 2)])
def test_other_proportions_back_transformed_on_a_0_1_axis(measure, f):
    meta = meta_analyze([dict(study=s, events=x, total=n) for s, x, n in SHARE[:2]], measure=measure,
                        method="FE").to_dict()
    values, pooled, on_display = forest_values(meta["studies"], meta, measure, False)
    assert on_display and pooled["estimate"] == meta["estimate_bt"]
    for (s, x, n), (e, _, _), st in zip(SHARE, values, meta["studies"]):
        assert e == pytest.approx(x / n, abs=1e-9) and e == pytest.approx(f(st["yi"]), abs=1e-12)
    lo, hi = forest_plot(meta["studies"], meta, measure, False, "x").axes[0].get_xlim()
    assert -0.05 <= lo <= 0 and 1 <= hi <= 1.05


def test_ratio_forest_stays_on_a_log_axis_with_exponentiated_values():
    meta = meta_analyze([dict(study=s, treat_events=a, treat_total=n1, control_events=c, control_total=n2)
                         for s, a, n1, c, n2 in BINARY], measure="OR", method="MH").to_dict()
    values, pooled, on_display = forest_values(meta["studies"], meta, "OR", True)
    assert on_display
    for (e, lo, hi), st in zip(values, meta["studies"]):
        assert (e, lo, hi) == pytest.approx((math.exp(st["yi"]), math.exp(st["ci_lower"]), math.exp(st["ci_upper"])),
                                            rel=1e-12)
    ax = forest_plot(meta["studies"], meta, "OR", True, "x").axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "Odds ratio (log scale)"


def _tsa(current_upper: float, z: float = 2.27) -> dict:
    ris = 4000.0
    return {"ris": ris, "status": "inconclusive",
            "points": [{"label": "A2020", "information": 23.0, "fraction": 23 / ris, "z": None, "upper": 30.4,
                        "lower": -30.4, "futility": None},
                       {"label": "B2021", "information": 83.0, "fraction": 83 / ris, "z": z, "upper": current_upper,
                        "lower": -current_upper, "futility": None}],
            "curve": [{"fraction": 23 / ris, "upper": 30.4, "futility": None},
                      {"fraction": 83 / ris, "upper": current_upper, "futility": None},
                      {"fraction": 1.0, "upper": 1.96, "futility": 1.96}]}


def test_tsa_boundary_far_above_is_marked_off_scale_with_its_value():
    fig = tsa_plot(_tsa(15.95), "TSA")
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    assert hi == TSA_Y_CAP and lo == -TSA_Y_CAP
    assert any(f"±{15.95:.1f} (off scale)" in t and "B2021" in t for t in _texts(fig))


@pytest.mark.parametrize("current", [4.5, 7.0])
def test_tsa_boundary_within_reach_is_inside_the_axis(current):
    fig = tsa_plot(_tsa(current), "TSA")
    hi = fig.axes[0].get_ylim()[1]
    assert hi >= current + 0.5  # the boundary at the current information is drawn, not cut at the edge
    assert not any("off scale" in t for t in _texts(fig))


def test_tsa_large_z_widens_the_axis():
    fig = tsa_plot(_tsa(15.95, z=11.0), "TSA")
    assert fig.axes[0].get_ylim()[1] >= 12.0
