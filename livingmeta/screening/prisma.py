"""PRISMA 2020 flow counts shaped for reports: previous version, new in this update, total.

Reference: Page MJ et al. The PRISMA 2020 statement. BMJ 2021;372:n71 (flow diagram for updated
reviews: "studies included in previous version of review", "new studies included in review").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# the boxes of the PRISMA 2020 flow diagram, in reading order, and their label for people
PRISMA_FIELDS: dict[str, str] = {
    "identified_pubmed": "Records identified: PubMed",
    "identified_ctgov": "Records identified: ClinicalTrials.gov",
    "identified_total": "Records identified: total",
    "duplicates_removed": "Duplicate records removed before screening",
    "screened": "Records screened",
    "excluded_title_abstract": "Records excluded at title/abstract",
    "full_text_sought": "Reports sought for retrieval",
    "full_text_assessed": "Reports assessed for eligibility",
    "excluded_full_text": "Reports excluded, with reasons",
    "included_studies": "Studies included",
    "included_reports": "Reports of included studies",
}


def _reasons(value: Any) -> dict[str, int]:
    if value is None:
        return {}
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else {}
    return {str(k): int(v) for k, v in dict(value).items()}


def shape_prisma(current: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """PRISMA counts of one review version beside the previous version's.

    Args:
        current: one row of `v_prisma_by_version` or `v_prisma_counts` (cumulative counts).
        previous: the previous version's row (None for the first version).
    Returns:
        {"version", "previous_version", "counts": [{"key", "label", "previous", "new", "total"}],
         "excluded_reasons": [{"reason", "previous", "new", "total"}]} — "new" is total minus previous, i.e.
        what this update added; previous is 0 for the first version.
    """
    counts = []
    for key, label in PRISMA_FIELDS.items():
        total = int(current.get(key) or 0)
        before = int((previous or {}).get(key) or 0)
        counts.append({"key": key, "label": label, "previous": before, "new": total - before, "total": total})
    now_r = _reasons(current.get("excluded_full_text_reasons"))
    before_r = _reasons((previous or {}).get("excluded_full_text_reasons"))
    reasons = [
        {
            "reason": r,
            "previous": before_r.get(r, 0),
            "new": now_r.get(r, 0) - before_r.get(r, 0),
            "total": now_r.get(r, 0),
        }
        for r in sorted(set(now_r) | set(before_r), key=lambda r: (-now_r.get(r, 0), r))
    ]
    return {
        "version": current.get("version"),
        "previous_version": (previous or {}).get("version"),
        "counts": counts,
        "excluded_reasons": reasons,
    }
