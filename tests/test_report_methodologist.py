"""The report a methodologist signs (issue 16): the TSA boundary curve against the spending function, forest
plots in the RevMan layout, the GRADE summary of findings against hand computation, PRISMA 2020 for updated
reviews, one label per study, SVG with real text, and review.toml's new keys validated.

All data are our own; the TSA boundaries are recomputed here by an independent recursion (a different grid and
quadrature from livingmeta.stats.tsa) from the formula alpha(t) = 4 - 4 Phi(z_{1-alpha/4} / sqrt t).
"""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from livingmeta.config import ConfigError, TEMPLATE, parse_review
from livingmeta.report import build_report, render_html, render_markdown
from livingmeta.report.document import corresponding_risk, sof_rows, study_label_map
from livingmeta.report.plots import forest_plot, heterogeneity_text, prisma_update_counts, tsa_curve, tsa_plot
from livingmeta.stats import meta_analyze
from livingmeta.stats.tsa import boundary_curve, trial_sequential_analysis

BOUNDARY_TOL = 2e-3  # |Z| between the curve and the independent recursion (grid step 0.001 on the score scale)
ROOT = Path(__file__).resolve().parents[1]


def _alpha_spent(t: float, alpha: float) -> float:
    """Two-sided O'Brien-Fleming-type spending: alpha/2 per side, 2 - 2 Phi(z_{1-alpha/4} / sqrt t) each."""
    return 2 * (2 * stats.norm.sf(stats.norm.isf(alpha / 4) / math.sqrt(t)))


def _independent_boundaries(fractions: list[float], alpha: float) -> list[float]:
    """Boundaries by a plain recursion on a fixed grid of the score S = Z sqrt(t) (trapezoid rule,
    bisection): the first exit at look k has probability alpha(t_k) - alpha(t_{k-1})."""
    h = 0.001
    s = np.arange(-14, 14 + h / 2, h)
    dens = None
    out, spent, last = [], 0.0, 0.0
    for t in fractions:
        inc = _alpha_spent(t, alpha) - spent
        dt = t - last
        if dens is None:
            b = stats.norm.isf(inc / 2)
            dens = stats.norm.pdf(s, 0, math.sqrt(t))
        else:
            def exit_prob(b):
                c = b * math.sqrt(t)
                return 2 * np.trapezoid(dens * stats.norm.sf((c - s) / math.sqrt(dt)), s)
            lo_b, hi_b = 0.5, 40.0
            for _ in range(60):
                mid = (lo_b + hi_b) / 2
                lo_b, hi_b = (lo_b, mid) if exit_prob(mid) < inc else (mid, hi_b)
            b = (lo_b + hi_b) / 2
            m = int(math.ceil(7 * math.sqrt(dt) / h))
            kern = stats.norm.pdf(np.arange(-m, m + 1) * h, 0, math.sqrt(dt)) * h  # odd length: centred
            dens = np.convolve(dens, kern, mode="same")
        dens = np.where(np.abs(s) < b * math.sqrt(t), dens, 0.0)
        out.append(float(b))
        spent += inc
        last = t
    return out


def test_tsa_curve_is_dense_and_matches_the_spending_function_at_twelve_fractions():
    looks = [0.07, 0.23, 0.41]
    curve = boundary_curve(looks, alpha=0.05, beta=0.2)
    fr = [c["fraction"] for c in curve]
    assert len(curve) >= 60 and fr == sorted(fr) and fr[-1] == 1.0
    assert {round(t, 9) for t in looks} <= {round(t, 9) for t in fr}  # evaluated at every look too
    indep = _independent_boundaries(fr, 0.05)
    # from t = 0.15 on: before it the increments (< 1e-7) are below what a plain quadrature resolves, and the
    # chart shows those boundaries (> 5) only as "off scale"
    checked = [i for i in range(len(fr)) if fr[i] >= 0.15][::4]
    assert len(checked) >= 10
    for i in checked:
        assert curve[i]["upper"] == pytest.approx(indep[i], abs=BOUNDARY_TOL), (fr[i], curve[i]["upper"], indep[i])
    # the first point has no earlier look: exactly the single-look quantile of the alpha spent there
    assert curve[0]["upper"] == pytest.approx(stats.norm.isf(_alpha_spent(fr[0], 0.05) / 2), rel=1e-9)
    # the symptom: at half the RIS the boundary is about 3, not the ~9 of straight lines between looks
    half = next(c for c in curve if abs(c["fraction"] - 0.5) < 1e-9)
    assert 2.7 < half["upper"] < 3.2
    fut = [(c["futility"], c["upper"]) for c in curve if c["futility"] is not None]
    assert len(fut) >= 50 and all(f <= u for f, u in fut)  # beta spent on the grid; never above the boundary


