"""The report's figures, drawn with matplotlib's object API on the Agg canvas (no pyplot, no GUI state).

Every figure is returned as inline SVG (text as real <text> elements, so it can be searched, selected and read
by a screen reader; the figure's title as <title> and aria-label; ids made unique per figure, comments and the
XML prolog removed) and as PNG bytes. Text that comes from a source (study labels, titles, exclusion reasons)
is drawn with mathtext off, so a `$` in a label is a dollar sign, not a formula.

This module draws figures only; `livingmeta.report.build` decides which figures a report has.

References: forest plots after Lewis S, Clarke M. BMJ 2001;322:1479 (box area proportional to weight,
diamond for the pooled estimate, prediction interval after Riley RD et al. BMJ 2011;342:d549); funnel plots
after Sterne JAC et al. BMJ 2011;343:d4002 (shown only with at least 10 studies); TSA charts after
Wetterslev J et al. BMC Med Res Methodol 2017;17:39; the flow diagram after PRISMA 2020 (Page MJ et al.
BMJ 2021;372:n71).
"""

from __future__ import annotations

import html
import io
import math
import re
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)  # never a GUI backend in a worker

from matplotlib import rc_context  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyBboxPatch, Polygon  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402

from livingmeta.report.formatting import (
    COMMON_EFFECT_METHODS,
    display_numbers,
    fmt_count,
    fmt_interval,
    fmt_p_text,  # noqa: E402
    fmt_tau2,
    fmt_value,
    tsa_assumption_lines,
)
from livingmeta.report.scales import (
    PROPORTION_MEASURES,
    TRANSFORM_NAMES,
    measure_name,
    null_value,  # noqa: E402
    study_display,
    study_transform,
)
from livingmeta.stats.tsa import boundary_curve  # noqa: E402

