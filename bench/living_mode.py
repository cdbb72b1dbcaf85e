"""Living-mode ranking: train on the earlier records of a review, rank the later ones (a time split).

A living review ranks each night's few new records with a model trained on hundreds of earlier
decisions; the cold-start simulation (bench/screening.py) does not measure that. The shared sets carry no
publication years, but the Cohen (dev) and SYNERGY (eval) sets carry PubMed ids, which PubMed assigns in
the order records enter it: sorted by PMID, the first --train-share of the records (those with a PMID)
are the "earlier" decisions and the rest is the new batch. Ferdinands sets have no ids and are left out;
records without a PMID are left out.

Per set and model, on the new batch:
- ranking: recall in the top 10% of the batch (RRF@10) and WSS@95 (ASReview's definition) of the batch
  ordered by score;
- calibration of P(include) under several probability methods: Brier score, ECE (10 bins), and the
  error of "expected includes among the records waiting" for nights of --night records (the batch cut in
  PMID order), as mean absolute error and bias (expected - observed) per night.
Probability methods: "platt-oof" (livingmeta.screening.calibration: Platt's sigmoid on out-of-fold
scores), "isotonic-oof" (isotonic regression on the same out-of-fold scores), "raw-sigmoid" (1/(1+e^-score)
of the SVM margin), "prevalence" (the training set's include share for every record: what a rate-based
estimate gives).

    nice -n 10 python bench/living_mode.py --sets all
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from livingmeta.screening.calibration import (  # noqa: E402
    brier,
    expected_calibration_error,
    out_of_fold_scores,
    platt,
)
from livingmeta.screening.metrics import rrf, wss_asreview  # noqa: E402
from livingmeta.screening.ranking import RANKERS, TfidfSvmRanker, make_ranker  # noqa: E402

SCREENING = ROOT.parent / "shared" / "datasets" / "screening"
GROUPS = {"dev": "cohen_*.csv", "eval": "synergy_*.csv"}
PROB_METHODS = ("platt-oof", "isotonic-oof", "raw-sigmoid", "prevalence")


class WordsCharsRanker(TfidfSvmRanker):
    """A candidate only measured here (not a livingmeta model): the ELAS u4 replica's word 1-2-gram TF-IDF
    beside character 3-5-gram TF-IDF within words (min_df 2), one SVM on both."""

    name = "bench-words+chars"

    def _vectorise(self, texts):
        import scipy.sparse as sp
        from sklearn.feature_extraction.text import TfidfVectorizer

        words = super()._vectorise(texts)
        chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2,
                                max_df=0.95).fit_transform(texts)
        return sp.hstack([words, chars]).tocsr()


RANKERS.setdefault(WordsCharsRanker.name, WordsCharsRanker)
_PMID = re.compile(r"(\d+)\s*$")


def read_with_pmids(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Texts, labels and PMIDs of the records that have a PMID (Cohen: pubmedID; SYNERGY: pmid URL)."""
    csv.field_size_limit(10**9)
    texts, labels, pmids = [], [], []
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            raw = (row.get("pubmedID") or row.get("pmid") or "").strip().rstrip("/")
            m = _PMID.search(raw.replace(".0", "")) if raw else None
            if not m:
                continue
            texts.append(f"{(row.get('title') or '').strip()} {(row.get('abstract') or '').strip()}".strip())
            labels.append(int(float(row["label_included"])))
            pmids.append(int(m.group(1)))
    return texts, np.asarray(labels, dtype=np.int64), np.asarray(pmids, dtype=np.int64)


def night_errors(p: np.ndarray, y: np.ndarray, night: int) -> tuple[float, float]:
    """Mean absolute error and bias of sum(p) against the includes, per consecutive chunk of ``night`` records."""
    errs = [float(p[i:i + night].sum() - y[i:i + night].sum()) for i in range(0, len(p) - night + 1, night)]
    return float(np.mean(np.abs(errs))), float(np.mean(errs))


