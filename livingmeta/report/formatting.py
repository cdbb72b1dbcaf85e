"""Numbers and prose for people: one place for how the report (and the CLI) writes a value.

3 significant digits for estimates, "lo to hi" for intervals (Cochrane style), "p < 0.001" in prose, and
"not estimable" with its reason where nothing can be computed (never "– (95% CI – to –)").
"""

from __future__ import annotations

import math
from typing import Any

COMMON_EFFECT_METHODS = frozenset({"FE", "EE", "CE", "MH", "PETO"})  # no tau², no prediction interval


def _finite(x: Any) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def fmt_value(x: Any) -> str:
    """An estimate or bound for people: 3 significant digits (0.0369, 0.677, 2.91, 33.5, 255); "–" when unknown.

    Significant digits rather than fixed decimals keep small proportions and large ratios equally precise;
    values of 1000 or more are shown whole rather than in scientific notation.
    """
    v = _finite(x)
    if v is None:
        return "–"
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) < 0.001:
        return f"{v:.2e}"
    v = float(f"{v:.3g}")  # round first: 0.9996 must become 1.00, not 1.000
    decimals = max(0, 2 - math.floor(math.log10(abs(v))))
    return f"{v:.{decimals}f}"


def fmt_interval(lo: Any, hi: Any) -> str:
    """ "lo to hi" (the Cochrane style avoids the ambiguity of a hyphen next to a minus sign)."""
    if _finite(lo) is None and _finite(hi) is None:
        return "–"
    return f"{fmt_value(lo)} to {fmt_value(hi)}"


def fmt_p(p: Any) -> str:
    """A p-value: "<0.001" below one in a thousand, else 3 decimals."""
    v = _finite(p)
    if v is None:
        return "–"
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def fmt_count(n: Any) -> str:
    """A count (participants may be fractional after continuity corrections: shown rounded)."""
    v = _finite(n)
    return "–" if v is None else f"{round(v):,}"


def fmt_percent(x: Any) -> str:
    v = _finite(x)
    return "–" if v is None else f"{v:.1f}%"


def fmt_tau2(x: Any) -> str:
    """tau² with 3 significant digits (it spans orders of magnitude across measures)."""
    return fmt_value(x)


def fmt_p_text(p: Any) -> str:
    """A p-value in prose: "p < 0.001" or "p = 0.023" (None: "p not available")."""
    v = _finite(p)
    if v is None:
        return "p not available"
    return "p < 0.001" if v < 0.001 else f"p = {v:.3f}"


def fmt_effect(est: Any, lo: Any, hi: Any, reason: str = "") -> str:
    """ "1.23 (0.95 to 1.60)"; "not estimable (reason)" when there is no estimate."""
    if _finite(est) is None:
        return "not estimable" + (f" ({reason})" if reason else "")
    if _finite(lo) is None and _finite(hi) is None:
        return fmt_value(est)
    return f"{fmt_value(est)} ({fmt_interval(lo, hi)})"


def join_prose(parts: list[str]) -> str:
    """Sentences joined with single spaces and full stops, never ".." or ". ." (text assembled from pieces)."""
    out = []
    for p in parts:
        p = " ".join(str(p).split()).strip()
        if not p:
            continue
        out.append(p if p.endswith((".", "!", "?")) else p + ".")
    return " ".join(out).replace("..", ".")


def display_numbers(meta: dict[str, Any]) -> dict[str, Any]:
    """The people-facing numbers of a MetaResult dict: back-transformed where the engine did so."""

    def pick(k):
        bt = meta.get(f"{k}_bt")
        return bt if _finite(bt) is not None else meta.get(k)

    return {k: pick(k) for k in ("estimate", "ci_lower", "ci_upper", "pi_lower", "pi_upper")}


def tsa_assumption_lines(tsa: dict, settings: dict | None, kind: str = "") -> list[str]:
    """The assumptions a TSA chart rests on, as short lines (the chart's box and the report's text)."""
    st = dict(settings or {})
    alpha, beta = tsa.get("alpha", st.get("alpha", 0.05)), tsa.get("beta", st.get("beta", 0.20))
    lines = [
        f"Two-sided α = {float(alpha):g}, β = {float(beta):g} (power {100 * (1 - float(beta)):.0f}%); "
        "Lan–DeMets O'Brien–Fleming α- and β-spending"
    ]
    eff, src = st.get("anticipated_effect"), str(st.get("effect_source") or "").strip()
    if kind == "continuous" or st.get("sd") is not None:
        lines.append(
            f"Assumed mean difference {fmt_value(eff)}, SD {fmt_value(st.get('sd'))}"
            + (f" (source: {src})" if src else " (source not recorded in review.toml)")
        )
    else:
        word = "increase" if st.get("effect_direction") == "increase" else "reduction"
        rel = f"{100 * float(eff):.0f}%" if _finite(eff) is not None else "–"
        cer = _finite(st.get("control_event_rate"))
        lines.append(
            f"Control event proportion {'–' if cer is None else f'{cer:g}'}; assumed relative risk "
            f"{word} {rel}" + (f" (source: {src})" if src else " (source not recorded in review.toml)")
        )
    d2 = _finite(tsa.get("d2"))
    if str(st.get("heterogeneity_correction", "diversity")) == "none":
        lines.append("No heterogeneity correction")
    else:
        lines.append(f"Heterogeneity correction: diversity D² = {100 * (d2 or 0.0):.0f}%")
    lines.append(
        f"RIS {fmt_count(tsa.get('ris_unadjusted'))} before and {fmt_count(tsa.get('ris'))} after the "
        f"correction; accrued information {fmt_count(_accrued(tsa))} participants "
        f"({fmt_percent(100 * _accrued(tsa) / float(tsa['ris'])) if _finite(tsa.get('ris')) else '–'} of the RIS)"
    )
    return lines


def _accrued(tsa: dict) -> float:
    infos = [_finite(p.get("information")) for p in tsa.get("points") or []]
    infos = [v for v in infos if v is not None]
    return max(infos) if infos else 0.0
