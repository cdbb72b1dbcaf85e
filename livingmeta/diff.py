"""Comparing published estimates between review versions (pure).

A diff row per analysis holds the old and the new numbers and a list of classified changes, so people
(and alert rules) see at once what the new evidence did to each estimate:

    analysis_added / analysis_removed     the analysis has an estimate now / no longer
    direction_change                      the point estimate moved to the other side of the null
    significance_gained / _lost           the confidence interval now excludes / includes the null
    relative_change                       |new / old - 1| above the review's threshold (back-transformed scale)
    ci_narrowed / ci_widened              the CI width changed by more than the review's threshold
    tsa_boundary_crossed                  the TSA status became boundary_crossed
    tsa_futility / tsa_ris_reached        the TSA status became futility / ris_reached
    studies_added / studies_removed       studies entered / left the analysis
    studies_retracted                     studies left because a record of theirs was retracted or deleted
    data_changed                          a study's data changed (same studies, different numbers)
    estimate_changed                      numbers differ in a way none of the above names
"""

from __future__ import annotations

import math
from typing import Any
from collections.abc import Mapping

# comparative measures: the null is 0 on the analysis scale (log scale for ratios)
COMPARATIVE = ("OR", "RR", "RD", "PETO", "MD", "SMD", "ROM", "GEN")
SHOWN = (
    "estimate",
    "ci_lower",
    "ci_upper",
    "pi_lower",
    "pi_upper",
    "k",
    "participants",
    "tau2",
    "i2",
    "p_value",
    "log_estimate",
    "log_ci_lower",
    "log_ci_upper",
    "measure",
    "method",
    "tsa_status",
)
_TOL = 1e-10

# The default thresholds of a "relative_change" and of "ci_narrowed"/"ci_widened" (review.toml [alerts.rules]
# relative_change / ci_width_change; livingmeta.config.AlertRules takes its defaults from here). The one place
# they are written: the flow and `livingmeta diff` pass the review's validated values (warehouse.versions).
RELATIVE_CHANGE = 0.10  # |new/old - 1| of the back-transformed estimate
CI_WIDTH_CHANGE = 0.20  # |new width / old width - 1| of the CI on the analysis scale


def shown_numbers(est: Mapping[str, Any] | None) -> dict | None:
    """The numbers a diff shows for one estimate row (back-transformed where the measure has one, the analysis
    scale as log_*), or None."""
    if est is None:
        return None

    def bt(name: str):
        v = est.get(f"{name}_bt")
        return v if v is not None else est.get(name)

    return {
        "estimate": bt("estimate"),
        "ci_lower": bt("ci_lower"),
        "ci_upper": bt("ci_upper"),
        "pi_lower": bt("pi_lower"),
        "pi_upper": bt("pi_upper"),
        "k": est.get("k"),
        "participants": est.get("participants"),
        "tau2": est.get("tau2"),
        "i2": est.get("i2"),
        "p_value": est.get("p_value"),
        "log_estimate": est.get("estimate"),
        "log_ci_lower": est.get("ci_lower"),
        "log_ci_upper": est.get("ci_upper"),
        "measure": est.get("measure"),
        "method": est.get("method"),
        "tsa_status": est.get("tsa_status"),
    }


def _differs(a, b) -> bool:
    if a is None or b is None:
        return (a is None) != (b is None)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) > _TOL * max(1.0, abs(a), abs(b))
    return a != b


def _side(lo, hi) -> int | None:
    """+1 when the CI lies above the null, -1 below, 0 when it includes it; None when unknown."""
    if lo is None or hi is None:
        return None
    return 1 if lo > 0 else -1 if hi < 0 else 0


