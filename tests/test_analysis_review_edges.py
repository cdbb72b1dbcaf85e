"""Edge cases through the living pipeline: extraction CSV -> import_extraction -> analyze -> stored run.

Each analysis must store a run with defined numbers (checked against metafor: tests/fixtures/stats/
ivig_demo_metafor.json, section "edge") or with a clear warning — never crash, never a NaN in the JSON.
Tolerance: TOL = 1e-6 relative, ABS = 1e-9 (same engine conventions as metafor; see test_stats_review_demo.py).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from livingmeta.config import load_review
from livingmeta.records import Record
from tasks.analysis import analyze_review
from warehouse import opened
from warehouse.extraction import import_extraction
from warehouse.ingest import Fetched, finish_search_run, start_search_run
from warehouse.reviews import start_update, upsert_review

ROOT = Path(__file__).resolve().parents[1]
EDGE = json.loads((ROOT / "tests/fixtures/stats/ivig_demo_metafor.json").read_text())["edge"]
TOL, ABS = 1e-6, 1e-9
T0 = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)

TOML = '''
id = "edge-review"
title = "Edge cases"
[sources.pubmed]
query = "q"
[[outcomes]]
id = "zero"
label = "Responders, a lone trial with a zero cell"
kind = "binary"
[[outcomes]]
id = "dzero"
label = "Responders, a lone trial with no events at all"
kind = "binary"
[[outcomes]]
id = "share"
label = "Share with relief"
kind = "proportion"
[[outcomes]]
id = "pain"
label = "Pain score"
kind = "continuous"
[[outcomes]]
id = "hr"
label = "Hazard ratio"
kind = "generic"
[[analyses]]
id = "zero-or-mh"
outcome = "zero"
measure = "OR"
method = "MH"
[analyses.tsa]
control_event_rate = 0.25
anticipated_effect = 0.5
effect_direction = "increase"
[[analyses]]
id = "zero-rr-reml"
outcome = "zero"
measure = "RR"
method = "REML"
[[analyses]]
id = "dzero-rr-reml"
outcome = "dzero"
measure = "RR"
method = "REML"
[[analyses]]
id = "dzero-or-mh"
outcome = "dzero"
measure = "OR"
method = "MH"
[[analyses]]
id = "share-pft"
outcome = "share"
measure = "PFT"
method = "REML"
[[analyses]]
id = "pain-md"
outcome = "pain"
measure = "MD"
method = "REML"
[analyses.tsa]
anticipated_effect = -1.0
sd = 1.5
[[analyses]]
id = "pain-smd"
outcome = "pain"
measure = "SMD"
method = "REML"
[[analyses]]
id = "hr-gen"
outcome = "hr"
measure = "GEN"
method = "REML"
'''

HEADER = ("study,outcome,arm,group_label,events,total,mean,sd,n,estimate,se,ci_lower,ci_upper,scale,subgroup,"
          "extractor,extracted_on,source_ref,notes\n")
ROWS = [
    "A2020,zero,treatment,IVIG,7,11,,,,,,,,,,AB,2024-02-01,T1,",
    "A2020,zero,control,placebo,0,12,,,,,,,,,,AB,2024-02-01,T1,",
    "B2021,dzero,treatment,IVIG,0,11,,,,,,,,,,AB,2024-02-01,T1,",
    "B2021,dzero,control,placebo,0,12,,,,,,,,,,AB,2024-02-01,T1,",
    "A2020,share,single,IVIG,0,10,,,,,,,,,,AB,2024-02-01,T1,none of ten",
    "B2021,share,treatment,IVIG,8,8,,,,,,,,,,AB,2024-02-01,T1,all eight",
    "A2020,pain,treatment,IVIG,,,3.1,1.2,20,,,,,,,AB,2024-02-01,T2,",
    "A2020,pain,control,placebo,,,4.0,1.4,21,,,,,,,AB,2024-02-01,T2,",
    "B2021,pain,treatment,IVIG,,,2.5,1.0,30,,,,,,,AB,2024-02-01,T2,",
    "B2021,pain,control,placebo,,,3.6,1.1,29,,,,,,,AB,2024-02-01,T2,",
    "A2020,hr,contrast,HR,,,,,,0.8,0.15,,,ratio,,AB,2024-02-01,T3,SE of log HR",
    "B2021,hr,contrast,HR,,,,,,0.7,,0.5,0.98,ratio,,AB,2024-02-01,T3,95% CI",
]
STUDIES = {"A2020": ("1001", "Alpha A", 2020), "B2021": ("1002", "Beta B", 2021)}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("edges")
    review_dir = tmp_path / "review"
    review_dir.mkdir()
    (review_dir / "review.toml").write_text(TOML, encoding="utf-8")
    cfg = load_review(review_dir)
    wh = tmp_path / "warehouse.duckdb"
    with opened(wh) as con:
        upsert_review(con, cfg, str(review_dir), T0)
        update_id = start_update(con, cfg.id, T0, T0, None)
        run = start_search_run(con, review_id=cfg.id, source="pubmed", query="q", mode="replay", window_start=None,
                               window_end=T0, now=T0, update_id=update_id)
        recs = [Record(source="pubmed", source_id=pmid, title=f"Trial {sid}", authors=[au], year=year,
                       publication_types=["Randomized Controlled Trial"], is_rct=True)
                for sid, (pmid, au, year) in STUDIES.items()]
        finish_search_run(con, run_id=run, review_id=cfg.id, source="pubmed",
                          fetched=[Fetched(r, f"<PubmedArticle>{r.source_id}</PubmedArticle>") for r in recs],
                          watermark=T0, now=T0)
        for sid, (pmid, _, _) in STUDIES.items():
            con.execute("INSERT INTO studies VALUES (?, ?, ?, ?)", [cfg.id, sid, sid, T0])
            con.execute("INSERT INTO study_links VALUES (?, ?, ?, 'pmid', 1.0, ?)", [cfg.id, f"pubmed:{pmid}", sid, T0])
            con.execute("INSERT INTO screening_decisions (review_id, record_id, reviewer, decided_at, stage, decision, "
                        "origin) VALUES (?, ?, 'AB', ?, 'full_text', 'include', 'terminal')",
                        [cfg.id, f"pubmed:{pmid}", T0])
        csv_path = tmp_path / "extraction.csv"
        csv_path.write_text(HEADER + "\n".join(ROWS) + "\n", encoding="utf-8")
        import_extraction(con, cfg.id, csv_path, {o.id: o.kind for o in cfg.outcomes}, now=T0)
    out = analyze_review(str(review_dir), cfg.id, str(wh), update_id, now=T0)
    return wh, cfg.id, out, review_dir


def _stored(wh, review_id):
    with opened(wh, read_only=True) as con:
        runs = con.execute("SELECT analysis_id, status, result, error FROM analysis_runs WHERE review_id = ?",
                           [review_id]).fetchall()
        cur = con.execute("SELECT * FROM estimates WHERE review_id = ?", [review_id])
        cols = [d[0] for d in cur.description]
        est = {row["analysis_id"]: row for row in (dict(zip(cols, r)) for r in cur.fetchall())}
    return {a: {"status": s, "result": res, "error": e} for a, s, res, e in runs}, est


def _close(got, want, label):
    if want is None:
        assert got is None, f"{label}: metafor gives no number, we give {got}"
    else:
        assert got == pytest.approx(want, rel=TOL, abs=ABS), label


CHECKS = {"zero-rr-reml": "zero_cell_rr_reml", "dzero-rr-reml": "double_zero_rr_reml",
          "share-pft": "pft_zero_and_all", "pain-md": "md_reml", "pain-smd": "smd_reml", "hr-gen": "generic_ratio_reml"}


def test_every_edge_analysis_stores_a_run_without_nan(seeded):
    wh, rid, out, _ = seeded
    assert out["failed"] == [] and out["no_data"] == []
    assert sorted(out["computed"]) == sorted(["zero-or-mh", "zero-rr-reml", "dzero-rr-reml", "dzero-or-mh", "share-pft",
                                              "pain-md", "pain-smd", "hr-gen"])
    runs, est = _stored(wh, rid)
    for aid, run in runs.items():
        assert run["status"] == "computed", (aid, run["error"])
        # the stored document is strict JSON (json.loads would accept NaN; re-dumping strictly would not)
        json.dumps(json.loads(run["result"]), allow_nan=False)
    assert set(est) == set(runs)


@pytest.mark.parametrize("analysis_id", sorted(CHECKS))
def test_edge_numbers_match_metafor(seeded, analysis_id):
    wh, rid, _, review_dir = seeded
    want = EDGE[CHECKS[analysis_id]]
    _, est = _stored(wh, rid)
    row = est[analysis_id]
    assert row["k"] == want["k"]
    for key in ("estimate", "se", "p_value", "ci_lower", "ci_upper", "tau2", "i2", "pi_lower", "pi_upper",
                "estimate_bt", "ci_lower_bt", "ci_upper_bt"):
        if key in want:
            _close(row[key], want[key], f"{analysis_id} {key}")


def test_lone_zero_cell_trial_mh_is_undefined_with_a_warning_and_tsa_inconclusive(seeded):
    wh, rid, _, review_dir = seeded
    runs, est = _stored(wh, rid)
    assert EDGE["zero_cell_or_mh"]["estimate"] is None  # metafor's rma.mh: NA
    row = est["zero-or-mh"]
    assert row["k"] == 1 and row["estimate"] is None and row["p_value"] is None
    warnings = json.loads(row["warnings"])
    assert any("control events" in w for w in warnings), warnings
    assert row["tsa_status"] == "inconclusive"
    dz = est["dzero-or-mh"]
    assert dz["estimate"] is None and any("no study has events in one arm" in w for w in json.loads(dz["warnings"]))


def test_proportions_zero_and_all_stay_inside_zero_one(seeded):
    wh, rid, _, review_dir = seeded
    _, est = _stored(wh, rid)
    row = est["share-pft"]
    assert row["ci_lower_bt"] == 0.0 and row["ci_upper_bt"] == 1.0
    assert 0.0 <= row["pi_lower_bt"] <= row["estimate_bt"] <= row["pi_upper_bt"] <= 1.0


def test_mixed_se_and_ci_contrast_rows_pool_on_the_log_scale(seeded):
    # one trial gives an SE of log HR, the other a 95% CI: both pool (they used to fail as "se is empty")
    wh, rid, _, review_dir = seeded
    runs, est = _stored(wh, rid)
    studies = json.loads(runs["hr-gen"]["result"])["meta"]["studies"]
    assert [s["study"] for s in studies] == ["A2020", "B2021"]
    assert studies[1]["vi"] == pytest.approx(((-0.020202707317519466 + 0.6931471805599453) / (2 * 1.959964)) ** 2,
                                             rel=1e-12)
    assert est["hr-gen"]["estimate_bt"] == pytest.approx(EDGE["generic_ratio_reml"]["estimate_bt"], rel=TOL)


def test_continuous_tsa_uses_the_sd_information_size(seeded):
    wh, rid, _, review_dir = seeded
    runs, _ = _stored(wh, rid)
    tsa = json.loads(runs["pain-md"]["result"])["tsa"]
    # 4 (z_.975 + z_.8)^2 1.5^2 / 1^2 = 70.64 participants; D2 = 0 (tau2 = 0)
    assert tsa["ris_unadjusted"] == pytest.approx(4 * (1.959963984540054 + 0.8416212335729143) ** 2 * 2.25, rel=1e-9)
    assert tsa["d2"] == 0.0 and tsa["direction"] == -1
    # 100 participants (> RIS) and z = -4.57: beyond the boundary in the anticipated direction
    assert tsa["status"] == "boundary_crossed"


def test_rerun_is_idempotent(seeded):
    wh, rid, _, review_dir = seeded
    again = analyze_review(str(review_dir), rid, str(wh), None, now=T0 + dt.timedelta(days=1))
    assert again["computed"] == [] and len(again["unchanged"]) == 8
