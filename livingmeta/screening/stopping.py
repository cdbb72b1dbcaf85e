"""When to stop screening: a stopping rule that tests a recall target at a stated confidence.

Method (Callaghan MW, Müller-Hansen F. Statistical stopping criteria for automated screening in
systematic reviews. Syst Rev 2020;9:273, doi:10.1186/s13643-020-01521-4):

1. Ranked phase: screen in the order the ranking model gives, finding ``r_ranked`` includes.
2. Random phase: the ``urn`` = every record not screened when the ranked phase ended. Draw records from
   it uniformly at random, without replacement, and screen them; after ``sampled`` draws ``found_sampled``
   were included.
3. Null hypothesis H0: recall is below the target τ, i.e. the review holds more than
   (r_ranked + found_sampled) / τ includes. The smallest number of includes the urn would then hold is
   ``K_tar = floor((r_ranked + found_sampled) / τ) - r_ranked + 1``; the larger the urn's true count,
   the fewer includes a sample is likely to miss, so K_tar is the case hardest to reject. Under it the
   number of includes in the sample is hypergeometric (population ``urn``, ``K_tar`` successes,
   ``sampled`` draws), and the p-value is P(X <= found_sampled).
4. Stop when p < 1 - confidence: recall is at least τ, with that confidence.

The test is applied after every draw (as in the paper's simulations); a record drawn and screened counts
as screened work. When the sample exhausts the urn, recall is known exactly and p = 0.

The ranked phase ends here when ``switch_after`` ranked decisions in a row were excludes (the ranker has
stopped finding includes, so further ranked screening buys little); that choice is ours and only affects
how much work the rule saves, not its guarantee, which comes from the random phase alone.

Also here: ASReview's data-driven heuristic ("stop after N irrelevant records in a row"), which promises
nothing, as the comparison the benchmark prints (bench/stopping.py).

Everything here is pure (no I/O). The hypergeometric distribution is computed in log space with
``math.lgamma`` so that ``livingmeta status`` does not import scipy; tests check it against
``scipy.stats.hypergeom`` and exact integer arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_SWITCH_AFTER",
    "DEFAULT_TARGET",
    "HEURISTIC_RUN",
    "RULE",
    "StopTest",
    "hypergeom_cdf",
    "irrelevant_in_a_row",
    "k_target",
    "recall_test",
    "simulate_stop",
]

RULE = "hypergeometric random-sample test (Callaghan & Müller-Hansen 2020)"
DEFAULT_TARGET = 0.95
DEFAULT_CONFIDENCE = 0.95
# ranked excludes in a row after which the random phase starts (chosen on the dev sets: bench/stopping.py)
DEFAULT_SWITCH_AFTER = 50
# ASReview's "N irrelevant in a row" heuristic, the comparison
HEURISTIC_RUN = 50


def _fraction(x: float, what: str) -> Fraction:
    if not (0 < float(x) < 1):
        raise ValueError(f"{what} must be between 0 and 1 (exclusive), got {x!r}")
    # the decimal the user wrote (0.95 -> 19/20), not the binary float's expansion
    return Fraction(repr(float(x))).limit_denominator(10**9)


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def hypergeom_cdf(k: int, population: int, successes: int, draws: int) -> float:
    """P(X <= k) for X hypergeometric: ``draws`` without replacement from ``population`` holding ``successes``.

    Same argument order as ``scipy.stats.hypergeom.cdf(k, M, n, N)``. Summed in log space over the
    shorter tail, relative error about 1e-12.
    """
    if min(population, successes, draws) < 0 or successes > population or draws > population:
        raise ValueError(f"hypergeometric parameters out of range: population={population}, "
                         f"successes={successes}, draws={draws}")
    lo = max(0, draws - (population - successes))
    hi = min(draws, successes)
    if k < lo:
        return 0.0
    if k >= hi:
        return 1.0
    log_total = _log_comb(population, draws)

    def log_pmf(i: int) -> float:
        return _log_comb(successes, i) + _log_comb(population - successes, draws - i) - log_total

    # sum whichever tail is shorter; 1 - upper tail when the upper one is
    if k - lo <= hi - k:
        terms = [log_pmf(i) for i in range(lo, k + 1)]
        top = max(terms)
        return min(1.0, math.exp(top) * math.fsum(math.exp(t - top) for t in terms))
    terms = [log_pmf(i) for i in range(k + 1, hi + 1)]
    top = max(terms)
    return max(0.0, 1.0 - math.exp(top) * math.fsum(math.exp(t - top) for t in terms))


def k_target(r_ranked: int, found_sampled: int, target: float) -> int:
    """The smallest number of includes in the urn for which recall would be below ``target`` (H0's edge).

    ``floor((r_ranked + found_sampled) / target) - r_ranked + 1``, in exact rational arithmetic (0.95 is
    19/20, so 19 includes give 20 + 1 - r_ranked, not a float rounding either way).
    """
    tau = _fraction(target, "target recall")
    return math.floor(Fraction(r_ranked + found_sampled) / tau) - r_ranked + 1


@dataclass(frozen=True)
class StopTest:
    """The stopping rule's result at one point (see the module docstring for the symbols).

    Attributes:
        rule: the rule's name (:data:`RULE`).
        target, confidence: recall target τ and confidence (stop when p < 1 - confidence).
        r_ranked: includes found before the random sample began (ranked phase, priors included).
        urn: records not screened when the random sample began.
        sampled, found_sampled: records drawn at random and screened so far, and includes among them.
        k_tar: the urn's include count at H0's edge.
        p_value: P(sample holds <= found_sampled includes | K_tar includes in the urn).
        stop: p_value < 1 - confidence.
        more_needed: further random records to screen before the rule says stop, if none of them is an
            include (0 when ``stop``); each include found raises it again.
    """

    rule: str
    target: float
    confidence: float
    r_ranked: int
    urn: int
    sampled: int
    found_sampled: int
    k_tar: int
    p_value: float
    stop: bool
    more_needed: int

    def as_dict(self) -> dict:
        return asdict(self)


def _p_value(r_ranked: int, urn: int, sampled: int, found_sampled: int, target: float) -> tuple[int, float]:
    k_tar = k_target(r_ranked, found_sampled, target)
    if k_tar > urn:  # the urn cannot hold that many: recall is at least the target whatever it holds
        return k_tar, 0.0
    return k_tar, hypergeom_cdf(found_sampled, urn, k_tar, sampled)


def recall_test(r_ranked: int, urn: int, sampled: int = 0, found_sampled: int = 0, *,
                target: float = DEFAULT_TARGET, confidence: float = DEFAULT_CONFIDENCE) -> StopTest:
    """Test "recall >= target" from a random sample of the records left after ranked screening.

    Args:
        r_ranked: includes found before the random sample began.
        urn: records not yet screened when the random sample began (the population sampled).
        sampled: records drawn uniformly at random from the urn (without replacement) and screened.
        found_sampled: includes among them.
        target: recall target τ (default 0.95).
        confidence: 1 - α (default 0.95).
    Returns:
        StopTest (p-value, stop, and how many more random records would be needed if all were excludes).
    Raises:
        ValueError: counts that cannot be (negative, more sampled than the urn, more includes than draws),
            or a target/confidence outside (0, 1).
    """
    for name, v in (("r_ranked", r_ranked), ("urn", urn), ("sampled", sampled), ("found_sampled", found_sampled)):
        if int(v) != v or v < 0:
            raise ValueError(f"{name} must be a whole number >= 0, got {v!r}")
    if sampled > urn:
        raise ValueError(f"sampled ({sampled}) cannot exceed the urn ({urn} records left when sampling began)")
    if found_sampled > sampled:
        raise ValueError(f"found_sampled ({found_sampled}) cannot exceed sampled ({sampled})")
    alpha = 1 - float(_fraction(confidence, "confidence"))
    k_tar, p = _p_value(r_ranked, urn, sampled, found_sampled, target)
    stop = p < alpha
    more = 0
    if not stop:
        # p falls as the sample grows without a new include (and is 0 once the urn is exhausted): bisect
        lo, hi = sampled, urn  # p(lo) >= alpha, p(hi) < alpha
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _p_value(r_ranked, urn, mid, found_sampled, target)[1] < alpha:
                hi = mid
            else:
                lo = mid
        more = hi - sampled
    return StopTest(rule=RULE, target=float(target), confidence=float(confidence), r_ranked=int(r_ranked),
                    urn=int(urn), sampled=int(sampled), found_sampled=int(found_sampled), k_tar=k_tar,
                    p_value=float(p), stop=bool(stop), more_needed=int(more))


def irrelevant_in_a_row(order: Sequence[int] | np.ndarray, run: int = HEURISTIC_RUN) -> int:
    """Where ASReview's heuristic stops: records screened when ``run`` excludes in a row were first seen.

    Args:
        order: labels (1/0) in the order screened.
        run: excludes in a row that stop screening.
    Returns:
        the number of records screened at the stop (``len(order)`` when the run never happens).
    """
    streak = 0
    for i, v in enumerate(np.asarray(order, dtype=np.int64).tolist()):
        streak = 0 if v else streak + 1
        if streak >= run:
            return i + 1
    return len(order)


def simulate_stop(order: Sequence[int] | np.ndarray, *, n_records: int | None = None, known_includes: int = 0,
                  known_records: int = 0, target: float = DEFAULT_TARGET, confidence: float = DEFAULT_CONFIDENCE,
                  switch_after: int = DEFAULT_SWITCH_AFTER, seed: int = 0) -> dict:
    """Apply the rule to a fully labelled ranked order: rank until ``switch_after`` excludes in a row, then sample.

    Args:
        order: labels (1/0) of the records in the order the ranker would show them (every record not in
            the prior knowledge, e.g. `SimulationResult.order`).
        known_records, known_includes: records (and includes among them) screened before ``order`` starts
            (a simulation's two priors: 2 and 1). They count as screened work and as found includes.
        target, confidence: the rule's settings.
        switch_after: ranked excludes in a row that end the ranked phase.
        seed: seed of ``numpy.random.default_rng`` for the random sample's order.
        n_records: total records (default ``known_records + len(order)``), for work saved.
    Returns:
        {"rule", "target", "confidence", "screened", "recall", "work_saved", "ranked", "sampled",
        "found", "included", "p_value"}: ``screened`` counts every record screened at the stop (priors,
        ranked and sampled), ``recall`` = found / included, ``work_saved`` = 1 - screened / n_records.
    """
    arr = np.asarray(order, dtype=np.int64)
    total = int(n_records if n_records is not None else known_records + arr.size)
    included = int(arr.sum()) + int(known_includes)
    if included == 0:
        raise ValueError("the order holds no include: recall is undefined")
    switch = irrelevant_in_a_row(arr, switch_after)
    r_ranked = int(arr[:switch].sum()) + int(known_includes)
    rest = arr[switch:]
    urn = int(rest.size)
    drawn = np.random.default_rng(seed).permutation(rest)
    includes_at = np.flatnonzero(drawn)  # 0-based draw positions of the includes in the sample
    sampled, found = 0, 0
    while True:
        test = recall_test(r_ranked, urn, sampled, found, target=target, confidence=confidence)
        if test.stop:
            break
        # the next test that could stop is `more_needed` draws on, unless an include comes first
        nxt = sampled + test.more_needed
        if found < includes_at.size and includes_at[found] < nxt:
            sampled = int(includes_at[found]) + 1
            found += 1
        else:
            sampled = nxt
    screened = int(known_records) + switch + sampled
    found_total = r_ranked + found
    return {"rule": RULE, "target": float(target), "confidence": float(confidence), "screened": screened,
            "recall": found_total / included, "work_saved": 1 - screened / total, "ranked": switch,
            "sampled": sampled, "found": found_total, "included": included, "p_value": test.p_value,
            "switch_after": int(switch_after)}
