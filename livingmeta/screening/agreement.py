"""Agreement between two screeners: Cohen's kappa.

Reference: Cohen J. A coefficient of agreement for nominal scales. Educ Psychol Meas 1960;20:37-46.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def cohen_kappa(pairs: Iterable[tuple[str, str]]) -> float | None:
    """Cohen's kappa for two raters' labels of the same items.

    Args:
        pairs: (first rater's label, second rater's label) per item, e.g. ("include", "exclude").
    Returns:
        kappa = (p_o - p_e) / (1 - p_e), with p_o the observed agreement and p_e the agreement expected
        from each rater's marginal label frequencies; None when there are no pairs or p_e = 1 (both raters
        used one and the same label for every item, where kappa is undefined).
    Reference: Cohen (1960), equation 1.
    """
    pairs = list(pairs)
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(1 for a, b in pairs if a == b) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[c] * second[c] for c in set(first) | set(second)) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)