def _tsa_doc():
    pts = [{"label": "A2019", "information": 300.0, "z": 1.1}, {"label": "B2021", "information": 900.0, "z": 1.9},
           {"label": "C2023", "information": 1700.0, "z": 2.4}]
    return trial_sequential_analysis(pts, 3000.0, alpha=0.05, beta=0.2, d2=0.25, direction=1, ris_unadjusted=2250.0)


def test_tsa_chart_draws_the_curve_futility_looks_and_assumptions():
    tsa = _tsa_doc()
    settings = {"alpha": 0.05, "beta": 0.2, "control_event_rate": 0.3, "anticipated_effect": 0.25,
                "effect_direction": "increase", "effect_source": "pilot trial X", "heterogeneity_correction": "diversity"}
    fig = tsa_plot(tsa, "TSA", settings=settings, kind="binary", labels={"B2021": "Bee 2021"})
    ax = fig.axes[0]
    lines = {ln.get_gid(): ln for ln in ax.get_lines() if ln.get_gid()}
    assert len(lines["tsa-boundary"].get_xdata()) >= 50
    assert len(lines["tsa-futility"].get_xdata()) >= 10  # futility computed, so drawn
    drawn = {ln.get_label() for ln in ax.get_lines()}
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert set(legend) <= drawn and "futility boundary" in legend  # no legend entry without its line
    texts = [t.get_text() for t in ax.texts] + [t.get_text() for t in fig.texts]
    assert "Bee 2021" in texts and "A2019" in texts and "C2023" in texts  # looks named by the study that made them
    box = next(t for t in texts if "RIS" in t and "α" in t)
    for part in ("α = 0.05", "β = 0.2", "Two-sided", "Control event proportion 0.3;", "increase 25%",
                 "pilot trial X", "D² = 25%", "RIS 2,250 before and 3,000 after", "accrued information 1,700"):
        assert part in box, part
    # the curve at each look is the dense design's boundary; the decisions stay those of the actual looks
    c = tsa_curve(tsa)
    at_look = [x for x in c if x["look"]]
    assert len(at_look) == 3 and all(x["upper"] <= p["upper"] + 0.5 for x, p in zip(at_look, tsa["points"]))


def test_tsa_without_futility_lists_no_futility_in_the_legend():
    tsa = {"ris": 4000.0, "alpha": 0.05, "beta": None, "points": [{"label": "A", "information": 100.0, "z": 1.0,
                                                                  "upper": 12.0}]}
    fig = tsa_plot(tsa, "TSA")
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "futility boundary" not in legend and "monitoring boundary" in legend


BIN = [("Jann2020", 7, 11, 0, 12), ("Geerts2021", 12, 30, 9, 30), ("Zero2022", 0, 15, 0, 14),
       ("Wide2023", 2, 4, 1, 5)]


def _bin_rows():
    return [dict(study=s, treat_events=a, treat_total=n1, control_events=c, control_total=n2) for s, a, n1, c, n2 in BIN]


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [t.get_text() for t in fig.texts]


