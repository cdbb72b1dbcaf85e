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

The test is applied after every draw, as in the paper's simulations; looking again after each draw is not
a fixed-sample test, so the guarantee is checked by simulation (bench/stopping.py: recall met the 95%
target in 97.6% of 540 dev runs). A record drawn and screened counts as screened work. When the sample
exhausts the urn, recall is known exactly and p = 0. The rule saves little work when a review has few
includes (K_tar is then small and the sample must cover much of the urn): that is the price of the
guarantee, and the benchmark prints it beside the heuristic's.

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

from typing import Any

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
    "SAMPLE_ORIGIN",
    "DecidedRecord",
    "StopTest",
    "automation_statement",
    "hypergeom_cdf",
    "irrelevant_in_a_row",
    "k_target",
    "recall_test",
    "review_stopping",
    "sample_order",
    "simulate_stop",
    "stopping_lines",
]

RULE = "hypergeometric random-sample test (Callaghan & Müller-Hansen 2020)"
DEFAULT_TARGET = 0.95
DEFAULT_CONFIDENCE = 0.95
# ranked excludes in a row after which the random phase starts, chosen on the dev sets only
# (bench/stopping.py, 18 sets x 3 simulation seeds x 10 sample seeds): 25 -> target met in 97.2% of runs,
# 7.6% work saved; 50 -> 96.3%, 9.6%; 100 -> 97.6%, 10.4%
DEFAULT_SWITCH_AFTER = 100
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
        raise ValueError(
            f"hypergeometric parameters out of range: population={population}, successes={successes}, draws={draws}"
        )
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


def recall_test(
    r_ranked: int,
    urn: int,
    sampled: int = 0,
    found_sampled: int = 0,
    *,
    target: float = DEFAULT_TARGET,
    confidence: float = DEFAULT_CONFIDENCE,
) -> StopTest:
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
    return StopTest(
        rule=RULE,
        target=float(target),
        confidence=float(confidence),
        r_ranked=int(r_ranked),
        urn=int(urn),
        sampled=int(sampled),
        found_sampled=int(found_sampled),
        k_tar=k_tar,
        p_value=float(p),
        stop=bool(stop),
        more_needed=int(more),
    )


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


def simulate_stop(
    order: Sequence[int] | np.ndarray,
    *,
    n_records: int | None = None,
    known_includes: int = 0,
    known_records: int = 0,
    target: float = DEFAULT_TARGET,
    confidence: float = DEFAULT_CONFIDENCE,
    switch_after: int = DEFAULT_SWITCH_AFTER,
    seed: int = 0,
) -> dict:
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
    return {
        "rule": RULE,
        "target": float(target),
        "confidence": float(confidence),
        "screened": screened,
        "recall": found_total / included,
        "work_saved": 1 - screened / total,
        "ranked": switch,
        "sampled": sampled,
        "found": found_total,
        "included": included,
        "p_value": test.p_value,
        "switch_after": int(switch_after),
    }


# decisions made on records drawn at random for the rule (`livingmeta screen next REVIEW --sample`) carry
# this origin; every other title/abstract decision belongs to the ranked phase
SAMPLE_ORIGIN = "sample"


@dataclass(frozen=True)
class DecidedRecord:
    """One record's title/abstract outcome for the rule: 1 include (or maybe), 0 exclude.

    ``sampled``: its first decision was made on a random draw (origin :data:`SAMPLE_ORIGIN`);
    ``decided_at``: when that first decision was made (any comparable value: datetimes, numbers).
    """

    label: int
    sampled: bool
    decided_at: Any


def review_stopping(
    decided: Sequence[DecidedRecord],
    pending_entered_at: Sequence[Any],
    *,
    target: float = DEFAULT_TARGET,
    confidence: float = DEFAULT_CONFIDENCE,
) -> dict:
    """The rule on a live review: ranked phase until the first random draw, then the test.

    Args:
        decided: every record with a title/abstract decision.
        pending_entered_at: when each record still waiting for title/abstract screening entered the queue.
        target, confidence: the rule's settings.
    Returns:
        ``{"rule", "target", "confidence", "phase": "ranked" | "sampling", "r_ranked", "urn", "sampled",
        "found_sampled", "p_value", "stop", "more_needed", "arrived_after_start", "ranked_after_start"}``.
        In the ranked phase the test is the one a sample starting now would face (urn = records waiting,
        nothing sampled yet), so ``more_needed`` is how many random records it would take if none were an
        include. Records that entered after the sample began are not in its urn (``arrived_after_start``:
        they need screening of their own); ranked decisions on urn records after it began
        (``ranked_after_start``) mean the sample is no longer a random one of what was left.
    """
    sample = [d for d in decided if d.sampled]
    if not sample:
        r_ranked = sum(d.label for d in decided)
        test = recall_test(r_ranked, len(pending_entered_at), target=target, confidence=confidence)
        return {**test.as_dict(), "phase": "ranked", "arrived_after_start": 0, "ranked_after_start": 0}
    start = min(d.decided_at for d in sample)
    ranked_before = [d for d in decided if not d.sampled and d.decided_at < start]
    ranked_after = [d for d in decided if not d.sampled and d.decided_at >= start]
    waiting_then = sum(1 for t in pending_entered_at if t <= start)
    r_ranked = sum(d.label for d in ranked_before)
    urn = len(sample) + waiting_then
    test = recall_test(r_ranked, urn, len(sample), sum(d.label for d in sample), target=target, confidence=confidence)
    return {
        **test.as_dict(),
        "phase": "sampling",
        "arrived_after_start": len(pending_entered_at) - waiting_then,
        "ranked_after_start": len(ranked_after),
    }


