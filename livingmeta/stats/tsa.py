"""Trial sequential analysis (TSA): required information size and group-sequential monitoring boundaries.

A living meta-analysis looks at accumulating data again and again; TSA treats each look as an interim
analysis of a group-sequential design so that repeated testing does not inflate the type I error.

Symbols (used throughout this module):
    t     information fraction = accrued participants / required information size (RIS)
    z     cumulative Z statistic of the meta-analysis at a look (estimate / se, analysis scale)
    b_k   two-sided efficacy boundary at look k (reject when |z| >= b_k)
    a_k   futility boundary at look k, in the direction of the anticipated effect
    D2    diversity, (v_R - v_F) / v_R (Wetterslev 2009)

Spending functions (Lan & DeMets 1983), O'Brien–Fleming type. The one-sided function spending a level x is
    x(t) = 2 - 2 Phi(z_{1-x/2} / sqrt t);
two-sided symmetric boundaries spend alpha/2 on each side with it (total alpha(t) = 4 - 4 Phi(z_{1-alpha/4} / sqrt t)),
the convention of DeMets & Lan (1994) and R's ldbounds/gsDesign that gives the classic table (K = 5 equally
spaced looks, alpha = 0.05: 4.877, 3.357, 2.680, 2.290, 2.031;
rpact 3.3.4 asOF agrees to 1e-5); futility spends the one-sided beta with it.
Boundaries are found by recursive numerical integration of the density of the score process
S_k = z_k sqrt(t_k), whose increments are independent N(theta * dt, dt) (Armitage, McPherson & Rowe
1969; Jennison & Turnbull 2000, ch. 19). Under the alternative the drift is theta = z_{1-alpha/2} + z_{1-beta},
the drift a fixed design with the RIS has power 1 - beta at.

References:
    Wetterslev J, Thorlund K, Brok J, Gluud C (2008) J Clin Epidemiol 61:64-75 (TSA, information size).
    Wetterslev J, Thorlund K, Brok J, Gluud C (2009) BMC Med Res Methodol 9:86 (diversity D2).
    Thorlund K et al. (2017) User manual for Trial Sequential Analysis (TSA), Copenhagen Trial Unit.
    Lan KKG, DeMets DL (1983) Biometrika 70:659-663.  Jennison C, Turnbull BW (2000) Group Sequential
    Methods with Applications to Clinical Trials, ch. 7 and 19.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Sequence

import numpy as np
from scipy import optimize, stats

GRID_POINTS = 801  # Simpson grid per look; boundaries agree with published tables to < 1e-3 (tests)
MAX_BOUNDARY = 40.0  # looks with (numerically) nothing to spend get this boundary: no z ever reaches it


class TsaInputError(ValueError):
    """TSA settings that cannot give an information size; the message says which setting to fix."""


def required_information_size_binary(
    control_event_rate: float,
    relative_change: float,
    alpha: float = 0.05,
    beta: float = 0.20,
    direction: str = "reduction",
) -> float:
    """Participants (both arms) a fixed trial needs to detect a relative risk change.

    Args:
        control_event_rate: anticipated proportion with the event in the control arm (0-1).
        relative_change: anticipated relative risk reduction (or increase), e.g. 0.2 for 20%.
        alpha: two-sided type I error.  beta: type II error (power 1 - beta).
        direction: "reduction" (experimental rate = pc (1 - RRR)) or "increase" (pc (1 + RRI)).
    Returns:
        RIS = 4 (z_{1-alpha/2} + z_{1-beta})^2 p(1-p) / delta^2, p the mean of both rates, delta their
        difference (Wetterslev 2008, eq. 1).
    Raises:
        TsaInputError: rates outside (0, 1) or no effect.
    """
    pc = float(control_event_rate)
    rr = abs(float(relative_change))
    if not 0 < pc < 1:
        raise TsaInputError(f"control_event_rate {pc:g} must lie between 0 and 1")
    if rr == 0:
        raise TsaInputError("anticipated_effect is 0: there is no effect to size a trial for")
    if direction not in ("reduction", "increase"):
        raise TsaInputError(f"effect_direction {direction!r} must be 'reduction' or 'increase'")
    pe = pc * (1 - rr) if direction == "reduction" else pc * (1 + rr)
    if not 0 < pe < 1:
        raise TsaInputError(
            f"control_event_rate {pc:g} with a relative {direction} of {rr:g} gives an experimental "
            f"event rate of {pe:g}, outside (0, 1); check anticipated_effect"
        )
    p = (pc + pe) / 2
    z = stats.norm.isf(alpha / 2) + stats.norm.isf(beta)
    return 4 * z * z * p * (1 - p) / (pc - pe) ** 2


def required_information_size_continuous(
    mean_difference: float, sd: float, alpha: float = 0.05, beta: float = 0.20
) -> float:
    """Participants (both arms) a fixed trial needs to detect a mean difference.

    Args:
        mean_difference: anticipated difference in means (its sign does not matter).
        sd: anticipated standard deviation in each arm.
    Returns:
        RIS = 4 (z_{1-alpha/2} + z_{1-beta})^2 sd^2 / md^2 (Wetterslev 2008).
    """
    md, sd = abs(float(mean_difference)), float(sd)
    if md == 0 or sd <= 0:
        raise TsaInputError("a continuous TSA needs anticipated_effect (mean difference) != 0 and sd > 0")
    z = stats.norm.isf(alpha / 2) + stats.norm.isf(beta)
    return 4 * z * z * sd * sd / (md * md)


def diversity(var_random: float | None, var_fixed: float | None) -> float:
    """D2 = (v_R - v_F) / v_R from the variances of the random- and fixed-effect pooled estimates.

    Returns 0 when either variance is missing or the random-effects variance is not larger
    (Wetterslev 2009, eq. 4).
    """
    if var_random is None or var_fixed is None or not (var_random > 0) or var_random <= var_fixed:
        return 0.0
    return float((var_random - var_fixed) / var_random)


def obf_spent(t: float | np.ndarray, level: float) -> np.ndarray:
    """One-sided Lan–DeMets O'Brien–Fleming-type spending of `level`: 2 - 2 Phi(z_{1-level/2} / sqrt t), t capped at 1."""
    t = np.minimum(np.asarray(t, float), 1.0)
    return np.where(t > 0, 2 * stats.norm.sf(stats.norm.isf(level / 2) / np.sqrt(np.maximum(t, 1e-300))), 0.0)