def classify(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    *,
    relative_change: float = RELATIVE_CHANGE,
    ci_width_change: float = CI_WIDTH_CHANGE,
    retracted: set[str] | frozenset[str] = frozenset(),
) -> dict:
    """Classify what changed between two published estimates of one analysis.

    Args:
        old, new: estimate rows (the `estimates` table's columns: estimate/ci_* on the analysis scale, *_bt
            back-transformed, k, participants, tau2, i2, p_value, measure, tsa_status) plus "studies":
            {study_id: [yi, vi]}; None when the version has no estimate for the analysis.
        relative_change: threshold on |new/old - 1| of the back-transformed estimate (analysis scale when the
            measure has no back-transform).
        ci_width_change: threshold on |new width / old width - 1| of the CI on the analysis scale.
        retracted: studies that left the analyses because a record was retracted or deleted.
    Returns:
        {"old": shown numbers or None, "new": ..., "changes": [...], "studies_added": [...],
        "studies_removed": [...], "studies_retracted": [...], "studies_changed": [...], "changed": bool} — `changed` is False when
        the numbers are the same (then no new version is needed for this analysis).
    """
    o_st = dict((old or {}).get("studies") or {})
    n_st = dict((new or {}).get("studies") or {})
    added = sorted(set(n_st) - set(o_st))
    removed = sorted(set(o_st) - set(n_st))
    gone_retracted = sorted(s for s in removed if s in retracted)
    changes: list[str] = []
    o_show, n_show = shown_numbers(old), shown_numbers(new)
    if old is None and new is None:
        return {
            "old": None,
            "new": None,
            "changes": [],
            "studies_added": [],
            "studies_removed": [],
            "studies_retracted": [],
            "studies_changed": [],
            "changed": False,
        }
    if old is None:
        changes.append("analysis_added")
    elif new is None:
        changes.append("analysis_removed")
    else:
        comparative = (new.get("measure") or old.get("measure")) in COMPARATIVE
        oe, ne = old.get("estimate"), new.get("estimate")
        if comparative and oe is not None and ne is not None and oe * ne < 0:
            changes.append("direction_change")
        if comparative:
            os_, ns_ = _side(old.get("ci_lower"), old.get("ci_upper")), _side(new.get("ci_lower"), new.get("ci_upper"))
            if os_ is not None and ns_ is not None and os_ != ns_:
                if ns_ != 0 and os_ == 0:
                    changes.append("significance_gained")
                elif ns_ == 0:
                    changes.append("significance_lost")
                else:  # significant in the other direction
                    changes.extend(["significance_lost", "significance_gained"])
        ob, nb = o_show["estimate"], n_show["estimate"]
        if ob is not None and nb is not None and ob != 0 and abs(nb / ob - 1) > relative_change:
            changes.append("relative_change")
        if (ob is None) != (nb is None):
            changes.append("estimate_appeared" if ob is None else "estimate_undefined")
        ow = _width(old)
        nw = _width(new)
        if ow and nw is not None:
            r = nw / ow - 1
            if r < -ci_width_change:
                changes.append("ci_narrowed")
            elif r > ci_width_change:
                changes.append("ci_widened")
        ot, nt = old.get("tsa_status"), new.get("tsa_status")
        if nt != ot and nt in ("boundary_crossed", "futility", "ris_reached"):
            changes.append(
                {
                    "boundary_crossed": "tsa_boundary_crossed",
                    "futility": "tsa_futility",
                    "ris_reached": "tsa_ris_reached",
                }[nt]
            )
    if added:
        changes.append("studies_added")
    if set(removed) - set(gone_retracted):
        changes.append("studies_removed")
    if gone_retracted:
        changes.append("studies_retracted")
    same = sorted(set(o_st) & set(n_st))
    changed_studies = [s for s in same if any(_differs(a, b) for a, b in zip(o_st[s], n_st[s]))]
    if changed_studies:
        changes.append("data_changed")
    numbers_differ = (old is None) != (new is None) or (
        old is not None and new is not None and any(_differs(o_show[k], n_show[k]) for k in SHOWN)
    )
    changed = numbers_differ or bool(added or removed) or "data_changed" in changes
    if changed and not changes:
        changes.append("estimate_changed")
    return {
        "old": o_show,
        "new": n_show,
        "changes": changes,
        "studies_added": added,
        "studies_removed": removed,
        "studies_retracted": gone_retracted,
        "studies_changed": changed_studies,
        "changed": changed,
    }


def _width(est: Mapping[str, Any]) -> float | None:
    lo, hi = est.get("ci_lower"), est.get("ci_upper")
    if lo is None or hi is None or not math.isfinite(hi - lo):
        return None
    return hi - lo


def version_trigger(diffs: Mapping[str, Mapping[str, Any]]) -> dict:
    """The `trigger` of a new version from its per-analysis diffs: which studies are new, which changed,
    which were retracted or removed, and which analyses appeared or disappeared."""

    def union(key: str) -> list[str]:
        return sorted({s for d in diffs.values() for s in d.get(key, [])})

    return {
        "new_studies": union("studies_added"),
        "removed_studies": sorted(set(union("studies_removed")) - set(union("studies_retracted"))),
        "retracted": union("studies_retracted"),
        "changed_data": union("studies_changed"),
        "analyses_added": sorted(a for a, d in diffs.items() if "analysis_added" in d["changes"]),
        "analyses_removed": sorted(a for a, d in diffs.items() if "analysis_removed" in d["changes"]),
    }
