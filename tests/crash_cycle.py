"""Run recorded update steps of a review through the real `update-review` flow, in this process.

    python tests/crash_cycle.py REVIEW_DIR WAREHOUSE OUT_DIR STEP [STEP ...]

Each STEP names a step of the review's timeline.toml (as the demo replays it: its as_of, recorded sources and
recorded inputs). The crash tests run this as a subprocess (cheaper than `livingmeta update`, which has no
--as-of or recorded inputs) and kill it; $LIVINGMETA_TEST_KILL_AT works here as in the CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flows import settings  # noqa: E402

settings.quiet_prefect_defaults()

from flows.demo import load_timeline  # noqa: E402
from flows.update import update_review  # noqa: E402


def main(argv: list[str]) -> int:
    review_dir, warehouse, out_dir, *names = argv
    steps = {s.name: s for s in load_timeline(Path(review_dir))}
    for name in names:
        step = steps[name]
        update_review(review_dir, warehouse, out_dir, as_of=step.as_of, replay_dir=str(step.snapshot),
                      recorded_inputs=[str(p) for p in step.inputs if p.exists()])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
