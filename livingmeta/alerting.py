"""Alert messages (pure): what a new version, a registry event or a failed search tells people.

Delivery (alerts table, Prefect artifact, file/block/webhook channels) is tasks/alerts.py; here only the
words and the severity are decided, from the diff classes of livingmeta.diff and the review's alert rules.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Mapping

LABELS = {
    "analysis_added": "first estimate",
    "analysis_removed": "no estimate any more",
    "direction_change": "direction changed",
    "significance_gained": "became statistically significant",
    "significance_lost": "no longer statistically significant",
    "relative_change": "estimate moved",
    "ci_narrowed": "CI narrowed",
    "ci_widened": "CI widened",
    "tsa_boundary_crossed": "TSA boundary crossed",
    "tsa_futility": "TSA futility boundary reached",
    "tsa_ris_reached": "TSA information size reached",
    "studies_added": "studies added",
    "studies_removed": "studies removed",
    "studies_retracted": "studies retracted",
    "data_changed": "extracted data changed",
    "estimate_changed": "numbers changed",
    "estimate_undefined": "estimate not estimable",
    "estimate_appeared": "estimate now estimable",
}


def fmt_p(p: Any) -> str:
    """A p-value for people: 0.023, or <0.001 (never 6.15e-07, which reads as a typo)."""
    if p is None:
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _fmt(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"
    return str(x)


def _line(n: Mapping[str, Any] | None) -> str:
    """One estimate in prose: "OR 2.91 (95% CI 1.16 to 7.31), k=2, n=83, I²=76.3%, p = 0.023"; an estimate that
    could not be computed says so ("OR not estimable, k=1, n=23") instead of "– (95% CI – to –)"."""
    if not n:
        return "no estimate"
    measure = n.get("measure") or ""
    if n.get("estimate") is None:
        return f"{measure} not estimable, k={_fmt(n.get('k'))}, n={_fmt(n.get('participants'))}".strip()
    p = n.get("p_value")
    parts = [
        f"{measure} {_fmt(n.get('estimate'))} (95% CI {_fmt(n.get('ci_lower'))} to {_fmt(n.get('ci_upper'))})".strip(),
        f"k={_fmt(n.get('k'))}",
        f"n={_fmt(n.get('participants'))}",
    ]
    if n.get("i2") is not None:
        parts.append(f"I²={_fmt(n.get('i2'))}%")
    if p is not None:
        parts.append("p < 0.001" if p < 0.001 else f"p = {p:.3f}")
    return ", ".join(parts)


def version_severity(diffs: Mapping[str, Mapping[str, Any]], rules: Mapping[str, Any]) -> str:
    """warning when a change the rules watch happened (direction, significance, TSA boundary, retraction,
    relative change above the threshold); info otherwise."""
    watched = {"studies_retracted", "relative_change"}
    if rules.get("on_direction_change", True):
        watched.add("direction_change")
    if rules.get("on_significance_change", True):
        watched |= {"significance_gained", "significance_lost"}
    if rules.get("on_tsa_boundary", True):
        watched |= {"tsa_boundary_crossed", "tsa_futility"}
    hit = {c for d in diffs.values() for c in d.get("changes", [])} & watched
    return "warning" if hit else "info"


def version_message(
    review_title: str,
    version: int,
    diffs: Mapping[str, Mapping[str, Any]],
    trigger: Mapping[str, Any],
    rules: Mapping[str, Any],
    labels: Mapping[str, str] | None = None,
) -> tuple[str, str, str]:
    """(severity, title, Markdown body) announcing a new review version.

    Args:
        review_title: the review's title.
        version: the new version number.
        diffs: analysis_id -> classify() result, for analyses whose numbers changed.
        trigger: the version's trigger (livingmeta.diff.version_trigger).
        rules: the review's [alerts.rules] as a dict.
        labels: study id -> the study's label ("Jann 2020"), so the message names studies as the report does;
            None: study ids.
    """
    severity = version_severity(diffs, rules)
    title = f"{review_title}: version {version}"
    lines = [f"**{title}**", ""]
    why = []
    for key, word in (
        ("new_studies", "new studies"),
        ("retracted", "retracted"),
        ("removed_studies", "removed"),
        ("changed_data", "data changed"),
    ):
        if trigger.get(key):
            why.append(f"{word}: {', '.join((labels or {}).get(str(s), str(s)) for s in trigger[key])}")
    if why:
        lines += ["Why: " + "; ".join(why), ""]
    for aid, d in sorted(diffs.items()):
        if not d.get("changes"):
            continue
        lines.append(f"- `{aid}`: {', '.join(LABELS.get(c, c) for c in d['changes'])}")
        lines.append(f"  - before: {_line(d.get('old'))}")
        lines.append(f"  - now: {_line(d.get('new'))}")
    return severity, title, "\n".join(lines)


def registry_event_message(event: Mapping[str, Any]) -> tuple[str, str, str]:
    """(severity, title, body) for a registry event (status change, results posted, retraction, deletion)."""
    kind = event.get("kind")
    rid = event.get("record_id")
    what = {
        "status_change": f"status changed from {event.get('old_value') or '–'} to {event.get('new_value') or '–'}",
        "results_posted": "results were posted",
        "retracted": "the record was retracted",
        "deleted": "the record was deleted",
    }.get(kind, f"{kind}: {event.get('new_value') or ''}")
    severity = "warning" if kind in ("retracted", "deleted", "results_posted") else "info"
    title = f"{rid}: {what}"
    body = f"{title}" + (f"\n\n{event['title']}" if event.get("title") else "")
    return severity, title, body


def search_failed_message(run: Mapping[str, Any]) -> tuple[str, str, str]:
    """(severity, title, body) for a failed search run (its watermark did not move)."""
    title = f"{run.get('source')} search failed (run {run.get('run_id')})"
    body = (
        f"{title}: {run.get('error') or 'no message'}. The source's watermark did not move; the next update "
        f"searches the same window again."
    )
    return "critical", title, body


def channel_name(ch: Mapping[str, Any]) -> str:
    """The name a channel's deliveries are recorded under: "file:alerts.log", "block:slack/team", "webhook:ENV"."""
    kind = ch["type"]
    key = {"file": "path", "block": "block", "webhook": "url_env"}.get(kind)
    if key is None:
        raise ValueError(f"unknown alert channel type {kind!r}")
    return f"{kind}:{ch[key]}"
