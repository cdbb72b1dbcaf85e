"""Seeding a real warehouse with published review versions in the documented shapes (report/snapshot tests).

The numbers are computed here from 2x2 tables (log odds ratios, inverse-variance common-effect pooling), so
every figure the report shows can be recomputed by a test.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

from warehouse import connect

SCRIPT_TITLE = "<script>alert(1)</script> IVIG & pain: a <b>trial</b>"
REVIEW_TITLE = "Immunoglobulin <script>alert(1)</script> review"
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def tables(k: int) -> list[dict]:
    """k deterministic 2x2 tables with years (one per study)."""
    out = []
    for i in range(k):
        n_t, n_c = 20 + 3 * i, 22 + 2 * i
        e_t, e_c = 6 + (i * 7) % 9, 4 + (i * 5) % 7
        out.append({"study": f"Author{2000 + i}", "year": 2000 + i, "treat_events": e_t, "treat_total": n_t,
                    "control_events": e_c, "control_total": n_c})
    return out


def pooled(rows: list[dict]) -> dict:
    """MetaResult-shaped dict for the log odds ratio, inverse-variance common effect (tau2 = 0)."""
    yi = [math.log((r["treat_events"] / (r["treat_total"] - r["treat_events"]))
                   / (r["control_events"] / (r["control_total"] - r["control_events"]))) for r in rows]
    vi = [1 / r["treat_events"] + 1 / (r["treat_total"] - r["treat_events"]) + 1 / r["control_events"]
          + 1 / (r["control_total"] - r["control_events"]) for r in rows]
    w = [1 / v for v in vi]
    est = sum(a * b for a, b in zip(w, yi)) / sum(w)
    se = math.sqrt(1 / sum(w))
    q = sum(wi * (y - est) ** 2 for wi, y in zip(w, yi))
    z = est / se
    p = math.erfc(abs(z) / math.sqrt(2))
    lo, hi = est - 1.959963984540054 * se, est + 1.959963984540054 * se
    studies = [{"study": r["study"], "yi": y, "vi": v, "weight": 100 * wi / sum(w),
                "ci_lower": y - 1.959963984540054 * math.sqrt(v), "ci_upper": y + 1.959963984540054 * math.sqrt(v)}
               for r, y, v, wi in zip(rows, yi, vi, w)]
    return {"k": len(rows), "measure": "OR", "method": "FE", "test": "z", "estimate": est, "se": se, "statistic": z,
            "p_value": p, "ci_lower": lo, "ci_upper": hi, "tau2": 0.0, "i2": max(0.0, 100 * (q - len(rows) + 1) / q) if q > 0 else 0.0,
            "h2": 1.0, "q": q, "q_df": len(rows) - 1, "q_p": None, "pi_lower": lo, "pi_upper": hi,
            "estimate_bt": math.exp(est), "ci_lower_bt": math.exp(lo), "ci_upper_bt": math.exp(hi),
            "pi_lower_bt": math.exp(lo), "pi_upper_bt": math.exp(hi),
            "participants": sum(r["treat_total"] + r["control_total"] for r in rows),
            "tau2_ci_lower": None, "tau2_ci_upper": None, "warnings": [], "studies": studies}


def result_json(rows: list[dict]) -> dict:
    meta = pooled(rows)
    nostudies = {k: v for k, v in meta.items() if k != "studies"}
    cum = []
    for j in range(1, len(rows) + 1):
        m = pooled(rows[:j]) if j > 1 else {**pooled(rows[:1])}
        cum.append({"added": rows[j - 1]["study"], "year": rows[j - 1]["year"],
                    **{k: v for k, v in m.items() if k != "studies"}})
    loo = [{"omitted": r["study"], **{k: v for k, v in pooled([x for x in rows if x is not r]).items() if k != "studies"}}
           for r in rows] if len(rows) > 2 else []
    ris = 900.0
    points = [{"label": c["added"], "information": c["participants"], "fraction": c["participants"] / ris,
               "z": c["statistic"], "upper": 2.0 / math.sqrt(min(1, c["participants"] / ris)),
               "lower": -2.0 / math.sqrt(min(1, c["participants"] / ris)), "futility": None} for c in cum]
    curve = [{"fraction": t / 20, "upper": 2.0 / math.sqrt(t / 20), "futility": max(0.0, 2.8 * (t / 20) - 0.9)}
             for t in range(1, 21)]
    tsa = {"ris": ris, "d2": 0.2, "alpha": 0.05, "beta": 0.2, "points": points, "curve": curve,
           "status": "inconclusive"}
    inputs = [{k: r[k] for k in ("study", "treat_events", "treat_total", "control_events", "control_total", "year")}
              for r in rows]
    return {"meta": meta, "leave_one_out": loo, "cumulative": cum, "subgroups": None, "tsa": tsa, "inputs": inputs,
            "_flat": nostudies}


CONFIG = {"id": "rev", "title": REVIEW_TITLE, "question": {"population": "adults"},
          "screening": {"reviewers": 1, "stages": ["title_abstract", "full_text"]},
          "outcomes": [{"id": "responders", "label": "Responders", "kind": "binary", "treatment_label": "IVIG",
                        "control_label": "placebo", "higher_is_better": True, "assumed_control_risk": None,
                        "certainty": {"study_design": "randomised", "risk_of_bias": "serious",
                                      "inconsistency": "not serious", "indirectness": "not serious",
                                      "imprecision": "not serious", "publication_bias": "undetected", "upgrade": 0,
                                      "level": "moderate",
                                      "footnotes": {"risk_of_bias": "allocation concealment unclear in 4 trials"}}},
                       {"id": "pain", "label": "Pain", "kind": "continuous", "treatment_label": "IVIG",
                        "control_label": "placebo", "higher_is_better": False}],
          "analyses": [{"id": "resp-or", "label": "Responders: odds ratio", "outcome": "responders", "measure": "OR",
                        "method": "FE", "role": "primary",
                        "tsa": {"alpha": 0.05, "beta": 0.2, "control_event_rate": 0.3, "anticipated_effect": 0.3,
                                "effect_direction": "increase", "heterogeneity_correction": "diversity",
                                "effect_source": "minimal important difference"}},
                       {"id": "pain-md", "label": "Pain: mean difference", "outcome": "pain", "measure": "MD",
                        "method": "REML", "role": "secondary"}]}


def seed_review(path: Path, k: int = 12, review_id: str = "rev") -> dict:
    """A warehouse holding one review with two versions (k-3 then k studies); returns what was written."""
    con = connect(path)
    rows = tables(k)
    cfg = {**CONFIG, "id": review_id}
    con.execute("INSERT INTO reviews VALUES (?, ?, ?, ?, ?, ?, ?)",
                [review_id, REVIEW_TITLE, "/nowhere", json.dumps(cfg), "h", T0, T0])
    con.execute("INSERT INTO search_definitions VALUES (?, 'pubmed', ?, 'qh', DATE '2000-01-01', ?)",
                [review_id, 'IVIG[tiab] AND "pain"[tiab] <b>x</b>', T0])
    for i, r in enumerate(rows):
        pmid = str(33766990 + i)
        title = SCRIPT_TITLE if i == 0 else f"Trial of immunoglobulin number {i} | with $dollar$ and *stars*"
        con.execute(
            "INSERT INTO records (record_id, source, source_id, version, title, authors, journal, year, doi, "
            "registry_ids, content_hash, first_seen_at, updated_at) VALUES (?, 'pubmed', ?, 1, ?, ?, ?, ?, ?, ?, 'h', ?, ?)",
            [f"pubmed:{pmid}", pmid, title, json.dumps([f"{r['study'][:-4]} A", "Other B"]), "Pain Med",
             r["year"], f"10.1000/x{i}", json.dumps([f"NCT0{2637700 + i}"] if i % 3 == 0 else []), T0, T0])
        con.execute("INSERT INTO review_records VALUES (?, ?, 1, ?, 1)", [review_id, f"pubmed:{pmid}", T0])
        con.execute("INSERT INTO studies VALUES (?, ?, ?, ?)", [review_id, r["study"], r["study"], T0])
        con.execute("INSERT INTO study_links VALUES (?, ?, ?, 'singleton', NULL, ?)",
                    [review_id, f"pubmed:{pmid}", r["study"], T0])
        for stage in ("title_abstract", "full_text"):
            con.execute("INSERT INTO screening_decisions (review_id, record_id, reviewer, decided_at, stage, decision, "
                        "origin) VALUES (?, ?, 'ann', ?, ?, 'include', 'import')", [review_id, f"pubmed:{pmid}", T0, stage])
    con.execute("INSERT INTO records (record_id, source, source_id, version, title, content_hash, first_seen_at, "
                "updated_at) VALUES ('pubmed:1', 'pubmed', '1', 1, 'Excluded review', 'h', ?, ?)", [T0, T0])
    con.execute("INSERT INTO review_records VALUES (?, 'pubmed:1', 1, ?, 1)", [review_id, T0])
    con.execute("INSERT INTO studies VALUES (?, 'Excluded1999', 'Excluded1999', ?)", [review_id, T0])
    con.execute("INSERT INTO study_links VALUES (?, 'pubmed:1', 'Excluded1999', 'singleton', NULL, ?)", [review_id, T0])
    for stage, decision, reason in (("title_abstract", "include", None), ("full_text", "exclude", "not randomised <i>")):
        con.execute("INSERT INTO screening_decisions (review_id, record_id, reviewer, decided_at, stage, decision, reason, "
                    "origin) VALUES (?, 'pubmed:1', 'ann', ?, ?, ?, ?, 'import')", [review_id, T0, stage, decision, reason])
    results = {}
    for version, n in ((1, k - 3), (2, k)):
        when = T0 + dt.timedelta(days=30 * version)
        (uid,) = con.execute("INSERT INTO update_runs (review_id, started_at, status, as_of) VALUES (?, ?, 'succeeded', ?) "
                             "RETURNING update_id", [review_id, when, when]).fetchone()
        con.execute("INSERT INTO search_runs (review_id, update_id, source, query, mode, window_start, window_end, "
                    "started_at, finished_at, status, n_found, n_new) VALUES (?, ?, 'pubmed', 'IVIG', 'replay', ?, ?, ?, ?, "
                    "'succeeded', ?, ?)", [review_id, uid, when - dt.timedelta(days=30), when, when, when, n, 3])
        res = result_json(rows[:n])
        flat = res.pop("_flat")
        (run_id,) = con.execute(
            "INSERT INTO analysis_runs (review_id, analysis_id, update_id, input_hash, engine_version, settings, "
            "started_at, status, result) VALUES (?, 'resp-or', ?, ?, '1.0.0', '{}', ?, 'computed', ?) "
            "RETURNING analysis_run_id", [review_id, uid, f"h{version}", when, json.dumps(res)]).fetchone()
        cols = ["k", "participants", "estimate", "se", "ci_lower", "ci_upper", "pi_lower", "pi_upper", "estimate_bt",
                "ci_lower_bt", "ci_upper_bt", "pi_lower_bt", "pi_upper_bt", "statistic", "p_value", "tau2", "i2", "h2",
                "q", "q_df", "q_p"]
        con.execute(f"INSERT INTO estimates (analysis_run_id, review_id, analysis_id, measure, method, test, "
                    f"{', '.join(cols)}, tsa_status, warnings) VALUES (?, ?, 'resp-or', 'OR', 'FE', 'z', "
                    f"{', '.join('?' * len(cols))}, 'inconclusive', '[]')",
                    [run_id, review_id, *(flat[c] for c in cols)])
        for s in res["meta"]["studies"]:
            con.execute("INSERT INTO estimate_studies VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [run_id, s["study"], s["yi"], s["vi"], s["weight"], s["ci_lower"], s["ci_upper"]])
        con.execute("INSERT INTO review_versions VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [review_id, version, when, when, uid,
                     json.dumps({"new_studies": [r["study"] for r in rows[k - 3:]] if version == 2 else
                                 [r["study"] for r in rows[:n]], "changed_data": [], "retracted": []}),
                     f"Version {version}: {n} studies <em>pooled</em>"])
        con.execute("INSERT INTO review_version_runs VALUES (?, ?, 'resp-or', ?)", [review_id, version, run_id])
        con.execute("INSERT INTO estimate_diffs VALUES (?, ?, ?, 'resp-or', '{}', '{}', ?, ?, '[]')",
                    [review_id, version - 1 if version > 1 else None, version,
                     json.dumps(["studies_added"] + (["ci_narrowed"] if version > 1 else [])),
                     json.dumps([r["study"] for r in rows[k - 3:]] if version == 2 else [r["study"] for r in rows[:n]])])
        results[version] = {"meta": res["meta"], "run_id": run_id, "n": n}
    con.close()
    return {"rows": rows, "results": results, "review_id": review_id}


def test_seeded_numbers_match_the_stats_engine():
    """The seed's hand-computed common-effect log odds ratio is what the statistics engine returns."""
    from livingmeta.stats import meta_analyze

    rows = tables(12)
    ours = pooled(rows)
    engine = meta_analyze(rows, measure="OR", method="FE").to_dict()
    for key in ("estimate", "se", "ci_lower", "ci_upper", "q"):
        assert abs(ours[key] - engine[key]) < 1e-9, key
    assert [s["study"] for s in engine["studies"]] == [s["study"] for s in ours["studies"]]
    for a, b in zip(engine["studies"], ours["studies"]):
        assert abs(a["weight"] - b["weight"]) < 1e-9
