"""Run bench/screening.py's cold-start protocol with candidate models that are not livingmeta models yet.

Candidates are registered here only (bench/living_mode.py defines them), so nothing in livingmeta changes
until one wins on the dev sets. Same arguments as bench/screening.py, e.g.

    nice -n 10 python bench/model_candidates.py --sets dev --seeds 1 2 --model bench-words+chars \\
        --only cohen_Antihistamines cohen_UrinaryIncontinence cohen_Estrogens cohen_NSAIDS \\
               cohen_OralHypoglycemics cohen_Triptans cohen_ADHD
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import living_mode  # noqa: E402,F401  (registers bench-words+chars in RANKERS)
import screening  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(screening.main(sys.argv[1:]))
