"""Registry events worth an alert, found by comparing two versions of a record."""

from __future__ import annotations

from typing import Any


def registry_events(old: dict[str, Any] | None, new: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    """Events between a record's previous and new normalised data (`Record.to_dict()`).

    Args:
        old: the previous version (None when the record is new).
        new: the new version.
    Returns:
        (kind, old_value, new_value) tuples: `status_change` when a registry entry's overall status
        changes (recruiting -> completed / terminated / withdrawn …), `results_posted` when results
        appear, `retracted` when a publication becomes retracted, `deleted` when the source withdraws it.
    """
    events: list[tuple[str, str | None, str | None]] = []
    new_extra = new.get("extra") or {}
    old_extra = (old or {}).get("extra") or {}
    if old is None:
        return events
    if new.get("source") == "ctgov":
        before, after = old_extra.get("overall_status"), new_extra.get("overall_status")
        if before != after and after is not None:
            events.append(("status_change", before, after))
        if new_extra.get("has_results") and not old_extra.get("has_results"):
            events.append(("results_posted", None, new_extra.get("results_first_posted")))
    if new.get("retracted") and not old.get("retracted"):
        events.append(("retracted", None, "retracted"))
    if new.get("deleted") and not old.get("deleted"):
        events.append(("deleted", None, "deleted"))
    return events