def alpha_spent(t: float | np.ndarray, alpha: float) -> np.ndarray:
    """Two-sided alpha spent by information fraction t: alpha/2 on each side, O'Brien–Fleming type."""
    return 2 * obf_spent(t, alpha / 2)


def _simpson_weights(n: int, h: float) -> np.ndarray:
    w = np.ones(n)
    w[1:-1:2] = 4
    w[2:-1:2] = 2
    return w * h / 3


@dataclass
class _Stage:
    grid: np.ndarray  # values of S on the continuation region
    dens: np.ndarray  # sub-density of S there (not yet stopped)
    t: float


def _next_density(
    prev: _Stage | None, t: float, lo: float, hi: float, drift: float, grid_points: int = GRID_POINTS
) -> _Stage:
    """Sub-density of S_k on (lo, hi) (Z scale bounds) given no stop before."""
    s_lo, s_hi = lo * math.sqrt(t), hi * math.sqrt(t)
    grid = np.linspace(s_lo, s_hi, grid_points)
    if prev is None:
        dens = stats.norm.pdf(grid, loc=drift * t, scale=math.sqrt(t))
    else:
        dt_ = t - prev.t
        w = _simpson_weights(len(prev.grid), prev.grid[1] - prev.grid[0]) * prev.dens
        x = (grid[:, None] - prev.grid[None, :] - drift * dt_) / math.sqrt(dt_)
        kern = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi * dt_)  # the normal density, without scipy's overhead
        dens = kern @ w
    return _Stage(grid, dens, t)


def _exit_prob(prev: _Stage | None, t: float, bound: float, drift: float, side: str) -> float:
    """P(no stop before, Z_k beyond `bound` on `side`) ('above' or 'below')."""
    s = bound * math.sqrt(t)
    if prev is None:
        mu, sd = drift * t, math.sqrt(t)
        return float(stats.norm.sf(s, mu, sd) if side == "above" else stats.norm.cdf(s, mu, sd))
    dt_ = t - prev.t
    w = _simpson_weights(len(prev.grid), prev.grid[1] - prev.grid[0]) * prev.dens
    x = (s - prev.grid - drift * dt_) / math.sqrt(dt_)
    p = stats.norm.sf(x) if side == "above" else stats.norm.cdf(x)
    return float(np.dot(w, p))


