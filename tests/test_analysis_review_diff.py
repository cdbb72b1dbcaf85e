"""Diff classification between review versions, case by case (livingmeta.diff.classify).

Each case is an estimate row as the warehouse stores it: estimate/ci_* on the analysis scale (log for
ratios), *_bt back-transformed, plus the per-study {study: [yi, vi]} map.
"""

from __future__ import annotations

import math

import pytest

from livingmeta.diff import classify, version_trigger


def ratio(or_, lo, hi, *, k=2, studies=None, measure="OR", tsa=None, p=0.01):
    """An OR/RR row from numbers on the ratio scale."""
    return {"measure": measure, "method": "REML", "estimate": math.log(or_), "ci_lower": math.log(lo),
            "ci_upper": math.log(hi), "estimate_bt": or_, "ci_lower_bt": lo, "ci_upper_bt": hi, "k": k,
            "participants": 100.0 * k, "tau2": 0.0, "i2": 0.0, "p_value": p, "tsa_status": tsa,
            "studies": studies if studies is not None else {f"S{i}": [0.1 * i, 0.05] for i in range(k)}}


def diff_row(est, lo, hi, *, measure="MD", k=2, studies=None):
    return {"measure": measure, "method": "REML", "estimate": est, "ci_lower": lo, "ci_upper": hi, "k": k,
            "participants": 50.0 * k, "tau2": 0.0, "i2": 0.0, "p_value": 0.5,
            "studies": studies if studies is not None else {f"S{i}": [0.1 * i, 0.05] for i in range(k)}}


def changes(old, new, **kw):
    return classify(old, new, **kw)["changes"]


def test_direction_change_on_the_log_scale_and_for_differences():
    assert "direction_change" in changes(ratio(1.3, 0.8, 2.1), ratio(0.9, 0.6, 1.4))
    assert "direction_change" not in changes(ratio(1.3, 0.8, 2.1), ratio(1.1, 0.7, 1.7))
    assert "direction_change" in changes(diff_row(-1.0, -2.5, 0.5), diff_row(0.4, -1.0, 1.8))
    # a proportion has no null: never a "direction"
    prop = lambda e: {**diff_row(e, e - 0.1, e + 0.1, measure="PFT"), "estimate_bt": e}
    assert "direction_change" not in changes(prop(0.3), prop(0.6))


def test_significance_gained_and_lost_use_the_stored_ci_at_the_analysis_level():
    # the CI stored is the analysis' level (e.g. 0.90): its exclusion of the null is what counts
    assert "significance_gained" in changes(ratio(1.5, 0.9, 2.5), ratio(1.6, 1.05, 2.4))
    assert "significance_lost" in changes(ratio(1.6, 1.05, 2.4), ratio(1.5, 0.9, 2.5))
    both = changes(ratio(1.6, 1.05, 2.4), ratio(0.6, 0.4, 0.9))
    assert {"significance_lost", "significance_gained", "direction_change"} <= set(both)
    assert not {"significance_gained", "significance_lost"} & set(changes(ratio(1.6, 1.05, 2.4), ratio(1.7, 1.1, 2.6)))
    # a CI touching the null exactly includes it
    assert "significance_lost" in changes(diff_row(1.0, 0.2, 1.8), diff_row(1.0, 0.0, 2.0))


def test_relative_change_threshold_is_on_the_ratio_scale():
    # OR 2.00 -> 2.19: +9.5% (below 10%) although log OR moved by 13%
    assert "relative_change" not in changes(ratio(2.0, 1.2, 3.3), ratio(2.19, 1.3, 3.6))
    assert math.log(2.19) / math.log(2.0) - 1 > 0.10
    assert "relative_change" in changes(ratio(2.0, 1.2, 3.3), ratio(2.21, 1.3, 3.6))
    # a fall to 0.90 of the OR is -10.0%: not above the threshold; to 0.89 it is
    assert "relative_change" not in changes(ratio(1.0, 0.5, 2.0), ratio(0.9, 0.45, 1.8), relative_change=0.1 + 1e-9)
    assert "relative_change" in changes(ratio(1.0, 0.5, 2.0), ratio(0.89, 0.45, 1.8))
    assert "relative_change" in changes(ratio(2.0, 1.2, 3.3), ratio(2.11, 1.3, 3.4), relative_change=0.05)


def test_ci_narrowed_and_widened_thresholds_on_the_analysis_scale():
    base = diff_row(1.0, 0.0, 2.0)  # width 2
    assert "ci_narrowed" in changes(base, diff_row(1.0, 0.21, 1.79))  # width 1.58: -21%
    assert not {"ci_narrowed", "ci_widened"} & set(changes(base, diff_row(1.0, 0.15, 1.85)))  # -15%
    assert "ci_widened" in changes(base, diff_row(1.0, -0.25, 2.25))  # +25%
    assert not {"ci_narrowed", "ci_widened"} & set(changes(base, diff_row(1.0, -0.15, 2.15)))  # +15%
    # for ratios the width is taken on the log scale, where the CI is symmetric
    assert "ci_narrowed" in changes(ratio(2.0, 1.0, 4.0), ratio(2.0, 1.2, 3.333))


