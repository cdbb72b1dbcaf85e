"""Pure parts of the living analysis: study rows for the engine, input hashes, diff classification."""

from __future__ import annotations

import math

import pytest

from livingmeta.analysis import build_study_rows, input_hash
from livingmeta.diff import classify


def _r(study, arm, **kw):
    return {"study_id": study, "arm": arm, "group_label": None, "subgroup": None, "year": 2020, **kw}


def test_binary_rows_missing_arm_and_combined_groups():
    rows, notes = build_study_rows([
        _r("A", "treatment", events=3, total=10, group_label="low"), _r("A", "treatment", events=4, total=10, group_label="high"),
        _r("A", "control", events=2, total=20), _r("B", "treatment", events=1, total=5)], kind="binary")
    assert rows == [{"study": "A", "treat_events": 7.0, "treat_total": 20.0, "control_events": 2.0,
                     "control_total": 20.0, "year": 2020, "subgroup": None}]
    assert any("B: left out, no control arm" in n for n in notes) and any("2 treatment groups" in n for n in notes)


def test_continuous_groups_combined_as_cochrane_handbook():
    rows, _ = build_study_rows([
        _r("A", "treatment", mean=10, sd=2, n=10), _r("A", "treatment", mean=14, sd=3, n=30),
        _r("A", "control", mean=9, sd=2, n=40)], kind="continuous")
    # Handbook Table 6.5.a: N = 40, M = (100 + 420) / 40, SD^2 = (9*4 + 29*9 + 10*30/40*16) / 39
    assert rows[0]["treat_n"] == 40 and rows[0]["treat_mean"] == pytest.approx(13.0)
    assert rows[0]["treat_sd"] == pytest.approx(math.sqrt((36 + 261 + 120) / 39))


def test_proportion_uses_single_and_chosen_arm():
    ex = [_r("A", "single", events=3, total=10), _r("B", "treatment", events=4, total=8), _r("B", "control", events=1, total=8)]
    rows, _ = build_study_rows(ex, kind="proportion", arm="treatment")
    assert [(r["study"], r["events"], r["total"]) for r in rows] == [("A", 3.0, 10.0), ("B", 4.0, 8.0)]


def test_input_hash_changes_with_data_settings_and_engine():
    rows, _ = build_study_rows([_r("A", "treatment", events=3, total=10), _r("A", "control", events=2, total=10)],
                               kind="binary")
    s = {"measure": "OR", "method": "MH"}
    h = input_hash(rows, s, "1.0.0")
    assert h == input_hash([dict(r) for r in rows], dict(s), "1.0.0")
    assert h != input_hash(rows, {**s, "method": "FE"}, "1.0.0")
    assert h != input_hash(rows, s, "1.0.1")
    assert h != input_hash([{**rows[0], "treat_events": 4.0}], s, "1.0.0")


def _est(est, lo, hi, k=2, studies=None, **kw):
    return {"measure": "OR", "method": "MH", "estimate": math.log(est), "ci_lower": math.log(lo), "ci_upper": math.log(hi),
            "estimate_bt": est, "ci_lower_bt": lo, "ci_upper_bt": hi, "k": k, "participants": 100.0, "tau2": 0.0,
            "i2": 0.0, "p_value": 0.04, "tsa_status": kw.get("tsa", "inconclusive"),
            "studies": studies or {"A": [0.1, 0.2], "B": [0.3, 0.1]}}


def test_classify_changes():
    old = _est(1.5, 0.9, 2.5)
    new = _est(0.8, 0.6, 0.95, k=3, studies={"A": [0.1, 0.2], "B": [0.3, 0.1], "C": [-0.5, 0.1]}, tsa="boundary_crossed")
    d = classify(old, new, relative_change=0.1, ci_width_change=0.2)
    assert set(d["changes"]) == {"direction_change", "significance_gained", "relative_change", "ci_narrowed",
                                 "tsa_boundary_crossed", "studies_added"}
    assert d["old"]["estimate"] == 1.5 and d["new"]["k"] == 3 and d["changed"]
    same = classify(old, _est(1.5, 0.9, 2.5))
    assert not same["changed"] and same["changes"] == []
    gone = classify(old, _est(1.52, 0.85, 2.6, k=1, studies={"A": [0.1, 0.2]}), retracted={"B"})
    assert gone["changes"] == ["studies_retracted"] and gone["studies_removed"] == ["B"]
    lost = classify(_est(2.0, 1.2, 3.0), _est(1.9, 0.95, 3.8))
    assert "significance_lost" in lost["changes"] and "ci_widened" in lost["changes"]
    assert classify(None, old)["changes"] == ["analysis_added", "studies_added"]
    assert classify(old, None)["changes"][0] == "analysis_removed"