def efficacy_boundaries(
    fractions: Sequence[float], alpha: float = 0.05, *, grid_points: int = GRID_POINTS
) -> list[float]:
    """Two-sided Lan–DeMets O'Brien–Fleming boundaries at the given information fractions.

    Args:
        fractions: increasing information fractions t_k > 0 (values above 1 are treated as 1: all alpha
            is spent at the RIS; later looks keep the boundary reached there).
        alpha: two-sided type I error.
    Returns:
        b_k such that P_0(|Z_j| >= b_j for the first time at look k) = alpha(t_k) - alpha(t_{k-1}).
        Reference values: K=5 equally spaced, alpha=0.05: 4.877, 3.357, 2.680, 2.290, 2.031
        (DeMets & Lan 1994, Stat Med 13:1341; R ldbounds/gsDesign).
    """
    ts = _check_fractions(fractions)
    bounds: list[float] = []
    prev: _Stage | None = None
    spent_before = 0.0
    last_t = 0.0
    for t in ts:
        tc = min(t, 1.0)
        if tc <= last_t + 1e-12:
            bounds.append(bounds[-1] if bounds else MAX_BOUNDARY)
            continue
        inc = float(alpha_spent(tc, alpha)) - spent_before
        if prev is None:
            b = float(stats.norm.isf(inc / 2)) if inc > 0 else MAX_BOUNDARY
        elif inc < 1e-9:
            # earlier looks spent (numerically) nothing, so they barely constrain this one: the single-look
            # boundary for everything spent so far is exact to far below the integration error
            b = (
                float(stats.norm.isf(float(alpha_spent(tc, alpha)) / 2))
                if float(alpha_spent(tc, alpha)) > 0
                else MAX_BOUNDARY
            )
        else:

            def excess(bb: float) -> float:
                return 2 * _exit_prob(prev, tc, bb, 0.0, "above") - inc  # noqa: B023 - used in this iteration only

            hi = 1.0
            while excess(hi) > 0 and hi < MAX_BOUNDARY:
                hi *= 1.5
            b = (
                float(optimize.brentq(excess, 0.0, min(hi, MAX_BOUNDARY), xtol=1e-9))
                if excess(0.0) > 0 > excess(min(hi, MAX_BOUNDARY))
                else min(hi, MAX_BOUNDARY)
            )
        b = min(b, MAX_BOUNDARY)
        bounds.append(b)
        spent_before += inc
        prev = _next_density(prev, tc, -b, b, 0.0, grid_points)
        last_t = tc
    return bounds


def futility_boundaries(
    fractions: Sequence[float],
    efficacy: Sequence[float],
    alpha: float = 0.05,
    beta: float = 0.20,
    *,
    grid_points: int = GRID_POINTS,
) -> list[float | None]:
    """Beta-spending (O'Brien–Fleming type) futility boundaries, on the oriented Z scale.

    Under the anticipated effect (drift theta = z_{1-alpha/2} + z_{1-beta}) the probability of stopping
    for futility first at look k is beta(t_k) - beta(t_{k-1}); the continuation region is (a_j, b_j)
    (non-binding for the efficacy boundaries, which are computed without futility). A futility boundary
    is never above the efficacy boundary: where they would cross, they meet (Thorlund 2017, ch. 3).

    Returns:
        a_k, or None where (numerically) nothing is spent yet (the futility region would be empty).
    """
    ts = _check_fractions(fractions)
    theta = float(stats.norm.isf(alpha / 2) + stats.norm.isf(beta))
    out: list[float | None] = []
    prev: _Stage | None = None
    spent_before = 0.0
    last_t = 0.0
    for t, b in zip(ts, efficacy):
        tc = min(t, 1.0)
        if tc <= last_t + 1e-12:
            out.append(out[-1] if out else None)
            continue
        inc = float(obf_spent(tc, beta)) - spent_before
        a: float | None
        if inc < 1e-10:
            a = None
        else:

            def excess(aa: float) -> float:
                return _exit_prob(prev, tc, aa, theta, "below") - inc  # noqa: B023 - used in this iteration only

            lo = -MAX_BOUNDARY
            a = float(optimize.brentq(excess, lo, b, xtol=1e-9)) if excess(b) > 0 else b
            a = min(a, b)
        spent_before += inc if a is not None else 0.0
        lo_region = a if a is not None else -b
        prev = _next_density(prev, tc, lo_region, b, theta, grid_points)
        out.append(a)
        last_t = tc
    return out


CURVE_POINTS = 60  # fractions of the RIS a drawn boundary curve is evaluated at (besides every look)
CURVE_GRID_POINTS = 241  # Simpson grid per look for a drawn curve: boundaries within 1e-3 of the 801 grid


