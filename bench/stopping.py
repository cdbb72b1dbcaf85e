"""Benchmark the stopping rule (livingmeta.screening.stopping) beside "50 irrelevant in a row".

For each shared labelled set and seed, simulate ranked screening (the protocol of
shared/datasets/screening/README.md, bench/screening.py), then apply on the same ranked order:

- the Callaghan & Müller-Hansen (2020) random-sample hypergeometric test at target 95% / confidence 95%:
  rank until SWITCH excludes in a row, then screen random records from the rest until the test stops,
  repeated for several random-sample seeds per simulation run;
- ASReview's heuristic: stop after 50 excludes in a row.

Prints, per set and per group (dev / eval on separate lines), the share of runs whose recall at the stop
meets the target and the mean work saved at the stop (1 - screened / records; priors count as screened).
The ranked orders are cached (--cache) so re-running the analysis does not re-simulate.

    nice -n 10 python bench/stopping.py --sets all --seeds 0 1 2 --sample-seeds 0 1 2 3 4 5 6 7 8 9
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from livingmeta.screening.ranking import DEFAULT_MODEL, RANKERS, make_ranker  # noqa: E402
from livingmeta.screening.simulation import draw_priors, parse_labelled_csv  # noqa: E402
from livingmeta.screening.stopping import (  # noqa: E402
    DEFAULT_CONFIDENCE,
    DEFAULT_SWITCH_AFTER,
    DEFAULT_TARGET,
    HEURISTIC_RUN,
    irrelevant_in_a_row,
    simulate_stop,
)

SCREENING = ROOT.parent / "shared" / "datasets" / "screening"
GROUPS = ("dev", "eval")
DEFAULT_CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / "livingmeta-bench-orders"


def _cache_file(cache: Path, key: str, seed: int, model: str) -> Path:
    return cache / model / f"{key.replace('/', '__')}__seed{seed}.json"


def ranked_prefix(texts, labels, model: str, seed: int, max_streak: int) -> tuple[list[int], tuple[int, int]]:
    """The simulation of livingmeta.screening.simulation.simulate, stopped early.

    Same priors, ranker, retraining and tie-breaking as ``simulate`` (so the labels are a prefix of its
    ``order``), but it stops after ``max_streak`` excludes in a row as well as after the last include: no
    stopping rule measured here ranks further, and the random phase needs only what is left, not its order.
    """
    y = np.asarray(labels, dtype=np.int64)
    ranker = make_ranker({"name": model, "seed": seed})
    prior_inc, prior_exc = draw_priors(y, seed)
    known = {prior_inc: 1, prior_exc: 0}
    unlabelled = np.ones(len(y), dtype=bool)
    unlabelled[[prior_inc, prior_exc]] = False
    prefix: list[int] = []
    found, streak, texts = 1, 0, list(texts)
    while found < int(y.sum()) and streak < max_streak:
        scores = np.where(unlabelled, ranker.fit_rank(texts, known), -np.inf)
        top = int(np.argmax(scores))
        known[top] = int(y[top])
        unlabelled[top] = False
        prefix.append(int(y[top]))
        found += int(y[top])
        streak = 0 if y[top] else streak + 1
    return prefix, (prior_inc, prior_exc)


def simulate_job(job: tuple[str, str, int, str, str, int]) -> tuple[str, int, float]:
    """Simulate one (set, seed) and cache its ranked prefix; returns (key, seed, CPU seconds)."""
    key, path, seed, model, cache, max_streak = job
    out = _cache_file(Path(cache), key, seed, model)
    if out.exists():
        return key, seed, 0.0
    data = parse_labelled_csv(Path(path).read_text(encoding="utf-8"), path)
    started = time.process_time()
    prefix, priors = ranked_prefix(data.texts, data.labels, model, seed, max_streak)
    cpu = time.process_time() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"prefix": prefix, "max_streak": max_streak, "priors": list(priors),
                               "n_records": len(data.texts), "n_included": data.n_included, "cpu_seconds": cpu}))
    os.replace(tmp, out)
    return key, seed, cpu


def full_order(run: dict) -> np.ndarray:
    """A ranked order for the stopping rules: the prefix, then what was left (includes first; the random
    phase permutes it, and every rule measured here stops ranking inside the prefix)."""
    prefix = run.get("prefix", run.get("order"))
    rest = run["n_records"] - 2 - len(prefix)
    rest_inc = run["n_included"] - 1 - int(sum(prefix))
    return np.concatenate([np.asarray(prefix, dtype=np.int64), np.ones(rest_inc, dtype=np.int64),
                           np.zeros(rest - rest_inc, dtype=np.int64)])


def ranked_orders(groups, seeds, model, cache: Path, workers: int, max_streak: int) -> dict[tuple[str, int], dict]:
    """Every (set, seed)'s simulated ranked prefix, simulating the ones not cached yet."""
    jobs = []
    for group in groups:
        for path in sorted((SCREENING / group).glob("*.csv")):
            for seed in seeds:
                jobs.append((f"{group}/{path.stem}", str(path), seed, model, str(cache), max_streak))
    jobs.sort(key=lambda j: -os.path.getsize(j[1]))
    todo = [j for j in jobs if not _cache_file(cache, j[0], j[2], model).exists()]
    if todo:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for key, seed, cpu in pool.map(simulate_job, todo):
                print(f"  simulated {key} seed {seed}: {cpu:.1f} CPU s", flush=True)
    out = {}
    for j in jobs:
        run = json.loads(_cache_file(cache, j[0], j[2], model).read_text())
        if run.get("max_streak", 10**9) < max_streak:
            raise SystemExit(f"{j[0]} seed {j[2]} was cached with a shorter prefix; use another --cache")
        out[(j[0], j[2])] = run
    return out


