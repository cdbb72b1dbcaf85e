"""Benchmark the screening ranker with the simulation protocol of shared/datasets/screening/README.md.

Runs every data set of the chosen group(s) with each seed (two worker processes), prints a
per-set table beside ASReview LAB's ELAS u4 figures from that README, the means (dev and
eval on separate lines, as eval must never steer development), and the command to
reproduce. Prints figures only; nothing here passes or fails on time.

    python bench/screening.py --sets dev --seeds 0 1 2 --model tfidf-svm
"""

from __future__ import annotations

import os

# One BLAS thread per worker: two workers already use both cores.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from livingmeta.screening.ranking import DEFAULT_MODEL, RANKERS  # noqa: E402
from livingmeta.screening.simulation import parse_labelled_csv, simulate  # noqa: E402

SCREENING = ROOT.parent / "shared" / "datasets" / "screening"
GROUPS = ("dev", "eval")


def read_reference(readme: Path) -> dict[str, dict[str, float]]:
    """ASReview's per-set figures from the README table: {"dev/name": {"wss95": .., "seconds": ..}}."""
    figures: dict[str, dict[str, float]] = {}
    if not readme.exists():
        return figures
    row = re.compile(r"^\|\s*((?:dev|eval)/\S+)\s*\|\s*(\d+)\s*\|\s*([\d.]+)%\s*\|\s*([\d.]+)%\s*\|\s*([\d.]+)%\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|")
    for line in readme.read_text(encoding="utf-8").splitlines():
        m = row.match(line.strip())
        if m:
            figures[m.group(1)] = {
                "wss95": float(m.group(3)) / 100,
                "rrf10": float(m.group(4)) / 100,
                "atd": float(m.group(5)) / 100,
                "loss": float(m.group(6)),
                "seconds": float(m.group(7)),
            }
    return figures


def run_one(job: tuple[str, str, int, str]) -> tuple[str, int, dict[str, float], float]:
    """One simulation run; the timer covers vectorising and every retraining, not reading the CSV."""
    key, path, seed, model = job
    data = parse_labelled_csv(Path(path).read_text(encoding="utf-8"), path)
    started = time.perf_counter()
    result = simulate(data.texts, data.labels, {"name": model}, seed=seed)
    return key, seed, result.metrics, time.perf_counter() - started


def _pct(x: float | None) -> str:
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", choices=("dev", "eval", "all"), default="dev")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(RANKERS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", nargs="+", default=None, help="set names to run (e.g. cohen_NSAIDS); default all")
    args = parser.parse_args(argv)

    if not SCREENING.exists():
        print(f"no screening data sets at {SCREENING}; nothing to measure")
        return 1
    groups = GROUPS if args.sets == "all" else (args.sets,)
    reference = read_reference(SCREENING / "README.md")
    jobs = []
    for group in groups:
        for path in sorted((SCREENING / group).glob("*.csv")):
            if args.only and path.stem not in args.only:
                continue
            for seed in args.seeds:
                jobs.append((f"{group}/{path.stem}", str(path), seed, args.model))
    # Largest files first so the two workers finish together.
    jobs.sort(key=lambda j: -os.path.getsize(j[1]))

    runs: dict[str, list[tuple[dict[str, float], float]]] = {}
    wall = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for key, _seed, metrics, seconds in pool.map(run_one, jobs):
            runs.setdefault(key, []).append((metrics, seconds))
    wall = time.perf_counter() - wall

    header = (
        f"{'set':38s} {'WSS@95':>7s} {'ASRv':>7s} {'strict':>7s} {'RRF@10':>7s} {'ATD':>7s} "
        f"{'loss':>6s} {'s/run':>6s} {'ASRv s':>6s}"
    )
    print(f"model {args.model}, seeds {' '.join(map(str, args.seeds))}")
    print("WSS@95 = wss95, ASReview's definition (comparable with ASRv, ASReview ELAS u4 from the README);")
    print("strict = wss95_strict, Cohen's (N - n95)/N - 0.05 with recall >= 95%; s/run = median seconds per run\n")
    print(header)
    means: dict[str, dict[str, list[float]]] = {}
    for group in groups:
        for key in sorted(k for k in runs if k.startswith(group + "/")):
            ms = [m for m, _ in runs[key]]
            row = {name: float(np.mean([m[name] for m in ms])) for name in ms[0]}
            seconds = float(np.median([s for _, s in runs[key]]))
            ref = reference.get(key, {})
            acc = means.setdefault(group, {})
            for name, value in row.items():
                acc.setdefault(name, []).append(value)
            acc.setdefault("seconds", []).append(seconds)
            if ref:
                acc.setdefault("ref_wss95", []).append(ref["wss95"])
                acc.setdefault("ref_seconds", []).append(ref["seconds"])
            print(
                f"{key:38s} {_pct(row['wss95']):>7s} {_pct(ref.get('wss95')):>7s} {_pct(row['wss95_strict']):>7s} "
                f"{_pct(row['rrf10']):>7s} {_pct(row['atd']):>7s} {row['loss']:6.3f} {seconds:6.1f} "
                f"{ref.get('seconds', float('nan')):6.1f}"
            )
    print()
    for group in groups:
        acc = means[group]
        ref_w = np.mean(acc["ref_wss95"]) if acc.get("ref_wss95") else None
        print(
            f"MEAN {group:5s} ({len(acc['wss95'])} sets): WSS@95 {_pct(np.mean(acc['wss95']))} "
            f"(ASReview ELAS u4 {_pct(ref_w)}), WSS@95 strict {_pct(np.mean(acc['wss95_strict']))}, "
            f"RRF@10 {_pct(np.mean(acc['rrf10']))}, ATD {_pct(np.mean(acc['atd']))}, loss {np.mean(acc['loss']):.3f}, "
            f"median s/run {np.median(acc['seconds']):.1f} (ASReview {np.median(acc.get('ref_seconds', [np.nan])):.1f}), "
            f"total s/run {np.sum(acc['seconds']):.0f} (ASReview {np.sum(acc.get('ref_seconds', [np.nan])):.0f})"
        )
    print(f"\nwall time {wall:.0f} s with {args.workers} workers on {os.cpu_count()} cores")
    print(
        f"reproduce: . .venv/bin/activate && python bench/{Path(sys.argv[0]).name} "
        f"--sets {args.sets} --seeds {' '.join(map(str, args.seeds))} --model {args.model}"
        + (f" --only {' '.join(args.only)}" if args.only else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