def test_studies_added_removed_retracted_and_changed():
    old = ratio(1.5, 1.0, 2.2, studies={"A": [0.1, 0.05], "B": [0.5, 0.1], "C": [0.3, 0.2]}, k=3)
    new = ratio(1.4, 0.9, 2.1, studies={"A": [0.1, 0.05], "C": [0.35, 0.2], "D": [0.2, 0.1]}, k=3)
    d = classify(old, new, retracted={"B"})
    assert d["studies_added"] == ["D"] and d["studies_removed"] == ["B"] and d["studies_retracted"] == ["B"]
    assert d["studies_changed"] == ["C"]
    assert {"studies_added", "studies_retracted", "data_changed"} <= set(d["changes"])
    assert "studies_removed" not in d["changes"]  # retracted, not merely removed
    d = classify(old, new)
    assert "studies_removed" in d["changes"] and "studies_retracted" not in d["changes"]


def test_analysis_appeared_disappeared_and_estimate_became_inestimable():
    new = ratio(1.5, 1.0, 2.2)
    d = classify(None, new)
    assert d["changes"][0] == "analysis_added" and d["old"] is None and d["changed"]
    d = classify(new, None, retracted={"S0", "S1"})
    assert "analysis_removed" in d["changes"] and "studies_retracted" in d["changes"] and d["new"] is None
    # Jann alone: the MH OR is undefined (estimate None); Geerts then makes it estimable
    undefined = {**ratio(1.0, 0.5, 2.0, k=1, studies={"Jann2020": [3.73, 2.44]}),
                 "estimate": None, "ci_lower": None, "ci_upper": None, "estimate_bt": None, "ci_lower_bt": None,
                 "ci_upper_bt": None, "p_value": None}
    defined = ratio(2.91, 1.16, 7.31, studies={"Jann2020": [3.73, 2.44], "Geerts2021": [0.44, 0.30]})
    d = classify(undefined, defined)
    assert d["changes"] == ["estimate_appeared", "studies_added"]
    d = classify(defined, undefined)
    assert "estimate_undefined" in d["changes"] and "studies_removed" in d["changes"]
    assert not {"direction_change", "significance_lost", "relative_change"} & set(d["changes"])
    assert classify(None, None) == {"old": None, "new": None, "changes": [], "studies_added": [],
                                    "studies_removed": [], "studies_retracted": [], "studies_changed": [],
                                    "changed": False}


def test_k1_and_missing_numbers_do_not_crash():
    one = ratio(16.25, 1.04, 255.0, k=1, measure="RR", studies={"Jann2020": [2.79, 1.97]})
    one_no_ci = {**one, "ci_lower": None, "ci_upper": None, "ci_lower_bt": None, "ci_upper_bt": None}
    d = classify(one, one_no_ci)
    assert d["changed"] and "ci_narrowed" not in d["changes"] and "significance_lost" not in d["changes"]
    d = classify(one, dict(one))
    assert d == {**d, "changes": [], "changed": False}


def test_tsa_status_changes():
    assert "tsa_boundary_crossed" in changes(ratio(1.5, 1.0, 2.2, tsa="inconclusive"),
                                             ratio(1.5, 1.1, 2.0, tsa="boundary_crossed"))
    assert "tsa_futility" in changes(ratio(1.1, 0.8, 1.5, tsa="inconclusive"), ratio(1.0, 0.9, 1.1, tsa="futility"))
    assert "tsa_ris_reached" in changes(ratio(1.1, 0.8, 1.5, tsa="inconclusive"), ratio(1.1, 0.8, 1.5, tsa="ris_reached"))
    assert "tsa_boundary_crossed" not in changes(ratio(1.5, 1.1, 2.0, tsa="boundary_crossed"),
                                                 ratio(1.5, 1.1, 2.0, tsa="boundary_crossed"))


def test_identical_numbers_are_no_change_and_tiny_float_noise_is_ignored():
    a = ratio(1.5, 1.0, 2.2)
    b = {**a, "estimate": a["estimate"] * (1 + 1e-13)}
    assert classify(a, b)["changed"] is False


def test_version_trigger_collects_studies():
    d1 = classify(ratio(1.5, 1.0, 2.2, studies={"A": [0, 1]}, k=1), ratio(1.4, 1.0, 2.0, studies={"B": [0, 1]}, k=1),
                  retracted={"A"})
    t = version_trigger({"x": d1})
    assert t["new_studies"] == ["B"] and t["retracted"] == ["A"] and t["removed_studies"] == []