def test_forest_plot_revman_layout_arms_favours_heterogeneity_and_zero_cells():
    meta = meta_analyze(_bin_rows(), measure="OR", method="MH").to_dict()
    arms = {s: {"treatment": {"events": a, "total": n1}, "control": {"events": c, "total": n2}}
            for s, a, n1, c, n2 in BIN}
    fig = forest_plot(meta["studies"], meta, "OR", True, "Responders", arms=arms, kind="binary",
                      labels={"Jann2020": "Jann 2020"}, treatment="IVIG", control="placebo", higher_is_better=True)
    texts = _texts(fig)
    assert "Jann 2020" in texts and "Jann2020" not in texts
    assert {"IVIG", "placebo", "7/11", "0/12", "12/30", "9/30", "21/60", "10/61"} <= set(texts)
    assert "Favours placebo" in texts and "Favours IVIG" in texts  # responders: right of 1 favours IVIG
    left = next(t for t in fig.axes[0].texts if t.get_text() == "Favours placebo")
    assert left.get_ha() == "right"
    het = next(t for t in texts if t.startswith("Heterogeneity"))
    assert "Tau²" not in het and "I² =" in het and "df = " in het  # common effect: no tau² beside I²
    assert any(t.startswith("Test for overall effect: Z = ") for t in texts)
    assert any(t.startswith("not estimable (no events in either arm)") for t in texts)
    assert any("Mantel–Haenszel weight 0%" in t and "Jann 2020" in t for t in texts)
    lo, hi = fig.axes[0].get_xlim()
    assert hi < 1000  # Jann 2020's upper limit (~ 900) is clipped with an arrow, not stretched to
    assert any("Arrows" in t for t in texts)
    # lower is better (events are harms): the left side favours the treatment
    harm = forest_plot(meta["studies"], meta, "OR", True, "x", arms=arms, kind="binary", treatment="IVIG",
                       control="placebo", higher_is_better=False)
    assert next(t for t in harm.axes[0].texts if t.get_text() == "Favours IVIG").get_ha() == "right"


def test_random_effects_forest_shows_tau2_and_prediction_interval():
    meta = meta_analyze(_bin_rows()[:2] + _bin_rows()[3:], measure="OR", method="REML").to_dict()
    het = heterogeneity_text(meta)
    assert het.startswith("Heterogeneity: Tau² = ") and "Chi² = " in het
    texts = _texts(forest_plot(meta["studies"], meta, "OR", True, "x", kind="binary"))
    assert "95% prediction interval" in texts


def test_continuous_forest_shows_mean_sd_n():
    rows = [dict(study="A", treat_mean=5.0, treat_sd=2.0, treat_n=20, control_mean=6.0, control_sd=2.5, control_n=21),
            dict(study="B", treat_mean=4.0, treat_sd=1.5, treat_n=30, control_mean=4.5, control_sd=1.8, control_n=28)]
    meta = meta_analyze(rows, measure="MD", method="REML").to_dict()
    arms = {r["study"]: {"treatment": {"mean": r["treat_mean"], "sd": r["treat_sd"], "n": r["treat_n"]},
                         "control": {"mean": r["control_mean"], "sd": r["control_sd"], "n": r["control_n"]}}
            for r in rows}
    texts = _texts(forest_plot(meta["studies"], meta, "MD", False, "Pain", arms=arms, kind="continuous"))
    assert "5.00 (2.00), 20" in texts and "6.00 (2.50), 21" in texts and "Mean (SD), N" in texts


def _sof_doc(acr=None, prev=True):
    rows = _bin_rows()[:2]
    meta = meta_analyze(rows, measure="OR", method="MH").to_dict()
    outcome = {"id": "resp", "label": "Responders", "kind": "binary", "assumed_control_risk": acr,
               "certainty": {"risk_of_bias": "serious", "imprecision": "serious", "level": "low",
                             "footnotes": {"risk_of_bias": "unclear concealment", "imprecision": "few events"}}}
    a = {"analysis_id": "resp-or", "label": "Responders OR", "role": "primary", "outcome": "resp", "measure": "OR",
         "method": "MH", "status": "computed", "result": {"meta": meta, "inputs": rows},
         "history": [{"version": 1, "estimate": 1.5, "ci_lower": 0.8, "ci_upper": 2.9, "k": 1, "participants": 60},
                     {"version": 2, "estimate": meta["estimate_bt"], "ci_lower": meta["ci_lower_bt"],
                      "ci_upper": meta["ci_upper_bt"], "k": 2, "participants": 83}]}
    doc = {"review": {"id": "r", "title": "T"}, "version": {"version": 2},
           "previous_version": {"version": 1} if prev else None, "analyses": [a], "outcomes": [outcome]}
    return doc, meta


