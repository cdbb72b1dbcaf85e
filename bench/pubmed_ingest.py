"""PubMed ingestion throughput: streaming parse + one-transaction load vs Bio.Entrez.read.

Builds one large efetch file (default 50,000 PubmedArticle records) from the project's own fixture
articles (tests/fixtures/pubmed) with distinct PMIDs, then measures in one run:

  1. parse   : livingmeta.sources.pubmed.parse_efetch over the file (streamed)
  2. load    : warehouse.ingest.finish_search_run of every record into a fresh DuckDB file
     (and once more into the same file: a nightly re-fetch where every record is unchanged)
  3. Bio     : Bio.Entrez.read on the same file (DTD-validating, whole document in memory)

and prints records/s for each, the ratio, and peak Python memory (tracemalloc, in separate passes so
the timings are not slowed by tracing). Parse memory is also measured at a fifth of the size to show
it stays flat as the file grows. Prints figures only; nothing passes or fails on time.

Run:  . .venv/bin/activate && python bench/pubmed_ingest.py [--records 50000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import re
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from livingmeta.sources.pubmed import parse_efetch  # noqa: E402
from warehouse import connect  # noqa: E402
from warehouse.ingest import Fetched, finish_search_run, start_search_run  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "pubmed"
HEAD = (b'<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
        b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n<PubmedArticleSet>\n')
ARTICLE_RE = re.compile(rb"<PubmedArticle>.*?</PubmedArticle>", re.DOTALL)
PMID_RE = re.compile(rb"(<PMID Version=\"\d+\">)(\d+)(</PMID>)")


def build_file(path: Path, n: int) -> int:
    """Write n articles cycling through the fixture articles, each with its own PMID."""
    templates = [m.group(0) for name in ("articles.xml", "retraction.xml")
                 for m in ARTICLE_RE.finditer((FIXTURES / name).read_bytes())]
    with open(path, "wb") as f:
        f.write(HEAD)
        for i in range(n):
            t = templates[i % len(templates)]
            pmid = str(50_000_000 + i).encode()
            # only the article's own PMID changes; CommentsCorrections PMIDs keep pointing elsewhere
            f.write(PMID_RE.sub(lambda m: m.group(1) + pmid + m.group(3), t, count=1))
            f.write(b"\n")
        f.write(b"</PubmedArticleSet>\n")
    return path.stat().st_size


def parse_all(path: Path) -> list[Fetched]:
    return [Fetched(a.record, a.payload) for a in parse_efetch(path)]


def parse_count(path: Path) -> int:
    return sum(1 for _ in parse_efetch(path))


def load(fetched: list[Fetched], db: Path, again: bool = False) -> None:
    con = connect(db)
    now = dt.datetime.now(dt.timezone.utc)
    run_id = start_search_run(con, review_id="bench", source="pubmed", query="bench", mode="replay",
                              window_start=None, window_end=now, now=now)
    counts = finish_search_run(con, run_id=run_id, review_id="bench", source="pubmed", fetched=fetched,
                               watermark=now, now=now)
    con.close()
    assert (counts.unchanged if again else counts.new) == len(fetched), counts


def bio_read(path: Path) -> int:
    from Bio import Entrez

    with open(path, "rb") as f:
        data = Entrez.read(f)
    return len(data["PubmedArticle"])


def peak_mib(fn, *args) -> float:
    gc.collect()
    tracemalloc.start()
    fn(*args)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def timed(fn, *args):
    """(result, wall seconds, CPU seconds of this process): CPU time is what one core costs when the
    machine is shared; wall time is what a user waits."""
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--skip-memory", action="store_true", help="timings only (the tracemalloc passes are slow)")
    args = ap.parse_args()
    n = args.records
    with tempfile.TemporaryDirectory(prefix="pubmed-bench-") as tmp:
        tmp = Path(tmp)
        big, small = tmp / "big.xml", tmp / "small.xml"
        size = build_file(big, n)
        build_file(small, max(n // 5, 1))
        fetched, t_parse, c_parse = timed(parse_all, big)
        assert len(fetched) == n
        _, t_load, c_load = timed(load, fetched, tmp / "wh1.duckdb")
        _, t_again, c_again = timed(load, fetched, tmp / "wh1.duckdb", True)
        del fetched
        n_bio, t_bio, c_bio = timed(bio_read, big)
        assert n_bio == n
        print(f"input: {n:,} PubmedArticle records, {size / 2**20:.1f} MiB (built from tests/fixtures/pubmed, distinct PMIDs); "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print("                                     wall s   records/s (wall)   CPU s   records/CPU-s")
        for label, t, c in (("livingmeta parse (streamed)", t_parse, c_parse),
                            ("warehouse load (one transaction)", t_load, c_load),
                            ("livingmeta parse + load", t_parse + t_load, c_parse + c_load),
                            ("re-load, all unchanged", t_again, c_again),
                            ("Bio.Entrez.read (parse only)", t_bio, c_bio)):
            print(f"{label:<35}{t:8.2f}   {n / t:12,.0f}     {c:8.2f}   {n / c:10,.0f}")
        print("target: >= 3,000 records/s parse + load on one core")
        print(f"ratio (records/CPU-s) parse+load vs Bio.Entrez.read: {c_bio / (c_parse + c_load):.2f}x; "
              f"parse only vs Bio.Entrez.read: {c_bio / c_parse:.2f}x")
        if not args.skip_memory:
            m_small = peak_mib(parse_count, small)
            m_big = peak_mib(parse_count, big)
            m_bio = peak_mib(bio_read, big)
            print(f"peak memory, parse streamed      : {m_small:7.1f} MiB at {max(n // 5, 1):,} records, "
                  f"{m_big:7.1f} MiB at {n:,} (flat: records are not kept)")
            print(f"peak memory, Bio.Entrez.read     : {m_bio:7.1f} MiB at {n:,} records")
            m_all = peak_mib(lambda p: load(parse_all(p), tmp / "wh2.duckdb"), big)
            print(f"peak memory, parse + load        : {m_all:7.1f} MiB at {n:,} records (one transaction holds the "
                  "run's records by design)")
        print(f"python {sys.version.split()[0]}, one process; reproduce: . .venv/bin/activate && python bench/pubmed_ingest.py "
              f"--records {n}")


if __name__ == "__main__":
    main()