def run_set(path: Path, model: str, train_share: float, night: int, seed: int) -> dict | None:
    from sklearn.isotonic import IsotonicRegression

    texts, y, pmids = read_with_pmids(path)
    order = np.argsort(pmids, kind="stable")
    cut = int(round(train_share * len(order)))
    train, batch = order[:cut], order[cut:]
    if y[train].sum() < 2 or y[batch].sum() < 2:
        return None
    ranker = make_ranker({"name": model, "seed": seed})
    started = time.process_time()
    feats = ranker.features(texts)
    scores = ranker.fit_rank(texts, {int(i): int(y[i]) for i in train})
    oof = out_of_fold_scores(ranker, feats, train, y[train], folds=5, seed=seed)
    a, b = platt(oof, y[train])
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(oof, y[train])
    cpu = time.process_time() - started
    s_batch, y_batch = scores[batch], y[batch]
    probs = {
        "platt-oof": 1 / (1 + np.exp(-(a * s_batch + b))),
        "isotonic-oof": iso.predict(s_batch),
        "raw-sigmoid": 1 / (1 + np.exp(-s_batch)),
        "prevalence": np.full(len(batch), y[train].mean()),
    }
    ranked = y_batch[np.argsort(-s_batch, kind="stable")]
    out = {"records": len(y), "train": len(train), "batch": len(batch), "batch_included": int(y_batch.sum()),
           "train_included": int(y[train].sum()), "rrf10": rrf(ranked, 10), "wss95": wss_asreview(ranked, 95),
           "cpu": cpu, "pmid_cut": int(pmids[batch].min())}
    for name, p in probs.items():
        mae, bias = night_errors(p, y_batch, night)  # nights in PMID order, as they would arrive
        out[name] = {"brier": brier(p, y_batch), "ece": expected_calibration_error(p, y_batch), "expected": float(p.sum()),
                     "night_mae": mae, "night_bias": bias}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", choices=("dev", "eval", "all"), default="dev")
    parser.add_argument("--models", nargs="+", default=["tfidf-svm"])
    parser.add_argument("--train-share", type=float, default=0.8)
    parser.add_argument("--night", type=int, default=3, help="records per night for the expected-count error")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not SCREENING.exists():
        print(f"no screening data sets at {SCREENING}; nothing to measure")
        return 1
    groups = ("dev", "eval") if args.sets == "all" else (args.sets,)
    wall = time.perf_counter()
    print(f"time split by PMID: train on the first {args.train_share:.0%} of each set's records with a PMID, "
          f"rank the rest; nights of {args.night} records; seed {args.seed}")
    for model in args.models:
        print(f"\nmodel {model}")
        print(f"{'set':36s} {'train':>6s} {'batch':>6s} {'inc':>4s} {'RRF@10':>7s} {'WSS@95':>7s}   "
              + "   ".join(f"{m:>12s} Brier/ECE/obs-exp/nightMAE" for m in ("platt-oof", "prevalence")))
        for group in groups:
            rows = {}
            for path in sorted((SCREENING / group).glob(GROUPS[group])):
                r = run_set(path, model, args.train_share, args.night, args.seed)
                if r is None:
                    print(f"{group + '/' + path.stem:36s} skipped: fewer than 2 includes on one side of the split")
                    continue
                rows[path.stem] = r
                print(f"{group + '/' + path.stem:36s} {r['train']:6d} {r['batch']:6d} {r['batch_included']:4d} "
                      f"{100 * r['rrf10']:6.1f}% {100 * r['wss95']:6.1f}%   "
                      + "   ".join(f"{r[m]['brier']:.3f}/{r[m]['ece']:.3f}/{r['batch_included']}-{r[m]['expected']:.1f}"
                                   f"/{r[m]['night_mae']:.2f}" for m in ("platt-oof", "prevalence")))
            if not rows:
                continue
            print(f"MEAN {group} ({len(rows)} sets): RRF@10 {100 * np.mean([r['rrf10'] for r in rows.values()]):.1f}%, "
                  f"WSS@95 {100 * np.mean([r['wss95'] for r in rows.values()]):.1f}%")
            for m in PROB_METHODS:
                exp = np.array([r[m]["expected"] for r in rows.values()])
                obs = np.array([r["batch_included"] for r in rows.values()])
                print(f"  {m:13s} Brier {np.mean([r[m]['brier'] for r in rows.values()]):.4f}  ECE "
                      f"{np.mean([r[m]['ece'] for r in rows.values()]):.4f}  batch expected/observed "
                      f"{exp.sum():.1f}/{obs.sum()} (mean |exp-obs|/obs {np.mean(np.abs(exp - obs) / obs):.2f})  "
                      f"per-night MAE {np.mean([r[m]['night_mae'] for r in rows.values()]):.3f}, bias "
                      f"{np.mean([r[m]['night_bias'] for r in rows.values()]):+.3f}")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"\nCPU {usage.ru_utime + usage.ru_stime:.0f} s, wall {time.perf_counter() - wall:.0f} s on "
          f"{os.cpu_count()} shared cores")
    print(f"reproduce: nice -n 10 .venv/bin/python bench/living_mode.py --sets {args.sets} --models "
          f"{' '.join(args.models)} --train-share {args.train_share} --night {args.night} --seed {args.seed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