def heuristic_stop(order: np.ndarray, n_records: int, included: int, run: int = HEURISTIC_RUN) -> dict:
    stop = irrelevant_in_a_row(order, run)
    screened = 2 + stop
    return {"screened": screened, "recall": (1 + int(order[:stop].sum())) / included,
            "work_saved": 1 - screened / n_records}


def analyse(orders: dict, sample_seeds, switch_after: int, target: float, confidence: float) -> dict:
    """Per set: lists of (recall met?, work saved) for the rule and for the heuristic."""
    per_set: dict[str, dict[str, list]] = {}
    for (key, _seed), run in orders.items():
        order = full_order(run)
        acc = per_set.setdefault(key, {"rule_met": [], "rule_ws": [], "rule_recall": [], "heur_met": [],
                                       "heur_ws": [], "heur_recall": []})
        for s in sample_seeds:
            res = simulate_stop(order, known_records=2, known_includes=1, n_records=run["n_records"],
                                target=target, confidence=confidence, switch_after=switch_after, seed=s)
            acc["rule_met"].append(res["recall"] >= target)
            acc["rule_ws"].append(res["work_saved"])
            acc["rule_recall"].append(res["recall"])
        h = heuristic_stop(order, run["n_records"], run["n_included"])
        acc["heur_met"].append(h["recall"] >= target)
        acc["heur_ws"].append(h["work_saved"])
        acc["heur_recall"].append(h["recall"])
    return per_set


def _pct(x: float) -> str:
    return f"{100 * x:5.1f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", choices=("dev", "eval", "all"), default="dev")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sample-seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--switch-after", type=int, nargs="+", default=[DEFAULT_SWITCH_AFTER],
                        help="ranked excludes in a row before the random sample starts (several: compare)")
    parser.add_argument("--target", type=float, default=DEFAULT_TARGET)
    parser.add_argument("--confidence", type=float, default=DEFAULT_CONFIDENCE)
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(RANKERS))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if not SCREENING.exists():
        print(f"no screening data sets at {SCREENING}; nothing to measure")
        return 1
    groups = GROUPS if args.sets == "all" else (args.sets,)
    wall = time.perf_counter()
    max_streak = max([*args.switch_after, HEURISTIC_RUN])
    orders = ranked_orders(groups, args.seeds, args.model, args.cache, args.workers, max_streak)
    sim_cpu = sum(r.get("cpu_seconds", 0.0) for r in orders.values())
    print(f"model {args.model}; simulation seeds {' '.join(map(str, args.seeds))}; random-sample seeds "
          f"{' '.join(map(str, args.sample_seeds))}; target {args.target}, confidence {args.confidence}")
    print("met = share of runs whose recall at the stop >= target; saved = mean work saved at the stop "
          "(1 - screened/records, priors screened)\n")
    for switch in args.switch_after:
        per_set = analyse(orders, args.sample_seeds, switch, args.target, args.confidence)
        print(f"rule: rank until {switch} excludes in a row, then random sample until p < {1 - args.confidence:.2f}; "
              f"heuristic: {HEURISTIC_RUN} excludes in a row")
        print(f"{'set':38s} {'rule met':>9s} {'min rec':>8s} {'saved':>7s}   {'heur met':>9s} {'min rec':>8s} {'saved':>7s}")
        for group in groups:
            keys = sorted(k for k in per_set if k.startswith(group + "/"))
            pooled = {name: [] for name in ("rule_met", "rule_ws", "heur_met", "heur_ws")}
            for key in keys:
                a = per_set[key]
                for name in pooled:
                    pooled[name].extend(a[name])
                print(f"{key:38s} {_pct(np.mean(a['rule_met'])):>9s} {_pct(min(a['rule_recall'])):>8s} "
                      f"{_pct(np.mean(a['rule_ws'])):>7s}   {_pct(np.mean(a['heur_met'])):>9s} "
                      f"{_pct(min(a['heur_recall'])):>8s} {_pct(np.mean(a['heur_ws'])):>7s}")
            print(f"ALL {group:5s} ({len(keys)} sets, rule {len(pooled['rule_met'])} runs, heuristic "
                  f"{len(pooled['heur_met'])} runs): rule met {_pct(np.mean(pooled['rule_met']))}, saved "
                  f"{_pct(np.mean(pooled['rule_ws']))}; heuristic met {_pct(np.mean(pooled['heur_met']))}, saved "
                  f"{_pct(np.mean(pooled['heur_ws']))}\n")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"simulation CPU {sim_cpu:.0f} s (cached runs count their first computation); this process + workers "
          f"CPU {usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime:.0f} s; wall "
          f"{time.perf_counter() - wall:.0f} s on {os.cpu_count()} shared cores")
    print("reproduce: nice -n 10 .venv/bin/python bench/stopping.py "
          f"--sets {args.sets} --seeds {' '.join(map(str, args.seeds))} --sample-seeds "
          f"{' '.join(map(str, args.sample_seeds))} --switch-after {' '.join(map(str, args.switch_after))} "
          f"--model {args.model}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
