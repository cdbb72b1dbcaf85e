"""Marking a review's include/exclude terms in a title or abstract, as segments a page escapes itself.

Returns plain (text, kind) pairs, never markup: the template escapes every piece, so a title carrying
`<script>` shows as text whatever the terms are.
"""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=64)
def _pattern(include: tuple[str, ...], exclude: tuple[str, ...]) -> tuple[re.Pattern | None, dict[str, str]]:
    kinds: dict[str, str] = {}
    for kind, terms in (("exclude", exclude), ("include", include)):  # a term in both lists shows as exclude
        for t in terms:
            t = t.strip().lower()
            if t:
                kinds.setdefault(t, kind)
    if not kinds:
        return None, kinds
    alternatives = sorted(kinds, key=len, reverse=True)  # longest first: "randomised controlled" before "random"
    return re.compile(r"(?<!\w)(" + "|".join(re.escape(t) for t in alternatives) + r")(?!\w)", re.IGNORECASE), kinds


def highlight(
    text: str | None, include: list[str] | tuple[str, ...] = (), exclude: list[str] | tuple[str, ...] = ()
) -> list[tuple[str, str | None]]:
    """`text` cut into (piece, kind) with kind "include", "exclude" or None, in order; joined they give `text`."""
    if not text:
        return []
    pattern, kinds = _pattern(tuple(include), tuple(exclude))
    if pattern is None:
        return [(text, None)]
    out: list[tuple[str, str | None]] = []
    at = 0
    for m in pattern.finditer(text):
        if m.start() > at:
            out.append((text[at : m.start()], None))
        out.append((m.group(0), kinds[m.group(0).lower()]))
        at = m.end()
    if at < len(text):
        out.append((text[at:], None))
    return out