FUNNEL_MIN_K = 10
TSA_Y_CAP = 8.0  # |Z| shown on a TSA chart before a boundary is marked "off scale" at the edge
_RC = {
    "svg.fonttype": "none",
    "path.simplify": False,
    "svg.hashsalt": "livingmeta",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_COLOR = "#1f4e79"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _printable(text: Any) -> str:
    """Source text without control characters (no glyph in any font, and not allowed in SVG/XML text)."""
    return _CONTROL.sub("", str(text))


_ACTIVE = re.compile(r"<script|<foreignObject|<[^>]*\son\w+\s*=|<[^>]*(href|src)\s*=\s*[\"']\s*javascript:", re.I)


def _inline_svg(raw: str, prefix: str, title: str = "") -> str:
    """Make matplotlib's SVG safe to inline several times in one HTML page, titled for screen readers."""
    s = re.sub(r"<\?xml[^>]*\?>", "", raw)
    s = re.sub(r"<!DOCTYPE[^>]*>", "", s)
    s = re.sub(r"<!--.*?-->", "", s, flags=re.S)
    s = re.sub(r"<metadata>.*?</metadata>", "", s, flags=re.S)
    s = (
        s.replace(' id="', f' id="{prefix}-')
        .replace('href="#', f'href="#{prefix}-')
        .replace("url(#", f"url(#{prefix}-")
    )
    label = html.escape(title, quote=True)

    def root(m: re.Match) -> str:
        tag = m.group(0)
        width = re.search(r'width="([\d.]+)pt"', tag)
        tag = re.sub(r'\s(width|height)="[^"]*"', "", tag)
        style = f' style="width:100%;max-width:{width.group(1)}pt;height:auto"' if width else ""
        aria = f' aria-label="{label}"' if title else ""
        return (
            tag[:-1] + f'{style} role="img"{aria}>' + (f'<title id="{prefix}-title">{label}</title>' if title else "")
        )

    # checked before our own (escaped) title goes in: matplotlib escapes text, so markup can only be its own
    if _ACTIVE.search(s):
        raise ValueError(f"figure {prefix}: SVG output contains active content; not embedding it")
    s = re.sub(r"<svg\b[^>]*>", root, s, count=1)
    return s.strip()


def figure_files(fig: Figure, prefix: str, title: str = "") -> tuple[str, bytes]:
    """Render a figure to (inline SVG text with real text elements, PNG bytes)."""
    with rc_context(_RC):
        svg_buf, png_buf = io.StringIO(), io.BytesIO()
        fig.savefig(svg_buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
        fig.savefig(png_buf, format="png", dpi=150, metadata={"Software": None}, bbox_inches="tight")
    return _inline_svg(svg_buf.getvalue(), prefix, title), png_buf.getvalue()


def _xlimits(values: list[float], log: bool, null: float | None) -> tuple[float, float]:
    vals = [v for v in values if v is not None and (v > 0 if log else True)]
    if null is not None:
        vals.append(null)
    if not vals:
        return (0.1, 10) if log else (-1, 1)
    lo, hi = min(vals), max(vals)
    if log:
        lo, hi = max(lo, 1e-4), min(hi, 1e4)
        if hi <= lo:
            lo, hi = lo / 2, hi * 2
        pad = (math.log10(hi) - math.log10(lo)) * 0.05
        return 10 ** (math.log10(lo) - pad), 10 ** (math.log10(hi) + pad)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    pad = (hi - lo) * 0.05
    return lo - pad, hi + pad


_LOG_TICKS = [m * 10.0**e for e in range(-4, 5) for m in (1, 2, 5)]


def _log_axis(ax) -> None:
    """A log axis labelled 0.2, 0.5, 1, 2, 5 rather than powers of ten (ratios are read that way)."""
    ax.set_xscale("log")
    lo, hi = ax.get_xlim()
    ticks = [t for t in _LOG_TICKS if lo <= t <= hi]
    if len(ticks) > 9:
        ticks = [t for t in ticks if round(t / 10 ** math.floor(math.log10(t) + 1e-9)) == 1]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())


def _row_axes(n_rows: int, title: str) -> tuple[Figure, Any]:
    fig = Figure(figsize=(10, 1.3 + 0.27 * n_rows))
    ax = fig.add_axes((0.28, 0.9 / (1.3 + 0.27 * n_rows), 0.44, 1 - 1.3 / (1.3 + 0.27 * n_rows)))
    ax.set_title(_printable(title), loc="left", fontsize=10, fontweight="bold", parse_math=False, x=-0.62)
    ax.set_ylim(-0.8, n_rows - 0.2)
    ax.set_yticks([])
    for side in ("left", "top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def forest_values(studies: list[dict], meta: dict, measure: str, ratio: bool) -> tuple[list, dict, bool]:
    """The numbers a forest plot shows, all on one scale.

    Args:
        studies, meta, measure, ratio: as `forest_plot`.
    Returns:
        (per-study (effect, lower, upper) or None when not estimable, pooled {estimate, ci_lower, ci_upper,
        pi_lower, pi_upper}, True when shown on the display scale: back-transformed wherever the measure has a
        back-transform, PFT per study with each study's own n and pooled with the harmonic mean, Miller 1978).
        Only a PFT result stored without per-study back-transforms (engine < 1.1.0) stays on the analysis scale.
    """
    shown = [study_display(s, measure, ratio) for s in studies]
    estimable = [i for i, s in enumerate(studies) if _finite(s.get("yi")) is not None]
    on_display = study_transform(measure, ratio) is not None or (
        bool(estimable) and all(shown[i] is not None for i in estimable)
    )
    if on_display:
        return shown, display_numbers(meta), True
    raw = [
        tuple(_finite(s.get(k)) for k in ("yi", "ci_lower", "ci_upper")) if i in estimable else None
        for i, s in enumerate(studies)
    ]
    return raw, {k: meta.get(k) for k in ("estimate", "ci_lower", "ci_upper", "pi_lower", "pi_upper")}, False


def _proportion_limits(xs: list[float]) -> tuple[float, float]:
    """0 to 1 (a proportion's whole range, so plots of different reviews compare), widened only for a PR
    interval that crosses the bounds."""
    vals = [v for v in xs if v is not None]
    return min([0.0] + vals) - 0.02, max([1.0] + vals) + 0.02


CLIP_DECADES = 1.0  # a ratio axis reaches this many decades beyond the point estimates, pooled CI and PI


def is_common_effect(meta: dict) -> bool:
    """True for a common-effect (fixed-effect) model: no tau², no prediction interval."""
    return str(meta.get("method", "")).upper() in COMMON_EFFECT_METHODS


def _clip_limits(core: list[float], log: bool, null: float | None) -> tuple[float, float]:
    """Axis limits from the point estimates, the pooled CI/PI and the null; wider study CIs are clipped
    (drawn to the edge with an arrow) instead of stretching the axis to 1000."""
    vals = [v for v in core if v is not None and (v > 0 if log else True)]
    if null is not None:
        vals.append(null)
    if not vals:
        return (0.1, 10) if log else (-1, 1)
    lo, hi = min(vals), max(vals)
    if log:
        llo, lhi = math.log10(max(lo, 1e-4)), math.log10(min(hi, 1e4))
        span = max(lhi - llo, 0.3)
        pad = min(CLIP_DECADES, max(0.15, span * 0.5))
        return 10 ** (llo - pad), 10 ** (lhi + pad)
    span = (hi - lo) or max(abs(hi), 1.0)
    return lo - span * 0.5, hi + span * 0.5


def _arm_text(arm: dict | None, kind: str) -> str:
    if not arm:
        return "–"
    if kind == "continuous":
        return f"{fmt_value(arm.get('mean'))} ({fmt_value(arm.get('sd'))}), {fmt_count(arm.get('n'))}"
    return f"{fmt_count(arm.get('events'))}/{fmt_count(arm.get('total'))}"


def heterogeneity_text(meta: dict) -> str:
    """RevMan's heterogeneity line: "Heterogeneity: Tau² = 0.04; Chi² = 9.1, df = 4 (p = 0.06); I² = 56%".

    tau² only for random-effects models (a common-effect model assumes it is 0, so printing "tau² = 0" beside
    a large I² would contradict itself); empty with fewer than two studies.
    """
    q, df, qp, i2 = (meta.get(k) for k in ("q", "q_df", "q_p", "i2"))
    if _finite(q) is None or df is None:
        return ""
    parts = []
    if not is_common_effect(meta) and _finite(meta.get("tau2")) is not None:
        parts.append(f"Tau² = {fmt_tau2(meta.get('tau2'))}")
    parts.append(f"Chi² = {float(q):.2f}, df = {int(df)} ({fmt_p_text(qp)})")
    if _finite(i2) is not None:
        # hook: an engine that gives I²'s confidence interval (Q-profile) as i2_ci_lower/i2_ci_upper gets it shown
        lo, hi = _finite(meta.get("i2_ci_lower")), _finite(meta.get("i2_ci_upper"))
        ci = f" (95% CI {lo:.0f}% to {hi:.0f}%)" if lo is not None and hi is not None else ""
        parts.append(f"I² = {float(i2):.0f}%{ci}")
    return "Heterogeneity: " + "; ".join(parts)


def overall_test_text(meta: dict) -> str:
    """ "Test for overall effect: Z = 2.31 (p = 0.021)" (t with its df for Knapp-Hartung)."""
    stat = _finite(meta.get("statistic"))
    if stat is None:
        return ""
    if str(meta.get("test") or "z").lower() == "knha":
        k = int(meta.get("k") or 0)
        return f"Test for overall effect: t = {stat:.2f}, df = {max(k - 1, 1)} ({fmt_p_text(meta.get('p_value'))})"
    return f"Test for overall effect: Z = {stat:.2f} ({fmt_p_text(meta.get('p_value'))})"


def not_estimable_reason(arms: dict | None, kind: str) -> str:
    """Why a study has no effect, read from its arms (RevMan's "Not estimable")."""
    if kind == "binary" and arms and arms.get("treatment") and arms.get("control"):
        t, c = arms["treatment"], arms["control"]
        try:
            te, tn, ce, cn = (float(x) for x in (t["events"], t["total"], c["events"], c["total"]))
        except (KeyError, TypeError, ValueError):
            return "counts missing"
        if te == 0 and ce == 0:
            return "no events in either arm"
        if te == tn and ce == cn:
            return "all participants had the event"
    if kind == "continuous" and arms:
        if any(_finite((a or {}).get("sd")) in (None, 0.0) for a in arms.values()):
            return "SD missing or zero"
    return "effect not estimable from the data"


def forest_plot(
    studies: list[dict],
    meta: dict,
    measure: str,
    ratio: bool,
    title: str,
    *,
    arms: dict[str, dict] | None = None,
    labels: dict[str, str] | None = None,
    kind: str = "",
    treatment: str = "treatment",
    control: str = "control",
    higher_is_better: bool = False,
) -> Figure:
    """Forest plot in the Cochrane/RevMan layout.

    Per study: its label, the arm data (events/total per arm, or mean (SD), n for continuous outcomes), the
    effect with its CI as a box (area ~ weight) and line, effect (95% CI) and weight in text; a study without
    an effect is listed as "not estimable" with the reason. Under the pooled diamond: the heterogeneity line
    (tau² for random-effects models only), the test for the overall effect and, for random-effects models,
    the prediction interval. "Favours <treatment> / Favours <control>" under the axis, on the side the
    outcome's direction (higher_is_better) gives. Study CIs beyond the axis are clipped with an arrow.
    Values are back-transformed wherever the measure has a back-transform (ratios on a log axis, proportions
    on a 0-1 axis, PFT per study with the study's own n), so the plot shows the numbers of the summary table.

    Args:
        studies: MetaResult `studies` rows ({study, yi, vi, weight, ci_lower, ci_upper} on the analysis scale,
            with n, yi_bt, ci_lower_bt, ci_upper_bt from engine 1.1.0).
        meta: the MetaResult dict (estimate, ci, pi and their `_bt` back-transforms, q, q_df, q_p, i2, tau2,
            statistic, p_value, test, method).
        measure, ratio: the effect measure and whether it is a ratio (log axis, null at 1).
        title: the analysis label.
        arms: {study id: {"treatment": {events, total | mean, sd, n}, "control": {...}}} (None: no arm columns).
        labels: study id -> the label people read (`livingmeta.report.document.study_label_map`).
        kind: the outcome kind (binary | continuous | proportion | generic).
        treatment, control: the arms' names for the column heads and the favours labels.
        higher_is_better: the outcome's direction (True: more of it is good, e.g. responders).
    Returns:
        a matplotlib Figure.
    """
    values, pooled, on_display = forest_values(studies, meta, measure, ratio)
    labels = labels or {}
    two_arm = bool(arms) and kind in ("binary", "continuous")
    common = is_common_effect(meta)
    het, overall = heterogeneity_text(meta), overall_test_text(meta)
    pl, pu = _finite(pooled.get("pi_lower")), _finite(pooled.get("pi_upper"))
    show_pi = not common and pl is not None and pu is not None
    n = len(studies)
    model = "Common-effect model" if common else "Random-effects model"
    method = str(meta.get("method", "")).upper()
    model += {"MH": " (Mantel–Haenszel)", "PETO": " (Peto)"}.get(method, "" if common else f" ({method})")
    footer = [model] + [t for t in (het, overall) if t]
    rows = n + 3 + (1 if show_pi else 0) + len(footer)
    height = 1.6 + 0.27 * rows
    fig = Figure(figsize=(10, height))
    x0, x1 = (0.44, 0.70) if two_arm else (0.30, 0.66)
    ax = fig.add_axes((x0, 1.0 / height, x1 - x0, 1 - 1.55 / height))
    fig.text(
        0.01,
        1 - 0.12 / height,
        _printable(title),
        ha="left",
        va="top",
        fontsize=10,
        fontweight="bold",
        parse_math=False,
    )
    ax.set_ylim(-0.6 - len(footer) - (1 if show_pi else 0), n + 1.4)
    ax.set_yticks([])
    for side in ("left", "top", "right"):
        ax.spines[side].set_visible(False)
    col = blended_transform_factory(fig.transFigure, ax.transData)
    c_study, c_t, c_c = 0.01, 0.31, 0.42
    c_eff, c_w = x1 + 0.015, 0.995
    y_head = n + 0.6
    bold = {"fontweight": "bold"}

    def txt(x, y, s, ha="left", **kw):
        ax.text(x, y, _printable(s), transform=col, ha=ha, va="center", parse_math=False, clip_on=False, **kw)

    txt(c_study, y_head, "Study", **bold)
    if two_arm:
        sub = "Mean (SD), N" if kind == "continuous" else "Events/Total"
        txt(c_t, y_head + 0.45, str(treatment)[:22], ha="right", **bold)
        txt(c_t, y_head, sub, ha="right", fontsize=8)
        txt(c_c, y_head + 0.45, str(control)[:22], ha="right", **bold)
        txt(c_c, y_head, sub, ha="right", fontsize=8)
    txt(c_eff, y_head, f"{measure_name(measure)} (95% CI)", **bold)
    txt(c_w, y_head, "Weight", ha="right", **bold)
    weights = [(_finite(s.get("weight")) or 0.0) for s in studies]
    wmax = max(weights) if weights and max(weights) > 0 else 1.0
    core: list[float] = []
    pieces = []
    zero_weight = []
    for i, s in enumerate(studies):
        y = n - 1 - i
        sid = str(s.get("study"))
        label = labels.get(sid) or sid
        txt(c_study, y, label if len(label) <= 34 else label[:33] + "…")
        arm = (arms or {}).get(sid) or {}
        if two_arm:
            txt(c_t, y, _arm_text(arm.get("treatment"), kind), ha="right")
            txt(c_c, y, _arm_text(arm.get("control"), kind), ha="right")
        if values[i] is None or values[i][0] is None:
            txt(c_eff, y, f"not estimable ({not_estimable_reason(arm, kind)})", color="#555", fontsize=8)
            txt(c_w, y, "0%", ha="right")
            if weights[i] == 0:
                zero_weight.append(label)
            continue
        e, lo, hi = values[i]
        core.append(e)
        pieces.append((y, e, lo, hi, weights[i]))
        if weights[i] == 0:
            zero_weight.append(label)
        txt(c_eff, y, f"{fmt_value(e)} ({fmt_interval(lo, hi)})")
        txt(c_w, y, f"{weights[i]:.1f}%", ha="right")
    est, plo, phi = (_finite(pooled.get(k)) for k in ("estimate", "ci_lower", "ci_upper"))
    core += [v for v in (est, plo, phi) if v is not None]
    if show_pi:
        core += [pl, pu]
    null = null_value(measure, ratio)
    proportion = on_display and measure in PROPORTION_MEASURES
    if ratio:
        ax.set_xscale("log")
    if proportion:
        lim = _proportion_limits(core + [v for _, _, lo, hi, _ in pieces for v in (lo, hi)])
    else:
        lim = _clip_limits(core, ratio, null)
    ax.set_xlim(*lim)
    lo_lim, hi_lim = lim
    for y, e, lo, hi, w in pieces:
        if lo is not None and hi is not None:
            a, b = max(lo, lo_lim), min(hi, hi_lim)
            ax.plot([a, b], [y, y], color="black", lw=0.9)
            if lo < lo_lim:
                ax.plot([lo_lim], [y], marker="<", color="black", ms=5, clip_on=False)
            if hi > hi_lim:
                ax.plot([hi_lim], [y], marker=">", color="black", ms=5, clip_on=False)
        if lo_lim <= e <= hi_lim:
            ax.scatter([e], [y], marker="s", s=12 + 160 * w / wmax, color=_COLOR, zorder=3)
    y_pool = -1.0
    txt(c_study, y_pool, f"Total ({fmt_count(meta.get('k'))} studies)", **bold)
    if two_arm and kind == "binary" and arms:
        tot = {
            a: [
                sum(float((arms.get(str(s.get("study"))) or {}).get(a, {}).get(k) or 0) for s in studies)
                for k in ("events", "total")
            ]
            for a in ("treatment", "control")
        }
        txt(c_t, y_pool, f"{fmt_count(tot['treatment'][0])}/{fmt_count(tot['treatment'][1])}", ha="right", **bold)
        txt(c_c, y_pool, f"{fmt_count(tot['control'][0])}/{fmt_count(tot['control'][1])}", ha="right", **bold)
    if est is not None and plo is not None and phi is not None:
        ax.add_patch(
            Polygon(
                [(max(plo, lo_lim), y_pool), (est, y_pool + 0.35), (min(phi, hi_lim), y_pool), (est, y_pool - 0.35)],
                closed=True,
                color=_COLOR,
                zorder=3,
            )
        )
        txt(c_eff, y_pool, f"{fmt_value(est)} ({fmt_interval(plo, phi)})", **bold)
        txt(c_w, y_pool, "100%", ha="right", **bold)
    else:
        txt(c_eff, y_pool, "not estimable (no study has an effect)", color="#555")
    y = y_pool - 1
    if show_pi:
        ax.plot([max(pl, lo_lim), min(pu, hi_lim)], [y, y], color="#b03a2e", lw=1.6)
        for v in (pl, pu):
            if lo_lim <= v <= hi_lim:
                ax.plot([v, v], [y - 0.15, y + 0.15], color="#b03a2e", lw=1.6)
        txt(c_study, y, "95% prediction interval", color="#b03a2e")
        txt(c_eff, y, fmt_interval(pl, pu), color="#b03a2e")
        y -= 1
    for line in footer:
        txt(c_study, y, line, fontsize=8)
        y -= 1
    if ratio:
        _log_axis(ax)
    if null is not None:
        ax.axvline(null, color="#555", lw=0.8, ls="--", zorder=1)
    ax.set_xlabel(_axis_label(measure, ratio, on_display), parse_math=False, fontsize=8)
    if null is not None and kind in ("binary", "continuous", "generic", ""):
        left, right = (control, treatment) if higher_is_better else (treatment, control)
        for side, name, dx, ha in (("left", left, -4, "right"), ("right", right, 4, "left")):
            ax.annotate(
                f"Favours {name}",
                xy=(null, 0),
                xycoords=("data", "axes fraction"),
                xytext=(dx, -30),
                textcoords="offset points",
                ha=ha,
                va="top",
                fontsize=8,
                annotation_clip=False,
                parse_math=False,
                gid=f"favours-{side}",
            )
    notes = []
    if zero_weight and str(meta.get("method", "")).upper() == "MH":
        notes.append(
            "Mantel–Haenszel weight 0% for " + ", ".join(zero_weight) + ": a zero cell (no events, or "
            "no non-events, in an arm) gives the study no weight in the pooled estimate; its own effect "
            "is shown with a 0.5 continuity correction."
        )
    clipped = any((lo is not None and lo < lo_lim) or (hi is not None and hi > hi_lim) for _, _, lo, hi, _ in pieces)
    if clipped:
        notes.append("Arrows: the confidence interval continues beyond the axis.")
    for j, note in enumerate(notes):
        fig.text(
            0.01,
            0.12 / height + 0.2 * (len(notes) - 1 - j) / height,
            note,
            ha="left",
            va="bottom",
            fontsize=7.5,
            parse_math=False,
            color="#333",
        )
    return fig


def _axis_label(measure: str, ratio: bool, on_display: bool) -> str:
    if ratio:
        return measure_name(measure) + " (log scale)"
    if measure in PROPORTION_MEASURES and on_display:
        name = TRANSFORM_NAMES.get(measure)
        return "Proportion" + (f" (pooled on the {name} scale, back-transformed)" if name else "")
    if measure == "PFT":
        return measure_name(measure) + " (analysis scale)"
    return measure_name(measure)


def cumulative_plot(rows: list[dict], ratio: bool, measure: str, title: str) -> Figure:
    """Cumulative forest plot: the pooled estimate and CI after each step (study year or review version).

    Args:
        rows: [{"label", "estimate", "ci_lower", "ci_upper", "k"}] on the display scale, in order.
    """
    n = len(rows)
    fig, ax = _row_axes(n + 1, title)
    left = blended_transform_factory(ax.transAxes, ax.transData)
    ax.text(-0.02, n, "Added / version", transform=left, ha="right", va="center", fontweight="bold")
    ax.text(1.03, n, "Pooled (95% CI), k", transform=left, ha="left", va="center", fontweight="bold")
    xs = []
    for i, r in enumerate(rows):
        y = n - 1 - i
        ax.text(-0.02, y, _printable(r.get("label")), transform=left, ha="right", va="center", parse_math=False)
        e, lo, hi = (_finite(r.get(k)) for k in ("estimate", "ci_lower", "ci_upper"))
        if e is None:
            ax.text(
                1.03,
                y,
                f"not estimable, k = {fmt_count(r.get('k'))}",
                transform=left,
                ha="left",
                va="center",
                color="#555",
            )
            continue
        if lo is not None and hi is not None:
            ax.plot([lo, hi], [y, y], color="black", lw=0.9)
            xs += [lo, hi]
        ax.scatter([e], [y], marker="D", s=22, color=_COLOR, zorder=3)
        xs.append(e)
        ax.text(
            1.03,
            y,
            f"{fmt_value(e)} ({fmt_interval(lo, hi)}), k = {fmt_count(r.get('k'))}",
            transform=left,
            ha="left",
            va="center",
        )
    null = null_value(measure, ratio)
    if ratio:
        ax.set_xscale("log")
    # rows are display numbers (back-transformed pooled values): proportions for every proportion measure
    ax.set_xlim(*(_proportion_limits(xs) if measure in PROPORTION_MEASURES else _xlimits(xs, ratio, null)))
    if ratio:
        _log_axis(ax)
    if null is not None:
        ax.axvline(null, color="#555", lw=0.8, ls="--", zorder=1)
    ax.set_xlabel(_axis_label(measure, ratio, True), parse_math=False)
    return fig


def tsa_curve(tsa: dict) -> list[dict]:
    """The boundary curve a TSA chart draws: on a dense grid and at every look (`boundary_curve`), in
    participants. Futility is oriented like z (the TSA's direction)."""
    ris = _finite(tsa.get("ris"))
    if not ris:
        return []
    fracs = [float(p["information"]) / ris for p in tsa.get("points") or [] if _finite(p.get("information"))]
    curve = boundary_curve(fracs, float(tsa.get("alpha") or 0.05), _finite(tsa.get("beta")))  # no beta: no futility
    sign = -1 if (tsa.get("direction") or 1) < 0 else 1
    return [
        {**c, "information": c["fraction"] * ris, "futility": None if c["futility"] is None else sign * c["futility"]}
        for c in curve
    ]


def tsa_plot(
    tsa: dict, title: str, *, settings: dict | None = None, kind: str = "", labels: dict[str, str] | None = None
) -> Figure:
    """Trial sequential analysis chart: cumulative Z against accrued information; the monitoring boundaries
    and, when computed, the futility boundaries drawn as curves evaluated on a dense grid (`tsa_curve`); the
    conventional ±1.96 lines; the required information size (RIS); each look marked with the study that
    triggered it; the assumptions in a box under the chart. The legend lists only what is drawn."""
    labels = labels or {}
    fig = Figure(figsize=(8, 5.8))
    ax = fig.add_axes((0.09, 0.36, 0.64, 0.56))
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    fig.text(0.01, 0.985, _printable(title), ha="left", va="top", fontsize=10, fontweight="bold", parse_math=False)
    ris = _finite(tsa.get("ris"))
    pts = [
        p
        for p in tsa.get("points") or []
        if _finite(p.get("information")) is not None and _finite(p.get("z")) is not None
    ]
    infos = [float(p["information"]) for p in pts]
    xmax = max([ris or 0.0] + infos) * 1.08 or 1.0
    zs = [float(p["z"]) for p in pts]
    current = _finite(pts[-1].get("upper")) if pts else None  # the boundary at the current information
    # The axis shows every Z and the current boundary up to TSA_Y_CAP; an early O'Brien-Fleming-type boundary
    # (15 or 30 at a few percent of the RIS) would squash everything else, so above the cap it is marked at
    # the top edge with its value instead.
    ylim = max(6.0, max((abs(z) for z in zs), default=0) + 1.0, min((current or 0) + 0.8, TSA_Y_CAP))
    curve = tsa_curve(tsa)
    if curve:
        cx = [c["information"] for c in curve]
        up = [min(c["upper"], ylim * 1.5) for c in curve]
        ax.plot(cx, up, color="#b03a2e", lw=1.5, label="monitoring boundary", gid="tsa-boundary")
        ax.plot(cx, [-u for u in up], color="#b03a2e", lw=1.5, gid="tsa-boundary-lower")
        ax.plot([xmax / 1.08 if ris is None else ris, xmax], [up[-1], up[-1]], color="#b03a2e", lw=1.5)
        ax.plot([xmax / 1.08 if ris is None else ris, xmax], [-up[-1], -up[-1]], color="#b03a2e", lw=1.5)
        fut = [(c["information"], c["futility"]) for c in curve if c.get("futility") is not None]
        if fut:
            ax.plot(
                [x for x, _ in fut],
                [f for _, f in fut],
                color="#7d6608",
                lw=1.2,
                ls="-.",
                label="futility boundary",
                gid="tsa-futility",
            )
    if pts and current is not None and current > ylim:
        ax.annotate(
            f"boundary at {_printable(labels.get(str(pts[-1].get('label')), pts[-1].get('label')) or 'this look')}: "
            f"±{current:.1f} (off scale)",
            (infos[-1], ylim),
            xytext=(6, -12),
            textcoords="offset points",
            fontsize=8,
            color="#b03a2e",
            va="top",
            annotation_clip=False,
            parse_math=False,
        )
    ax.axhline(1.96, color="#555", lw=0.8, ls="--", label="conventional ±1.96")
    ax.axhline(-1.96, color="#555", lw=0.8, ls="--")
    ax.axhline(0, color="#999", lw=0.6)
    if ris:
        ax.axvline(ris, color="#1e8449", lw=1.2, ls=":", label=f"RIS = {fmt_count(ris)}")
    if pts:
        ax.plot(infos, zs, color=_COLOR, marker="o", ms=4, lw=1.4, label="cumulative Z", gid="tsa-z")
        many = len(pts) > 12
        for i, (p, x, z) in enumerate(zip(pts, infos, zs)):
            if many and i not in (0, len(pts) - 1) and i % max(1, len(pts) // 8):
                continue
            name = _printable(labels.get(str(p.get("label")), str(p.get("label") or "")))
            ax.annotate(
                name,
                (x, z),
                xytext=(3, 6 if i % 2 == 0 else -10),
                textcoords="offset points",
                fontsize=7,
                annotation_clip=False,
                parse_math=False,
                rotation=30 if many else 0,
            )
    no_z = [
        p for p in tsa.get("points") or [] if _finite(p.get("information")) is not None and _finite(p.get("z")) is None
    ]
    for p in no_z:
        x = float(p["information"])
        ax.plot([x], [0], marker="x", color=_COLOR, ms=6, zorder=4)
        ax.annotate(
            f"{_printable(labels.get(str(p.get('label')), str(p.get('label') or '')))} (Z not estimable)",
            (x, 0),
            xytext=(3, -12),
            textcoords="offset points",
            fontsize=7,
            annotation_clip=False,
            parse_math=False,
        )
    ax.set_xlim(0, xmax)
    ax.set_ylim(-ylim, ylim)
    ax.set_xlabel("Information (participants)")
    ax.set_ylabel("Cumulative Z")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    lines = tsa_assumption_lines(tsa, settings, kind) if settings is not None or tsa.get("ris_unadjusted") else []
    if lines:
        fig.text(0.01, 0.24, "Assumptions", ha="left", va="top", fontsize=8.5, fontweight="bold")
        fig.text(
            0.01,
            0.205,
            "\n".join(lines),
            ha="left",
            va="top",
            fontsize=8,
            parse_math=False,
            linespacing=1.5,
            gid="tsa-assumptions",
        )
    return fig


def funnel_plot(studies: list[dict], meta: dict, measure: str, ratio: bool, title: str) -> Figure:
    """Funnel plot on the analysis scale: effect against standard error (inverted), with the pooled
    estimate and its pseudo 95% confidence region."""
    fig = Figure(figsize=(6.5, 4.6))
    ax = fig.add_subplot(1, 1, 1)
    ax.set_title(_printable(title), loc="left", fontsize=10, fontweight="bold", parse_math=False)
    pts = [
        (float(s["yi"]), math.sqrt(float(s["vi"])))
        for s in studies
        if _finite(s.get("yi")) is not None and _finite(s.get("vi")) is not None and float(s["vi"]) > 0
    ]
    est = _finite(meta.get("estimate"))
    se_max = max((se for _, se in pts), default=1.0) * 1.05
    if est is not None:
        ax.plot([est - 1.96 * se_max, est, est + 1.96 * se_max], [se_max, 0, se_max], color="#555", lw=0.8, ls="--")
        ax.axvline(est, color=_COLOR, lw=1)
    ax.scatter([y for y, _ in pts], [se for _, se in pts], s=18, color=_COLOR, edgecolor="white", zorder=3)
    ax.set_ylim(se_max, 0)
    ax.set_ylabel("Standard error")
    ax.set_xlabel(("log " if ratio else "") + measure_name(measure).lower() + " (analysis scale)", parse_math=False)
    return fig


def _box(ax, x, y, w, h, lines: list[str], bold_first: bool = True, color: str = "#eaf1f8", gid: str = "") -> None:
    ax.add_patch(
        FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", fc=color, ec="#1f4e79", lw=0.9)
    )
    top = y + h - 0.18
    for i, line in enumerate(lines):
        ax.text(
            x + 0.12,
            top - i * 0.34,
            _printable(line),
            ha="left",
            va="top",
            fontsize=9,
            fontweight="bold" if (bold_first and i == 0) else "normal",
            parse_math=False,
            gid=f"{gid}-{i}" if gid else None,
        )


def _num(d: dict | None, key: str) -> float | None:
    return _finite((d or {}).get(key))


def prisma_update_counts(current: dict, previous: dict | None) -> dict[str, Any]:
    """The PRISMA 2020 flow for an updated review (Page MJ et al. BMJ 2021;372:n71, figure 1, updated
    reviews): studies of the previous version, what this version's searches added, and the total.

    Counts in the warehouse are cumulative over the review's life; this version's new records, exclusions
    and studies are the differences from the previous version (for the first version, everything is new).
    Returns {"previous_studies", "previous_reports", "pubmed", "ctgov", "identified", "duplicates", "screened",
    "excluded_screening", "sought", "not_retrieved", "assessed", "excluded_full_text", "reasons": {reason: n},
    "new_studies", "new_reports", "total_studies", "total_reports", "first_version"}.
    """
    prev = previous or {}

    def new(key: str) -> float | None:
        cur = _num(current, key)
        if cur is None:
            return None
        return cur - (_num(prev, key) or 0.0)

    sought = new("full_text_sought")
    assessed = new("full_text_assessed")
    not_retrieved = None
    if sought is not None and assessed is not None:
        not_retrieved = max(0.0, sought - assessed)
    reasons_now = dict(current.get("excluded_reasons") or {})
    reasons_before = dict(prev.get("excluded_reasons") or {})
    reasons = {r: n - reasons_before.get(r, 0) for r, n in reasons_now.items() if n - reasons_before.get(r, 0) > 0}
    return {
        "first_version": previous is None,
        "previous_studies": _num(prev, "studies_included") or 0.0,
        "previous_reports": _num(prev, "included") or 0.0,
        "pubmed": new("identified_pubmed"),
        "ctgov": new("identified_ctgov"),
        "identified": new("identified_total"),
        "duplicates": new("duplicates_removed"),
        "screened": new("screened"),
        "excluded_screening": new("excluded_title_abstract"),
        "sought": sought,
        "not_retrieved": not_retrieved,
        "assessed": assessed,
        "excluded_full_text": new("excluded_full_text"),
        "reasons": reasons,
        "new_studies": new("studies_included"),
        "new_reports": new("included"),
        "total_studies": _num(current, "studies_included"),
        "total_reports": _num(current, "included"),
    }


def prisma_diagram(current: dict, previous: dict | None, title: str) -> Figure:
    """PRISMA 2020 flow diagram for updated reviews (databases and registers): the previous version's studies
    on the left, this version's identification, screening and inclusion, and the total; text at 9 pt, so the
    diagram reads at 100% zoom."""
    c = prisma_update_counts(current, previous)
    n = fmt_count
    fig = Figure(figsize=(10, 9.2))
    ax = fig.add_axes((0, 0, 1, 0.955))
    fig.text(0.01, 0.99, title, ha="left", va="top", fontsize=10.5, fontweight="bold", parse_math=False)
    ax.set_xlim(0, 12)
    ax.set_ylim(0, 12)
    ax.axis("off")
    prev_label = "first version: none" if c["first_version"] else "previous version"
    _box(
        ax,
        0.15,
        9.3,
        2.9,
        2.2,
        [
            "Previous version",
            "Studies included",
            f"({prev_label}):",
            f"n = {n(c['previous_studies'])}",
            f"Reports: n = {n(c['previous_reports'])}",
        ],
        color="#f2f2f2",
        gid="prisma-previous",
    )
    _box(
        ax,
        3.4,
        9.3,
        4.4,
        2.2,
        [
            "New records identified",
            f"PubMed: n = {n(c['pubmed'])}",
            f"ClinicalTrials.gov: n = {n(c['ctgov'])}",
            f"Total: n = {n(c['identified'])}",
        ],
        gid="prisma-identified",
    )
    _box(
        ax,
        8.2,
        9.6,
        3.65,
        1.6,
        ["Removed before screening", "Duplicate records", "(linked to one study):", f"n = {n(c['duplicates'])}"],
        color="#f8f1ea",
    )
    _box(ax, 3.4, 7.5, 4.4, 1.2, ["Records screened", f"n = {n(c['screened'])}"])
    _box(ax, 8.2, 7.5, 3.65, 1.2, ["Records excluded", f"n = {n(c['excluded_screening'])}"], color="#f8f1ea")
    _box(ax, 3.4, 5.7, 4.4, 1.2, ["Reports sought for retrieval", f"n = {n(c['sought'])}"])
    _box(ax, 8.2, 5.7, 3.65, 1.2, ["Reports not retrieved", f"n = {n(c['not_retrieved'])}"], color="#f8f1ea")
    _box(ax, 3.4, 3.9, 4.4, 1.2, ["Reports assessed for eligibility", f"n = {n(c['assessed'])}"])
    reasons = sorted(c["reasons"].items(), key=lambda kv: (-kv[1], kv[0]))
    shown = reasons[:6]
    reason_lines = [(str(r) if len(str(r)) <= 30 else str(r)[:29] + "…") + f": {n(k)}" for r, k in shown]
    if len(reasons) > len(shown):
        reason_lines.append(f"other reasons: {n(sum(k for _, k in reasons[len(shown) :]))}")
    h = max(1.2, 0.45 + 0.34 * (1 + len(reason_lines)) + 0.2)
    _box(
        ax,
        8.2,
        5.1 - h,
        3.65,
        h,
        [f"Reports excluded: n = {n(c['excluded_full_text'])}", *reason_lines],
        color="#f8f1ea",
        gid="prisma-excluded",
    )
    _box(
        ax,
        3.4,
        1.75,
        4.4,
        1.35,
        ["New studies included", f"n = {n(c['new_studies'])}", f"Reports of new studies: n = {n(c['new_reports'])}"],
        color="#e9f7ef",
    )
    _box(
        ax,
        0.15,
        0.1,
        7.65,
        1.25,
        [
            "Total studies included in the review",
            f"n = {n(c['total_studies'])}; reports of total included studies: n = {n(c['total_reports'])}",
        ],
        color="#e9f7ef",
        gid="prisma-total",
    )
    arrow = dict(arrowstyle="-|>", color="#1f4e79", lw=1)
    for y0, y1 in ((9.3, 8.7), (7.5, 6.9), (5.7, 5.1), (3.9, 3.1), (1.75, 1.35)):
        ax.annotate("", xy=(5.6, y1), xytext=(5.6, y0), arrowprops=arrow)
    for y in (10.4, 8.1, 6.3, 4.5):
        ax.annotate("", xy=(8.2, y), xytext=(7.8, y), arrowprops=arrow)
    ax.annotate("", xy=(1.6, 1.35), xytext=(1.6, 9.3), arrowprops=arrow)
    return fig


def _file_name(*parts: str) -> str:
    return _SAFE_NAME.sub("-", "-".join(p for p in parts if p)).strip("-") + ".png"