def test_summary_of_findings_numbers_by_hand():
    doc, meta = _sof_doc(acr=0.2)
    report = build_report(doc, plots=False)
    (row,) = report.sof
    or_, lo, hi = meta["estimate_bt"], meta["ci_lower_bt"], meta["ci_upper_bt"]
    per1000 = [round(1000 * 0.2 * x / (1 - 0.2 + 0.2 * x)) for x in (or_, lo, hi)]  # Cochrane Handbook 14.1.5.1
    assert row["fmt"]["assumed"] == "200 per 1,000" and row["control_risk_source"].startswith("review.toml")
    assert row["fmt"]["corresponding"] == f"{per1000[0]} per 1,000 ({per1000[1]} to {per1000[2]})"
    assert row["fmt"]["difference"].startswith(f"{per1000[0] - 200} more per 1,000")
    assert row["fmt"]["participants"] == "83 (2 studies)"
    assert row["fmt"]["relative"] == f"{or_:.2f} ({lo:.2f} to {hi:.2f})"
    assert row["fmt"]["certainty"] == "⊕⊕◯◯ Low" and row["footnote_marks"] == ["a", "b"]
    assert [f["text"] for f in report.sof_footnotes] == ["Risk of bias (serious): unclear concealment",
                                                         "Imprecision (serious): few events"]
    # pooled control arms when review.toml gives none: (0 + 9) / (12 + 30)
    doc2, _ = _sof_doc(acr=None)
    (row2,) = build_report(doc2, plots=False).sof
    assert row2["control_risk"] == pytest.approx(9 / 42) and row2["fmt"]["assumed"] == "214 per 1,000"
    assert row2["control_risk_source"] == "pooled control arms of 2 studies"
    # what changed: version 1's row from its stored estimate with the same control risk
    (change,) = report.sof_changes
    old = [round(1000 * 0.2 * x / (1 - 0.2 + 0.2 * x)) for x in (1.5, 0.8, 2.9)]
    assert f"{old[0]} per 1,000 ({old[1]} to {old[2]})" in " ".join(change["changes"])
    assert "participants (studies): 60 (1 study) → 83 (2 studies)" in change["changes"]
    html = render_html(report)
    assert 'id="grade-sof"' in html and 'id="sof-changes"' in html
    md = render_markdown(report)
    assert f"{per1000[0]} per 1,000 ({per1000[1]} to {per1000[2]})" in md and "⊕⊕◯◯ Low (a,b)" in md


@pytest.mark.parametrize("measure,value,expected", [("RR", 1.5, 0.3), ("OR", 2.0, 0.4 / 1.2), ("RD", -0.05, 0.15),
                                                    ("PETO", 1.0, 0.2)])
def test_corresponding_risk_formulas(measure, value, expected):
    assert corresponding_risk(0.2, measure, value) == pytest.approx(expected, abs=1e-12)


def test_prisma_for_updated_reviews_counts_new_records_as_differences():
    prev = {"identified_pubmed": 10, "identified_ctgov": 3, "identified_total": 13, "duplicates_removed": 1,
            "screened": 12, "excluded_title_abstract": 6, "full_text_sought": 6, "full_text_assessed": 6,
            "excluded_full_text": 1, "included": 5, "studies_included": 4, "excluded_reasons": {"not an RCT": 1}}
    cur = {**prev, "identified_pubmed": 15, "identified_total": 18, "screened": 17, "excluded_title_abstract": 8,
           "full_text_sought": 9, "full_text_assessed": 8, "excluded_full_text": 2, "included": 6,
           "studies_included": 5, "excluded_reasons": {"not an RCT": 1, "wrong population": 1}}
    c = prisma_update_counts(cur, prev)
    assert (c["previous_studies"], c["identified"], c["pubmed"], c["ctgov"], c["screened"]) == (4, 5, 5, 0, 5)
    assert (c["sought"], c["not_retrieved"], c["assessed"], c["excluded_full_text"]) == (3, 1, 2, 1)
    assert c["reasons"] == {"wrong population": 1} and (c["new_studies"], c["total_studies"]) == (1, 5)


