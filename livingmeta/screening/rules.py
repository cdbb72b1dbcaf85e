"""Screening rules: why a record is in the queue, and a first-guess relevance score before any model.

Rules come from `[screening]` in review.toml. They never delete or decide anything: they give people
reasons to read ("publication type: Randomized Controlled Trial", "exclude keyword: kawasaki") and a
score that orders the queue until the ranking model has enough decisions to learn from. A record a
rule finds out of scope (animal-only, when `out_of_scope_animal` is on) is labelled `out_of_scope`
and sorted last; it stays in the queue for anyone who wants to check.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# rule weights: a trial design is stronger evidence of relevance than a word in the abstract
WEIGHT_PUBLICATION_TYPE = 3.0
WEIGHT_REGISTRY_RANDOMISED = 3.0
WEIGHT_REGISTRY_INTERVENTIONAL = 1.0
WEIGHT_KEYWORD = 1.0
WEIGHT_MESH = 1.5
WEIGHT_EXCLUDE_PUBLICATION_TYPE = -3.0
WEIGHT_EXCLUDE_KEYWORD = -2.0
WEIGHT_EXCLUDE_MESH = -2.0
WEIGHT_OBSERVATIONAL = -1.0

# MEDLINE indexes every study of animals with "Animals" and every study of people with "Humans"
# (NLM indexing manual, check tags); a title naming only laboratory animals is the fallback when a
# record has no MeSH yet (in-process citations, registry entries)
_ANIMAL_WORDS = re.compile(
    r"\b(rats?|mice|mouse|murine|rodents?|rabbits?|dogs?|canine|cats?|feline|pigs?|porcine|swine|sheep|ovine|"
    r"monkeys?|primates?|macaques?|zebrafish|drosophila|in vivo model|animal models?)\b",
    re.IGNORECASE,
)
_HUMAN_WORDS = re.compile(
    r"\b(patients?|humans?|participants?|volunteers?|subjects|women|men|children|adults?|people|persons?|"
    r"cases?|clinical)\b",
    re.IGNORECASE,
)


@dataclass
class RuleResult:
    """What the rules found for one record.

    Attributes:
        reasons: human-readable rule hits, strongest first.
        label: "candidate" or "out_of_scope".
        score: sum of rule weights (higher = screen first); 0 when no rule fired.
    """

    reasons: list[str] = field(default_factory=list)
    label: str = "candidate"
    score: float = 0.0


def _lower_set(values: Iterable[Any]) -> set[str]:
    return {str(v).strip().lower() for v in values if v is not None and str(v).strip()}


def _mesh_descriptors(mesh: Iterable[str]) -> set[str]:
    # "Descriptor/Qualifier" -> "descriptor": configured MeSH terms name descriptors
    return {str(m).split("/")[0].strip().lower().lstrip("*") for m in mesh or []}


def _registry_design_words(record: Mapping[str, Any]) -> set[str]:
    """Design words of a registry entry, wherever the source put them (publication types or `extra`)."""
    words = _lower_set(record.get("publication_types") or [])
    extra = record.get("extra") or {}

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, str(k).lower())
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and any(t in key for t in ("allocation", "study_type", "studytype", "design")):
            words.add(value.strip().lower().replace("_", " "))

    walk(extra)
    return words


def _contains_phrase(text: str, phrase: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(phrase.lower()) + r"(?!\w)", text) is not None


def is_animal_only(record: Mapping[str, Any]) -> bool:
    """Tell whether a record reports animals only.

    Args:
        record: a `Record.to_dict()`-shaped mapping.
    Returns:
        True when MeSH has "Animals" without "Humans", or, with no MeSH, when the title names laboratory
        animals and no people.
    Reference: NLM MeSH check tags "Animals" and "Humans" (NLM indexing manual).
    """
    mesh = _mesh_descriptors(record.get("mesh") or [])
    if mesh:
        return "animals" in mesh and "humans" not in mesh
    title = record.get("title") or ""
    return bool(_ANIMAL_WORDS.search(title)) and not _HUMAN_WORDS.search(title)


def apply_rules(record: Mapping[str, Any], screening: Any) -> RuleResult:
    """Apply the review's screening rules to one record.

    Args:
        record: a `Record.to_dict()`-shaped mapping (title, abstract, publication_types, is_rct, mesh,
            keywords, extra, source, retracted ...).
        screening: the `[screening]` settings (`livingmeta.config.Screening`): include/exclude publication
            types, keywords and MeSH, `out_of_scope_animal`.
    Returns:
        RuleResult with reasons, label ("candidate" | "out_of_scope") and a rules score.
    """
    result = RuleResult()
    hits: list[tuple[float, str]] = []
    pub_types = _lower_set(record.get("publication_types") or [])
    for pt in screening.include_publication_types:
        if pt.strip().lower() in pub_types:
            hits.append((WEIGHT_PUBLICATION_TYPE, f"publication type: {pt}"))
    if (
        record.get("is_rct")
        and not any(r.startswith("publication type: Randomized Controlled Trial") for _, r in hits)
        and record.get("source") != "ctgov"
    ):
        hits.append((WEIGHT_PUBLICATION_TYPE, "publication type: Randomized Controlled Trial"))
    for pt in screening.exclude_publication_types:
        if pt.strip().lower() in pub_types:
            hits.append((WEIGHT_EXCLUDE_PUBLICATION_TYPE, f"excluded publication type: {pt}"))

    if record.get("source") == "ctgov":
        design = _registry_design_words(record)
        if "randomized" in design or "randomised" in design or record.get("is_rct"):
            hits.append((WEIGHT_REGISTRY_RANDOMISED, "registry design: randomized"))
        if "interventional" in design:
            hits.append((WEIGHT_REGISTRY_INTERVENTIONAL, "registry design: interventional"))
        elif "observational" in design:
            hits.append((WEIGHT_OBSERVATIONAL, "registry design: observational"))

    text = " ".join(
        [
            record.get("title") or "",
            record.get("abstract") or "",
            " ".join(str(k) for k in record.get("keywords") or []),
        ]
    ).lower()
    for kw in screening.include_keywords:
        if kw.strip() and _contains_phrase(text, kw.strip()):
            hits.append((WEIGHT_KEYWORD, f"keyword: {kw}"))
    for kw in screening.exclude_keywords:
        if kw.strip() and _contains_phrase(text, kw.strip()):
            hits.append((WEIGHT_EXCLUDE_KEYWORD, f"exclude keyword: {kw}"))

    mesh = _mesh_descriptors(record.get("mesh") or [])
    for term in screening.include_mesh:
        if term.strip().lower() in mesh:
            hits.append((WEIGHT_MESH, f"MeSH: {term}"))
    for term in screening.exclude_mesh:
        if term.strip().lower() in mesh:
            hits.append((WEIGHT_EXCLUDE_MESH, f"exclude MeSH: {term}"))

    # strongest evidence first so the one line people read is the one that matters
    hits.sort(key=lambda h: (-abs(h[0]), h[1]))
    result.reasons = [r for _, r in hits]
    result.score = float(sum(w for w, _ in hits))
    if getattr(screening, "out_of_scope_animal", False) and is_animal_only(record):
        result.label = "out_of_scope"
        result.reasons.insert(0, "out of scope: animal-only study")
    if record.get("retracted"):
        result.reasons.insert(0, "retracted")
    if record.get("deleted"):
        result.reasons.insert(0, "withdrawn by the source")
    return result
