"""Benchmark: live re-ranking, decision -> next record latency at 1k, 10k and 50k unscreened records.

For each size N it writes a synthetic review into a fresh DuckDB file (N PubMed-shaped records through
`warehouse.ingest`, the sources' own path: titles and abstracts drawn from 20 topics over a 4,000-word
vocabulary, topic 0 relevant, about 5% of the records), runs an update's screening step (`flag_candidates`),
records 30 earlier decisions (5 includes, 25 excludes: a living review the model can already train on) and
runs the screening step again, as the next nightly update would. A screening session then starts
(`next_to_screen`: "start", the one step that fits the queue's TF-IDF features from the stored term counts
and keeps them beside the warehouse) and a simulated reviewer screens D records in the order the live API
gives them: each step is one decision (`record_decision`) followed by `next_to_screen` (re-rank with the
model refitted on every decision, then the best pending record), exactly what `livingmeta screen next` and
the web app do. The latency of a step is the wall time from the decision to the next record; figures:
p50 / p95 / max, and the process CPU time per step (all threads: DuckDB's too). "cold" is one more step after
the in-process feature cache is dropped and the warehouse reopened (a new session after a restart: the
features are read from `<warehouse>.features/`).

Printed, never asserted. Run:  nice -n 10 .venv/bin/python bench/screening_live.py [--sizes 1000 10000 50000]
[--decisions 40] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from livingmeta.config import ReviewConfig  # noqa: E402
from livingmeta.records import Record  # noqa: E402
from warehouse import connect  # noqa: E402
from warehouse.ingest import Fetched, finish_search_run, start_search_run  # noqa: E402
from warehouse.reviews import upsert_review  # noqa: E402
from warehouse.screening import flag_candidates, next_to_screen, record_decision  # noqa: E402

REVIEW = "live-bench"
T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.timezone.utc)
SYLLABLES = ["ba", "ce", "di", "fo", "gu", "ha", "ke", "li", "mo", "nu", "pa", "re", "si", "to", "vu", "xa", "ze",
             "an", "el", "in", "or", "ul", "tra", "ste", "pro", "neu", "card", "ven", "lym", "hep"]


def config() -> ReviewConfig:
    return ReviewConfig.model_validate({
        "id": REVIEW, "title": "Synthetic review for the live re-ranking benchmark",
        "sources": {"pubmed": {"query": "synthetic"}},
        "screening": {"include_publication_types": ["Randomized Controlled Trial"], "min_decisions_to_train": 6},
    })


def synthetic_records(n: int, seed: int = 0) -> tuple[list[Record], dict[str, int]]:
    """n records and their hidden topic (0 = relevant)."""
    rng = random.Random(seed)
    vocab = sorted({"".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(6000)})[:4000]
    topics = []
    for _ in range(20):
        words = rng.sample(vocab, 300)
        weights = [1.0 / (k + 1) for k in range(len(words))]
        topics.append((words, weights))
    common = vocab[:200]
    records, topic_of = [], {}
    for i in range(n):
        t = 0 if rng.random() < 0.05 else rng.randint(1, 19)
        words, weights = topics[t]

        def text(k: int) -> str:
            own = rng.choices(words, weights, k=int(k * 0.7))
            return " ".join(own + rng.choices(common, k=k - len(own)))

        pmid = 10_000_000 + i
        rec = Record(source="pubmed", source_id=str(pmid), title=text(rng.randint(8, 14)).capitalize(),
                     abstract=text(rng.randint(120, 220)) + ".", year=2000 + rng.randint(0, 25),
                     publication_types=["Randomized Controlled Trial"] if rng.random() < (0.5 if t == 0 else 0.1)
                     else ["Journal Article"])
        records.append(rec)
        topic_of[f"pubmed:{pmid}"] = t
    return records, topic_of


def ingest(con, records: list[Record], now: dt.datetime) -> None:
    run = start_search_run(con, review_id=REVIEW, source="pubmed", query="synthetic", mode="replay",
                           window_start=None, window_end=None, now=now)
    finish_search_run(con, run_id=run, review_id=REVIEW, source="pubmed",
                      fetched=[Fetched(r, json.dumps(r.to_dict())) for r in records], watermark=now, now=now)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def run_size(n: int, decisions: int, workdir: Path) -> dict:
    import warehouse.screening_features as features_cache

    features_cache._MEMORY.clear()
    wh = workdir / f"live-{n}.duckdb"
    con = connect(wh)
    cfg = config()
    upsert_review(con, cfg, str(workdir), T0)
    priors = 30
    records, topic = synthetic_records(n + priors)
    t = time.perf_counter()
    ingest(con, records, T0)
    flag_candidates(con, REVIEW, cfg, T0)
    setup_s = time.perf_counter() - t
    # earlier decisions: 5 includes and 25 excludes
    inc = [rid for rid, k in topic.items() if k == 0][:5]
    exc = [rid for rid, k in topic.items() if k != 0][:25]
    now = T0 + dt.timedelta(hours=1)
    for rid in inc + exc:
        record_decision(con, review_id=REVIEW, record_id=rid, reviewer="ana", stage="title_abstract",
                        decision="include" if rid in inc else "exclude", reason=None, origin="bench", now=now)
    t, c = time.perf_counter(), time.process_time()
    update = flag_candidates(con, REVIEW, cfg, T0 + dt.timedelta(days=1))  # the next nightly: features fitted once
    update_s, update_cpu = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    nxt = next_to_screen(con, REVIEW, "ana", cfg=cfg)  # the session starts: features fitted once, kept
    start_s, start_cpu = time.perf_counter() - t, time.process_time() - c
    waiting = nxt["waiting"]
    lat, rankers, found = [], set(), 0
    cpu0 = time.process_time()
    clock = now
    for _ in range(decisions):
        clock += dt.timedelta(seconds=20)
        rid = nxt["record_id"]
        found += topic[rid] == 0
        t = time.perf_counter()
        record_decision(con, review_id=REVIEW, record_id=rid, reviewer="ana", stage="title_abstract",
                        decision="include" if topic[rid] == 0 else "exclude", reason=None, origin="bench", now=clock)
        nxt = next_to_screen(con, REVIEW, "ana", cfg=cfg)
        lat.append(time.perf_counter() - t)
        rankers.add(nxt["ranker"].split(" trained on")[0])
    cpu = time.process_time() - cpu0
    # the first step after a restart: features come from <warehouse>.features/, not from memory
    features_cache._MEMORY.clear()
    con.close()
    con = connect(wh)
    clock += dt.timedelta(seconds=20)
    rid = nxt["record_id"]
    t = time.perf_counter()
    record_decision(con, review_id=REVIEW, record_id=rid, reviewer="ana", stage="title_abstract",
                    decision="include" if topic[rid] == 0 else "exclude", reason=None, origin="bench", now=clock)
    nxt = next_to_screen(con, REVIEW, "ana", cfg=cfg)
    cold = time.perf_counter() - t
    con.close()
    return {"n": n, "waiting": waiting, "setup_s": setup_s, "update_s": update_s, "update_cpu": update_cpu,
            "start_s": start_s, "start_cpu": start_cpu,
            "update_ranker": update["ranker"], "p50": pct(lat, 50), "p95": pct(lat, 95), "max": max(lat),
            "cpu_per_step": cpu / decisions, "cold": cold, "rankers": sorted(rankers), "found": found,
            "decisions": decisions}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    ap.add_argument("--decisions", type=int, default=40)
    ap.add_argument("--keep", type=Path, default=None, help="keep the warehouses in this folder")
    args = ap.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="screening-live-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"live re-ranking: decision -> next record ({platform.python_version()}, {platform.machine()}, "
          f"{args.decisions} decisions per size, model refitted on every decision)")
    print(f"{'unscreened':>10} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'cpu ms/step':>11} {'cold ms':>8} "
          f"{'start s':>8} {'start cpu':>9} {'update s':>9} {'includes':>9}  ranker")
    try:
        for n in args.sizes:
            r = run_size(n, args.decisions, workdir)
            print(f"{r['waiting']:>10} {r['p50'] * 1e3:>8.0f} {r['p95'] * 1e3:>8.0f} {r['max'] * 1e3:>8.0f} "
                  f"{r['cpu_per_step'] * 1e3:>11.0f} {r['cold'] * 1e3:>8.0f} {r['start_s']:>8.2f} "
                  f"{r['start_cpu']:>9.2f} {r['update_s']:>9.1f} {r['found']:>4}/{r['decisions']:<4}  "
                  f"{', '.join(r['rankers'])}", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print("ms: wall milliseconds from a decision to the next record; 'cpu ms/step': process CPU per step; 'cold': "
          "the first step after a restart (features read from disk); 'start': the first next_to_screen after the "
          "update (features fitted from the stored counts and kept), wall and CPU s; 'update s': the nightly "
          "screening step (wall); 'includes': relevant records among those screened.")
    print("reproduce: nice -n 10 .venv/bin/python bench/screening_live.py --sizes "
          + " ".join(str(n) for n in args.sizes) + f" --decisions {args.decisions}")


if __name__ == "__main__":
    main()
