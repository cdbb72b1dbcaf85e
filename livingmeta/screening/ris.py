"""RIS export of records (for reference managers and screening tools).

Reference: RIS format specification (Research Information Systems, 2011): two-letter tag, two spaces,
hyphen, space, value; each record starts with TY and ends with ER.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def _clean(value: Any) -> str:
    # RIS is line-based: a newline inside a value would start a bogus tag
    return " ".join(str(value).split())


def format_ris(records: Iterable[Mapping[str, Any]]) -> str:
    """Records as RIS text.

    Args:
        records: mappings with record_id, title, abstract, authors (list), year, doi, journal, keywords (list),
            source ("pubmed" | "ctgov").
    Returns:
        RIS text: TY (JOUR for publications, DATA for registry entries), TI, AB, AU (one per author), PY, JO,
        DO, KW, ID (our record id, so a file can be mapped back), ER.
    """
    lines: list[str] = []
    for r in records:
        lines.append("TY  - " + ("DATA" if r.get("source") == "ctgov" else "JOUR"))
        if r.get("title"):
            lines.append("TI  - " + _clean(r["title"]))
        if r.get("abstract"):
            lines.append("AB  - " + _clean(r["abstract"]))
        for a in r.get("authors") or []:
            lines.append("AU  - " + _clean(a))
        if r.get("year"):
            lines.append(f"PY  - {int(r['year'])}")
        if r.get("journal"):
            lines.append("JO  - " + _clean(r["journal"]))
        if r.get("doi"):
            lines.append("DO  - " + _clean(r["doi"]))
        for k in r.get("keywords") or []:
            lines.append("KW  - " + _clean(k))
        lines.append("ID  - " + _clean(r["record_id"]))
        lines.append("ER  - ")
        lines.append("")
    return "\n".join(lines)
