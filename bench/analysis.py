"""Benchmark: the analysis step of an update, first run (computed) and a no-change run (skipped by hash).

The issue's requirement: a no-change update must finish its analysis step in well under a second per
analysis. This builds a synthetic review with k included studies (binary responders + single-arm
proportions), runs the real `analyze_review` twice on a real DuckDB warehouse, and prints seconds per
analysis for each run. Figures are printed, never asserted.

Run:  . .venv/bin/activate && python bench/analysis.py [--k 5 50 500]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livingmeta.records import Record  # noqa: E402
from tasks.analysis import analyze_review  # noqa: E402
from warehouse import opened  # noqa: E402
from warehouse.extraction import import_extraction  # noqa: E402
from warehouse.ingest import Fetched, finish_search_run, start_search_run  # noqa: E402
from warehouse.reviews import start_update, upsert_review  # noqa: E402

REVIEW = '''
id = "bench"
title = "Benchmark review"
[sources.pubmed]
query = "x"
[[outcomes]]
id = "responders"
label = "Responders"
kind = "binary"
[[outcomes]]
id = "share"
label = "Share"
kind = "proportion"
[[analyses]]
id = "or-mh"
outcome = "responders"
measure = "OR"
method = "MH"
[analyses.tsa]
control_event_rate = 0.3
anticipated_effect = 0.3
effect_direction = "increase"
[[analyses]]
id = "rr-reml"
outcome = "responders"
measure = "RR"
method = "REML"
[[analyses]]
id = "share-pft"
outcome = "share"
measure = "PFT"
method = "REML"
'''
HEADER = ("study,outcome,arm,group_label,events,total,mean,sd,n,estimate,se,ci_lower,ci_upper,scale,subgroup,"
          "extractor,extracted_on,source_ref,notes\n")
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def build(folder: Path, k: int, seed: int = 1) -> tuple[Path, Path]:
    """A review folder and a warehouse with k included studies and their extraction rows."""
    from livingmeta.config import load_review

    review_dir = folder / "review"
    review_dir.mkdir()
    (review_dir / "review.toml").write_text(REVIEW)
    cfg = load_review(review_dir)
    wh = folder / "wh.duckdb"
    rng = np.random.default_rng(seed)
    with opened(wh) as con:
        upsert_review(con, cfg, str(review_dir), T0)
        run = start_search_run(con, review_id="bench", source="pubmed", query="x", mode="replay",
                               window_start=None, window_end=T0, now=T0)
        recs = [Fetched(Record(source="pubmed", source_id=str(10_000 + i), title=f"Trial {i}", year=2000 + i % 20), "<x/>")
                for i in range(k)]
        finish_search_run(con, run_id=run, review_id="bench", source="pubmed", fetched=recs, watermark=T0, now=T0)
        for i in range(k):
            s, rid = f"S{i}", f"pubmed:{10_000 + i}"
            con.execute("INSERT INTO studies VALUES ('bench', ?, ?, ?)", [s, s, T0])
            con.execute("INSERT INTO study_links VALUES ('bench', ?, ?, 'pmid', 1.0, ?)", [rid, s, T0])
            for stage in ("title_abstract", "full_text"):
                con.execute("INSERT INTO screening_decisions (review_id, record_id, reviewer, decided_at, stage, decision, "
                            "origin) VALUES ('bench', ?, 'AB', ?, ?, 'include', 'terminal')", [rid, T0, stage])
    lines = [HEADER]
    for i in range(k):
        nt, nc = (int(x) for x in rng.integers(20, 200, 2))
        et, ec = int(rng.binomial(nt, 0.45)), int(rng.binomial(nc, 0.3))
        lines.append(f"S{i},responders,treatment,IG,{et},{nt},,,,,,,,,,AB,2024-01-02,Table 2,\n")
        lines.append(f"S{i},responders,control,placebo,{ec},{nc},,,,,,,,,,AB,2024-01-02,Table 2,\n")
        lines.append(f"S{i},share,single,IG,{et},{nt},,,,,,,,,,AB,2024-01-02,Table 2,\n")
    csv = folder / "extraction.csv"
    csv.write_text("".join(lines))
    with opened(wh) as con:
        import_extraction(con, "bench", csv, {"responders": "binary", "share": "proportion"}, now=T0)
    return review_dir, wh


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, nargs="+", default=[5, 50, 500])
    args = ap.parse_args()
    print(f"analysis step benchmark — python {platform.python_version()}, {platform.machine()}")
    print(f"{'k':>6} {'analysis':>10} {'first run (s)':>14} {'no-change run (s)':>18} {'status':>22}")
    for k in args.k:
        with tempfile.TemporaryDirectory() as tmp:
            review_dir, wh = build(Path(tmp), k)
            with opened(wh) as con:
                u1 = start_update(con, "bench", T0, T0, None)
            t = time.perf_counter()
            first = analyze_review(str(review_dir), "bench", str(wh), u1, now=T0)
            total1 = time.perf_counter() - t
            with opened(wh) as con:
                u2 = start_update(con, "bench", T0, T0, None)
            t = time.perf_counter()
            second = analyze_review(str(review_dir), "bench", str(wh), u2, now=T0)
            total2 = time.perf_counter() - t
            for aid in first["seconds"]:
                status = f"{'computed' if aid in first['computed'] else 'not computed'} -> " \
                         f"{'unchanged' if aid in second['unchanged'] else 'RECOMPUTED'}"
                print(f"{k:>6} {aid:>10} {first['seconds'][aid]:>14.3f} {second['seconds'][aid]:>18.3f} {status:>22}")
            print(f"{k:>6} {'(step)':>10} {total1:>14.3f} {total2:>18.3f}")
    print("reproduce: . .venv/bin/activate && python bench/analysis.py --k " + " ".join(map(str, args.k)))


if __name__ == "__main__":
    main()