def stopping_lines(
    stop: dict, review: str = "REVIEW", since_include: int | None = None, switch_after: int = DEFAULT_SWITCH_AFTER
) -> list[str]:
    """Sentences for people about the rule (status, `screen next`), from :func:`review_stopping`."""
    rule = f"stopping rule: {stop['rule']}, recall >= {stop['target']:.0%} at {stop['confidence']:.0%} confidence"
    if stop["phase"] == "ranked" and not stop["urn"]:
        return [f"{rule}: every record has been screened ({stop['r_ranked']} include(s)), nothing is left to sample"]
    if stop["phase"] == "ranked":
        lines = [f"{rule}: not started (ranked screening so far, {stop['r_ranked']} include(s) found)"]
        if stop["urn"]:
            lines.append(
                f"a random sample of the {stop['urn']} waiting would need about {stop['more_needed']} "
                "record(s) screened, if none of them is an include, to show the target is met"
            )
            if since_include is not None and since_include >= switch_after:
                lines.append(
                    f"{since_include} ranked decisions since the last include: start the random sample "
                    f"with `livingmeta screen next {review} --sample`"
                )
        return lines
    result = (
        f"met (p = {stop['p_value']:.3f}): recall >= {stop['target']:.0%} with {stop['confidence']:.0%} "
        "confidence; stopping is justified"
        if stop["stop"]
        else f"not met yet (p = {stop['p_value']:.3f}): screen about {stop['more_needed']} more random record(s) "
        f"with `livingmeta screen next {review} --sample` (more if one of them is an include)"
    )
    lines = [
        f"{rule}: {stop['sampled']} random record(s) screened from the {stop['urn']} left after ranked "
        f"screening, {stop['found_sampled']} include(s) among them; {result}"
    ]
    if stop["arrived_after_start"]:
        lines.append(
            f"{stop['arrived_after_start']} record(s) arrived after the random sample began: the test does "
            "not cover them, screen them"
        )
    if stop["ranked_after_start"]:
        lines.append(
            f"{stop['ranked_after_start']} record(s) were screened in ranked order after the random sample "
            "began: the sample is no longer random, treat the result with caution"
        )
    return lines


def automation_statement(stop: dict, ranker: str) -> str:
    """One paragraph for the report: the automation tool, the stopping rule and its result (PRISMA 2020 item 8)."""
    rule = (
        "hypergeometric random-sample test (Callaghan & Müller-Hansen, Syst Rev 2020;9:273)"
        if stop["rule"] == RULE
        else stop["rule"]
    )
    order = (
        "ordered by the review's screening rules (no ranking model trained yet)"
        if ranker == "rules"
        else f"prioritised by a ranking model ({ranker})"
    )
    head = (
        f"Title/abstract screening was {order}. Stopping rule: {rule}, target recall {stop['target']:.0%} at "
        f"{stop['confidence']:.0%} confidence."
    )
    if stop["phase"] == "ranked" and not stop["urn"]:
        return head + f" Every record was screened ({stop['r_ranked']} include(s)); no random sample was needed."
    if stop["phase"] == "ranked":
        return (
            head + f" The random sample has not started; {stop['r_ranked']} include(s) were found by ranked screening."
        )
    verdict = (
        f"the target was met (p = {stop['p_value']:.3f})"
        if stop["stop"]
        else f"the target is not shown to be met yet (p = {stop['p_value']:.3f})"
    )
    return (
        head + f" After ranked screening found {stop['r_ranked']} include(s), {stop['sampled']} of the "
        f"{stop['urn']} remaining records were screened at random ({stop['found_sampled']} include(s)): {verdict}."
    )


def sample_order(record_ids: Sequence[str], key: str) -> list[str]:
    """The records waiting, in the random order the rule's sample draws them.

    The order is the SHA-256 of ``key`` + record id: fixed for a review (stopping and resuming a session
    continues the same sample; a record arriving later takes a random place), and unrelated to a record's
    content or rank, so each next record is a uniform random draw from those not yet screened.
    """
    import hashlib

    return sorted(record_ids, key=lambda rid: hashlib.sha256(f"{key}\x00{rid}".encode()).hexdigest())
