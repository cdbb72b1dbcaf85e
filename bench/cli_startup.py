"""Benchmark: cold start of the command line (each run a fresh process, as a person typing it).

Prints the median wall and CPU (user + system of the child) seconds over N runs of `livingmeta --help`,
`--version`, `init`, and `meta` on a 10-study CSV, beside `prefect --help` and
`python -c "import duckdb, pandas"` for scale. Figures are printed, never asserted. The targets (issue 13):
--help and --version under 1 s, meta under 1.5 s.

Run:  .venv/bin/python bench/cli_startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

STUDIES = """study,year,treat_events,treat_total,control_events,control_total
Ahn2001,2001,12,50,7,49
Brandt2003,2003,20,61,14,60
Cruz2005,2005,9,40,5,42
Dahl2008,2008,25,80,18,78
Evans2010,2010,14,55,9,53
Fujita2012,2012,30,90,22,91
Gomez2014,2014,8,35,6,34
Hale2016,2016,17,64,10,66
Ivanov2018,2018,22,70,13,71
Jensen2020,2020,11,45,8,44
"""


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of cmd in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.decode(errors='replace')[-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="runs per command (the median is printed)")
    args = ap.parse_args()
    lm = str(BIN / "livingmeta")
    prefect = str(BIN / "prefect") if (BIN / "prefect").exists() else shutil.which("prefect")
    with tempfile.TemporaryDirectory(prefix="lm-cli-bench-") as tmp:
        csv = Path(tmp) / "ten_studies.csv"
        csv.write_text(STUDIES, encoding="utf-8")
        counter = iter(range(10 ** 6))
        cases: list[tuple[str, object]] = [
            ("livingmeta --help", [lm, "--help"]),
            ("livingmeta --version", [lm, "--version"]),
            ("livingmeta init DIR", lambda: [lm, "init", str(Path(tmp) / f"r{next(counter)}")]),
            ("livingmeta meta ten_studies.csv", [lm, "meta", str(csv)]),
            ("prefect --help", [prefect, "--help"] if prefect else None),
            ('python -c "import duckdb, pandas"', [sys.executable, "-c", "import duckdb, pandas"]),
        ]
        print(f"cold start, median of {args.runs} runs; {platform.python_implementation()} {platform.python_version()}, "
              f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print(f"{'command':<36} {'wall s':>8} {'CPU s':>8}")
        for name, cmd in cases:
            if cmd is None:
                print(f"{name:<36} {'(not installed)':>17}")
                continue
            timed(cmd() if callable(cmd) else cmd)  # warm the file cache: "cold" means a new process, not a cold disk
            runs = [timed(cmd() if callable(cmd) else cmd) for _ in range(args.runs)]
            print(f"{name:<36} {statistics.median(w for w, _ in runs):>8.3f} {statistics.median(c for _, c in runs):>8.3f}")
    print(f"reproduce: {Path(sys.executable).relative_to(REPO) if Path(sys.executable).is_relative_to(REPO) else sys.executable} "
          f"bench/cli_startup.py --runs {args.runs}")


if __name__ == "__main__":
    main()
