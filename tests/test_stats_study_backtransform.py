"""Per-study back-transforms in MetaResult.studies (n, yi_bt, ci_lower_bt, ci_upper_bt).

PFT numbers are checked against metafor 3.8-1 (tests/fixtures/stats/pft_study_backtransform.R writes the
JSON): per study transf.ipft(yi, ni) with the study's own n, which returns xi / ni exactly; pooled values
predict(res, transf = transf.ipft.hm, targs = list(ni = ni)). Tolerance: 1e-9 absolute for exact inverses
(only rounding separates them), 1e-6 for values through fitted models (metafor's REML stops at 1e-5 in tau2).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from livingmeta.stats import cumulative, leave_one_out, meta_analyze

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "reference" / "metafor_cases.json"
FIXTURE = json.loads((ROOT / "tests/fixtures/stats/pft_study_backtransform.json").read_text())
EXACT = 1e-9
FITTED = 1e-6


def _shared_case(case_id: str) -> dict:
    if not SHARED.exists():
        pytest.skip("shared reference cases not present (../shared/reference/metafor_cases.json)")
    return next(c for c in json.loads(SHARED.read_text()) if c["id"] == case_id)


def _close(got, want, tol, what):
    assert got is not None, what
    assert abs(got - want) <= tol, f"{what}: {got!r} vs metafor {want!r}"


@pytest.mark.parametrize("case", FIXTURE["cases"], ids=lambda c: c["id"])
def test_pft_study_backtransform_uses_each_studys_own_n(case):
    rows = _shared_case(case["id"])["rows"]
    r = meta_analyze(rows, measure="PFT", method=case["method"]).to_dict()
    want = case["studies"]
    assert [s["study"] for s in r["studies"]] == [row["study"] for row in rows]
    for i, (s, row) in enumerate(zip(r["studies"], rows)):
        assert s["n"] == row["total"]
        _close(s["yi"], want["yi"][i], EXACT, f"{row['study']} yi")
        # the exact inverse: a study's own yi with its own n is its observed proportion
        _close(s["yi_bt"], row["events"] / row["total"], EXACT, f"{row['study']} yi_bt = xi/ni")
        _close(s["yi_bt"], want["yi_bt"][i], EXACT, f"{row['study']} yi_bt")
        _close(s["ci_lower_bt"], want["ci_lower_bt"][i], EXACT, f"{row['study']} ci_lower_bt")
        _close(s["ci_upper_bt"], want["ci_upper_bt"][i], EXACT, f"{row['study']} ci_upper_bt")
        assert s["ci_lower_bt"] <= s["yi_bt"] <= s["ci_upper_bt"]
    for key, value in case["pooled"].items():  # the pooled line keeps the harmonic mean of n
        _close(r[key], value, FITTED, f"pooled {key}")


def test_pft_edges_no_events_all_events_and_n_of_one():
    edges = FIXTURE["edges"]
    rows = [{"study": f"s{i}", "events": x, "total": n}
            for i, (x, n) in enumerate(zip(edges["rows"]["events"], edges["rows"]["total"]))]
    r = meta_analyze(rows, measure="PFT", method=edges["method"]).to_dict()
    for i, (s, row) in enumerate(zip(r["studies"], rows)):
        _close(s["yi_bt"], row["events"] / row["total"], EXACT, f"{s['study']} yi_bt")
        for key in ("yi_bt", "ci_lower_bt", "ci_upper_bt"):
            _close(s[key], edges["studies"][key][i], EXACT, f"{s['study']} {key}")
    for key, value in edges["pooled"].items():
        _close(r[key], value, FITTED, f"pooled {key}")


def test_other_measures_backtransform_each_study_and_keep_the_analysis_scale():
    binary = [dict(study="a", treat_events=3, treat_total=10, control_events=5, control_total=12),
              dict(study="b", treat_events=2, treat_total=20, control_events=5, control_total=22)]
    single = [dict(study="a", events=3, total=10), dict(study="b", events=7, total=9)]
    cases = [(binary, "OR", "MH", math.exp), (binary, "RR", "DL", math.exp), (binary, "OR", "PETO", math.exp),
             (single, "PLO", "REML", lambda x: 1 / (1 + math.exp(-x))),
             (single, "PAS", "FE", lambda x: math.sin(min(max(x, 0.0), math.pi / 2)) ** 2),
             (binary, "RD", "DL", None), (single, "PR", "FE", None)]
    for rows, measure, method, f in cases:
        r = meta_analyze(rows, measure=measure, method=method).to_dict()
        for s, row in zip(r["studies"], rows):
            n = row.get("total") or row["treat_total"] + row["control_total"]
            assert s["n"] == n, (measure, method)
            for key, src in (("yi_bt", "yi"), ("ci_lower_bt", "ci_lower"), ("ci_upper_bt", "ci_upper")):
                if f is None:
                    assert s[key] is None, (measure, key)
                else:
                    _close(s[key], f(s[src]), EXACT, f"{measure} {method} {s['study']} {key}")
        if measure == "PLO":
            _close(r["studies"][0]["yi_bt"], 0.3, EXACT, "PLO yi_bt = xi/ni")


def test_generic_rows_without_n_say_none_and_ratio_scale_exponentiates():
    rows = [dict(study="a", estimate=1.2, se=0.1), dict(study="b", estimate=0.9, se=0.2, n=40)]
    r = meta_analyze(rows, measure="GEN", method="FE", scale="ratio").to_dict()
    assert [s["n"] for s in r["studies"]] == [None, 40]
    _close(r["studies"][0]["yi_bt"], 1.2, EXACT, "GEN ratio yi_bt")
    d = meta_analyze(rows, measure="GEN", method="FE").to_dict()
    assert all(s["yi_bt"] is None for s in d["studies"])


def test_subset_fits_carry_the_same_study_fields():
    rows = _shared_case("pritz1997_PFT_REML_z")["rows"]
    full = meta_analyze(rows, measure="PFT", method="REML")
    d = full.to_dict()
    json.dumps(d, allow_nan=False)
    # leave-one-out and cumulative results carry the same per-study fields as a separate fit
    for (_, res), sub in ((leave_one_out(rows, measure="PFT", method="REML")[0], rows[1:]),
                          (cumulative(rows, measure="PFT", method="REML")[1], rows[:2])):
        alone = meta_analyze(sub, measure="PFT", method="REML").studies
        new = ("study", "n", "yi_bt", "ci_lower_bt", "ci_upper_bt")  # weights: see test_stats_fast_paths
        assert [{k: s[k] for k in new} for s in res.studies] == [{k: s[k] for k in new} for s in alone]