def boundary_curve(
    look_fractions: Sequence[float], alpha: float = 0.05, beta: float | None = 0.20, *, points: int = CURVE_POINTS
) -> list[dict]:
    """The monitoring (and futility) boundary as a curve: evaluated on a dense grid of information fractions
    and at every look, for drawing.

    The grid is `points` equally spaced fractions in (0, 1] plus every look up to the RIS; the boundary at
    each is the two-sided Lan–DeMets O'Brien–Fleming boundary of a design that looks at every one of them
    (alpha(t) = 4 - 4 Phi(z_{1-alpha/4} / sqrt t), spent by the same recursion as `efficacy_boundaries`), which
    approaches the continuous-monitoring boundary as the grid gets denser. Joining a few looks with straight
    lines instead overstates the boundary between them (at half the RIS, |Z| ~ 9 instead of ~ 2.8).

    Args:
        look_fractions: information fractions of the actual looks (any above 1 are drawn at 1).
        alpha, beta: two-sided type I error and type II error; beta None: no futility curve.
        points: grid fractions besides the looks (at least 50 for a smooth curve).
    Returns:
        [{"fraction", "upper", "futility" (oriented like z by the caller's sign; None where nothing is spent
        yet), "look": True for a look's fraction}], in increasing fraction.
    """
    looks = sorted({round(min(float(t), 1.0), 12) for t in look_fractions if float(t) > 0})
    grid = sorted(set(looks) | {round(i / points, 12) for i in range(1, points + 1)})
    upper = efficacy_boundaries(grid, alpha, grid_points=CURVE_GRID_POINTS)
    fut = (
        futility_boundaries(grid, upper, alpha, beta, grid_points=CURVE_GRID_POINTS)
        if beta is not None
        else [None] * len(grid)
    )
    look_set = set(looks)
    return [{"fraction": t, "upper": b, "futility": f, "look": t in look_set} for t, b, f in zip(grid, upper, fut)]


def _check_fractions(fractions: Sequence[float]) -> list[float]:
    ts = [float(t) for t in fractions]
    if not ts:
        return ts
    if any(not (t > 0) or not math.isfinite(t) for t in ts):
        raise TsaInputError(f"information fractions must be positive numbers, got {ts}")
    if any(b < a for a, b in zip(ts, ts[1:])):
        raise TsaInputError(f"information fractions must not decrease, got {ts}")
    return ts


def trial_sequential_analysis(
    points: Sequence[dict],
    ris: float,
    *,
    alpha: float = 0.05,
    beta: float = 0.20,
    d2: float = 0.0,
    direction: int = 1,
    ris_unadjusted: float | None = None,
) -> dict:
    """Monitor a cumulative meta-analysis against diversity-adjusted boundaries.

    Args:
        points: one per look in order, {"label": str, "information": participants so far, "z": z or None}.
            Looks with no information gain over the previous look share its boundary.
        ris: required information size already adjusted for diversity (participants).
        alpha, beta: two-sided type I and type II error.
        d2: the diversity used for the adjustment (reported only).
        direction: +1 when the anticipated effect makes z positive, -1 when negative (futility is
            reported on the same signed scale as z).
        ris_unadjusted: the RIS before the diversity adjustment (reported only).
    Returns:
        {"ris", "ris_unadjusted", "d2", "alpha", "beta", "direction", "points": [{label, information, fraction,
        z, upper, lower, futility}], "curve": [{fraction, upper, futility}] (the looks plus the RIS),
        "status"}: status is boundary_crossed (|z| >= boundary at the latest look), futility (z inside the
        futility region at the latest look), ris_reached (information >= RIS, neither), or inconclusive.
    """
    if not (ris > 0) or not math.isfinite(ris):
        raise TsaInputError(f"required information size {ris!r} must be a positive number")
    sign = 1 if direction >= 0 else -1
    pts = [p for p in points if p.get("information") is not None and p["information"] > 0]
    fractions = [p["information"] / ris for p in pts]
    fr_sorted = np.maximum.accumulate(np.asarray(fractions, float)).tolist() if fractions else []
    looks = list(fr_sorted)
    if not looks or looks[-1] < 1.0:
        looks.append(1.0)
    upper = efficacy_boundaries(looks, alpha)
    fut = futility_boundaries(looks, upper, alpha, beta)
    out_points = []
    for i, p in enumerate(pts):
        f = fut[i]
        out_points.append(
            {
                "label": p.get("label"),
                "information": float(p["information"]),
                "fraction": float(fractions[i]),
                "z": None if p.get("z") is None else float(p["z"]),
                "upper": upper[i],
                "lower": -upper[i],
                "futility": None if f is None else sign * f,
            }
        )
    curve = [
        {"fraction": t, "upper": b, "futility": None if f is None else sign * f} for t, b, f in zip(looks, upper, fut)
    ]
    status = "inconclusive"
    if out_points:
        last = out_points[-1]
        z = last["z"]
        if z is not None and abs(z) >= last["upper"]:
            status = "boundary_crossed"
        elif z is not None and last["futility"] is not None and sign * z <= sign * last["futility"]:
            status = "futility"
        elif last["fraction"] >= 1.0:
            status = "ris_reached"
    return {
        "ris": float(ris),
        "ris_unadjusted": None if ris_unadjusted is None else float(ris_unadjusted),
        "d2": float(d2),
        "alpha": alpha,
        "beta": beta,
        "direction": sign,
        "points": out_points,
        "curve": curve,
        "status": status,
    }
