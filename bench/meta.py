"""Benchmark: what an update re-runs, at k = 5, 50, 500 and 5,000 simulated studies.

For each k (binary data simulated with a fixed seed) it times
  - pooled: every measure/method that applies to binary data (RR, OR, RD, PETO x FE, DL, REML, ML, PM,
    SJ, HE, EB; MH for OR/RR/RD; Peto for OR) through meta_analyze,
  - leave-one-out and cumulative for every method on the primary measure (OR), with tau2_ci=False as
    livingmeta/analysis.py runs them (no Q-profile tau2 CI per subset),
and, in the same run on the same yi/vi, statsmodels' combine_effects (DerSimonian-Laird) once and as a
leave-one-out loop, beside our DL fit and DL leave-one-out (with the per-subset tau2 CI, as a plain
leave_one_out call computes it, and without). It prints a table of seconds and ratios and checks that
both give the same DL estimate.

Reproduce:  . .venv/bin/activate && python bench/meta.py            (all k)
            . .venv/bin/activate && python bench/meta.py --k 5 50    (some k)
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np
import pandas as pd

from livingmeta.stats import ENGINE_VERSION, cumulative, leave_one_out, meta_analyze

IV_METHODS = ["FE", "DL", "REML", "ML", "PM", "SJ", "HE", "EB"]


def simulate(k: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n1 = rng.integers(20, 400, k)
    n2 = rng.integers(20, 400, k)
    p2 = rng.uniform(0.05, 0.4, k)
    log_or = rng.normal(-0.3, 0.25, k)
    p1 = 1 / (1 + np.exp(-(np.log(p2 / (1 - p2)) + log_or)))
    return pd.DataFrame({
        "study": [f"Study {i + 1}" for i in range(k)],
        "year": 1990 + rng.integers(0, 35, k),
        "treat_events": rng.binomial(n1, p1), "treat_total": n1,
        "control_events": rng.binomial(n2, p2), "control_total": n2,
    })


def timed(fn, *args, **kw):
    start = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - start, out


def combos():
    for measure in ["RR", "OR", "RD", "PETO"]:
        for method in IV_METHODS:
            yield measure, method
        if measure in ("RR", "OR", "RD"):
            yield measure, "MH"
    yield "OR", "PETO"


def run(k: int) -> dict:
    import warnings

    from statsmodels.stats.meta_analysis import combine_effects

    warnings.filterwarnings("ignore", category=RuntimeWarning, module="statsmodels")

    rows = simulate(k, seed=20240 + k)
    t_pooled = 0.0
    for measure, method in combos():
        t, _ = timed(meta_analyze, rows, measure=measure, method=method)
        t_pooled += t
    t_loo = t_cum = 0.0
    for method in IV_METHODS + ["MH", "PETO"]:
        t, _ = timed(leave_one_out, rows, measure="OR", method=method, tau2_ci=False)
        t_loo += t
        t, _ = timed(cumulative, rows, measure="OR", method=method, tau2_ci=False)
        t_cum += t
    t_dl, ours = timed(meta_analyze, rows, measure="OR", method="DL")
    yi = np.array([s["yi"] for s in ours.studies])
    vi = np.array([s["vi"] for s in ours.studies])
    t_sm, sm = timed(combine_effects, yi, vi, method_re="dl")
    sm_est = float(sm.mean_effect_re)
    sm_negative_tau2 = float(sm.tau2) < 0
    t_dl_loo, _ = timed(leave_one_out, rows, measure="OR", method="DL")
    t_dl_loo_noci, _ = timed(leave_one_out, rows, measure="OR", method="DL", tau2_ci=False)
    start = time.perf_counter()
    idx = np.arange(k)
    for i in range(k):
        keep = idx != i
        combine_effects(yi[keep], vi[keep], method_re="dl")
    t_sm_loo = time.perf_counter() - start
    return dict(k=k, pooled=t_pooled, loo=t_loo, cum=t_cum, total=t_pooled + t_loo + t_cum, dl=t_dl, sm=t_sm,
                dl_loo=t_dl_loo, dl_loo_noci=t_dl_loo_noci, sm_loo=t_sm_loo, diff=abs(ours.estimate - sm_est), neg=sm_negative_tau2, n_fits=len(list(combos())))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[5, 50, 500, 5000])
    args = parser.parse_args(argv)
    print(f"livingmeta stats engine {ENGINE_VERSION}; Python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.machine()}")
    print("seconds; full set = all pooled fits + leave-one-out + cumulative (10 methods, OR, tau2_ci=False)\n")
    header = (f"{'k':>6} {'fits':>5} {'pooled':>8} {'LOO':>8} {'cumul':>8} {'full set':>9} | {'our DL':>8} "
              f"{'sm DL':>8} {'ratio':>6} | {'our DL LOO':>10} {'no tau2 CI':>10} {'sm LOO loop':>11} {'ratio':>7} | "
              f"{'|est diff|':>10}")
    print(header)
    print("-" * len(header))
    for k in args.k:
        r = run(k)
        print(f"{r['k']:>6} {r['n_fits']:>5} {r['pooled']:>8.3f} {r['loo']:>8.3f} {r['cum']:>8.3f} {r['total']:>9.3f} | "
              f"{r['dl']:>8.4f} {r['sm']:>8.4f} {r['dl'] / r['sm']:>6.1f} | {r['dl_loo']:>10.3f} {r['dl_loo_noci']:>10.3f} {r['sm_loo']:>11.3f} "
              f"{r['sm_loo'] / r['dl_loo_noci']:>6.1f}x | {r['diff']:>10.1e}{' *' if r['neg'] else ''}", flush=True)
    print("\nratio (single DL) = ours / statsmodels (ours also validates input, computes effect sizes, "
          "Q-profile tau2 CI and per-study weights);")
    print("our DL LOO = leave_one_out with the Q-profile tau2 CI of every subset (the default); no tau2 CI =")
    print("  tau2_ci=False, as the living update runs it (statsmodels computes no tau2 CI either).")
    print("ratio (LOO) = statsmodels loop / ours without tau2 CI (the like-for-like comparison).")
    print("* statsmodels returned a negative DL tau2 (it does not truncate at 0 when Q < k-1); ours is 0 as in")
    print("  DerSimonian-Laird and metafor, hence the different estimate.")
    print(f"reproduce: . .venv/bin/activate && python bench/meta.py --k {' '.join(map(str, args.k))}")


if __name__ == "__main__":
    sys.exit(main())