def test_one_label_per_study_even_when_two_share_a_name():
    studies = [{"study_id": "jann2020", "label": "Jann 2020", "records": []},
               {"study_id": "smith2019a", "label": "Smith 2019", "records": [{"source": "ctgov", "source_id": "NCT01"}]},
               {"study_id": "smith2019b", "label": "Smith 2019", "records": [{"source": "pubmed", "source_id": "9"}]}]
    labels = study_label_map(studies)
    assert labels == {"jann2020": "Jann 2020", "smith2019a": "Smith 2019 (NCT01)", "smith2019b": "Smith 2019 [smith2019b]"}
    assert len(set(labels.values())) == 3


def test_svg_has_real_text_and_a_title():
    doc, _ = _sof_doc(acr=0.2)
    report = build_report(doc)
    svg = report.plots[0].svg
    assert "<text" in svg and "Favours" in svg and re.search(r'<svg[^>]*aria-label="Forest plot: Responders OR"', svg)
    assert "<title" in svg


def test_no_prose_artifacts_in_the_report():
    doc, _ = _sof_doc(acr=0.2)
    doc["analyses"][0]["history"][0].update(estimate=None, ci_lower=None, ci_upper=None)
    html = render_html(build_report(doc))
    assert ".." not in re.sub(r"\.\./|<[^>]*>", "", html) and "– (95% CI – to –)" not in html
    assert "not estimable" in html


def test_certainty_judgments_are_validated():
    base = TEMPLATE.replace("# assumed_control_risk = 0.25", "assumed_control_risk = 0.25")
    assert parse_review(base).outcomes[0].assumed_control_risk == 0.25
    ok = base.replace("# [outcomes.certainty]", '''[outcomes.certainty]
imprecision = "very serious"
level = "low"
footnotes = {imprecision = "one small trial"}
''', 1)
    assert parse_review(ok).outcomes[0].certainty.level == "low"
    with pytest.raises(ConfigError, match=r"level 'moderate' does not follow .* they give 'low'"):
        parse_review(ok.replace('level = "low"', 'level = "moderate"'))
    with pytest.raises(ConfigError, match=r"explain each downgrade .* imprecision"):
        parse_review(ok.replace('footnotes = {imprecision = "one small trial"}', ""))
    with pytest.raises(ConfigError, match=r"assumed_control_risk"):
        parse_review(base.replace("assumed_control_risk = 0.25", "assumed_control_risk = 1.5"))


def test_document_and_plots_do_not_import_each_other():
    for name, other in (("document", "plots"), ("plots", "document")):
        tree = ast.parse((ROOT / "livingmeta" / "report" / f"{name}.py").read_text())
        mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert f"livingmeta.report.{other}" not in mods, name


def test_source_text_in_figures_is_escaped_text_not_markup():
    meta = meta_analyze(_bin_rows()[:2], measure="OR", method="MH").to_dict()
    from livingmeta.report.plots import figure_files
    hostile = '<script>alert(1)</script> x" onload="alert(2)'
    svg, _ = figure_files(forest_plot(meta["studies"], meta, "OR", True, hostile, kind="binary",
                                      labels={"Jann2020": hostile}), "f1", hostile)
    import xml.etree.ElementTree as ET

    root = ET.fromstring(svg)
    elements = list(root.iter())
    assert not [e for e in elements if e.tag.endswith("script")]
    assert not [(e.tag, a) for e in elements for a in e.attrib if a.lower().startswith("on")]  # no handlers
    assert any(hostile in (e.text or "") for e in elements if e.tag.endswith("text"))  # the label, as text
    assert root.get("aria-label") == hostile
