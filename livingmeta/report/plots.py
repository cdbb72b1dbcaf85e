"""The report's figures, drawn with matplotlib's object API on the Agg canvas (no pyplot, no GUI state).

Every figure is returned as inline SVG (text drawn as paths, ids made unique per figure, comments and the XML
prolog removed) and as PNG bytes. Text that comes from a source (study labels, titles, exclusion reasons) is
drawn with mathtext off, so a `$` in a label is a dollar sign, not a formula.

References: forest plots after Lewis S, Clarke M. BMJ 2001;322:1479 (box area proportional to weight,
diamond for the pooled estimate, prediction interval after Riley RD et al. BMJ 2011;342:d549); funnel plots
after Sterne JAC et al. BMJ 2011;343:d4002 (shown only with at least 10 studies); TSA charts after
Wetterslev J et al. BMC Med Res Methodol 2017;17:39; the flow diagram after PRISMA 2020 (Page MJ et al.
BMJ 2021;372:n71).
"""

from __future__ import annotations

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

from livingmeta.report.document import Plot, Report, display_numbers, fmt_count, fmt_interval, fmt_value  # noqa: E402
from livingmeta.report.scales import (PROPORTION_MEASURES, TRANSFORM_NAMES, measure_name, null_value,  # noqa: E402
                                     study_display, study_transform)

FUNNEL_MIN_K = 10
TSA_Y_CAP = 8.0  # |Z| shown on a TSA chart before a boundary is marked "off scale" at the edge
_RC = {"svg.fonttype": "path", "svg.hashsalt": "livingmeta", "font.size": 9, "axes.spines.top": False,
       "axes.spines.right": False}
_COLOR = "#1f4e79"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _inline_svg(raw: str, prefix: str) -> str:
    """Make matplotlib's SVG safe to inline several times in one HTML page."""
    s = re.sub(r"<\?xml[^>]*\?>", "", raw)
    s = re.sub(r"<!DOCTYPE[^>]*>", "", s)
    s = re.sub(r"<!--.*?-->", "", s, flags=re.S)
    s = s.replace(' id="', f' id="{prefix}-').replace('href="#', f'href="#{prefix}-').replace("url(#", f"url(#{prefix}-")

    def root(m: re.Match) -> str:
        tag = m.group(0)
        width = re.search(r'width="([\d.]+)pt"', tag)
        tag = re.sub(r'\s(width|height)="[^"]*"', "", tag)
        style = f' style="width:100%;max-width:{width.group(1)}pt;height:auto"' if width else ""
        return tag[:-1] + f'{style} role="img">'

    s = re.sub(r"<svg\b[^>]*>", root, s, count=1)
    if re.search(r"<script|on\w+\s*=|javascript:", s, re.I):  # cannot happen with text as paths; refuse if it does
        raise ValueError(f"figure {prefix}: SVG output contains active content; not embedding it")
    return s.strip()


def figure_files(fig: Figure, prefix: str) -> tuple[str, bytes]:
    """Render a figure to (inline SVG text, PNG bytes)."""
    with rc_context(_RC):
        svg_buf, png_buf = io.StringIO(), io.BytesIO()
        fig.savefig(svg_buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
        fig.savefig(png_buf, format="png", dpi=150, metadata={"Software": None}, bbox_inches="tight")
    return _inline_svg(svg_buf.getvalue(), prefix), png_buf.getvalue()


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


_LOG_TICKS = [m * 10.0 ** e for e in range(-4, 5) for m in (1, 2, 5)]


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
    ax.set_title(title, loc="left", fontsize=10, fontweight="bold", parse_math=False, x=-0.62)
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
        bool(estimable) and all(shown[i] is not None for i in estimable))
    if on_display:
        return shown, display_numbers(meta), True
    raw = [tuple(_finite(s.get(k)) for k in ("yi", "ci_lower", "ci_upper")) if i in estimable else None
           for i, s in enumerate(studies)]
    return raw, {k: meta.get(k) for k in ("estimate", "ci_lower", "ci_upper", "pi_lower", "pi_upper")}, False


def _proportion_limits(xs: list[float]) -> tuple[float, float]:
    """0 to 1 (a proportion's whole range, so plots of different reviews compare), widened only for a PR
    interval that crosses the bounds."""
    vals = [v for v in xs if v is not None]
    return min([0.0] + vals) - 0.02, max([1.0] + vals) + 0.02


def forest_plot(studies: list[dict], meta: dict, measure: str, ratio: bool, title: str) -> Figure:
    """Forest plot: per-study effect and CI (box area ~ weight), pooled diamond, prediction interval.

    Values are back-transformed wherever the measure has a back-transform (ratios on a log axis, proportions
    on a 0-1 axis, PFT per study with the study's own n), so the plot shows the numbers of the summary table.

    Args:
        studies: MetaResult `studies` rows ({study, yi, vi, weight, ci_lower, ci_upper} on the analysis scale,
            with n, yi_bt, ci_lower_bt, ci_upper_bt from engine 1.1.0).
        meta: the MetaResult dict (estimate, ci, pi and their `_bt` back-transforms).
        measure, ratio: the effect measure and whether it is a ratio (log axis, null at 1).
        title: the analysis label.
    Returns:
        a matplotlib Figure.
    """
    values, pooled, on_display = forest_values(studies, meta, measure, ratio)
    n = len(studies)
    rows = n + 3  # header, studies, gap, pooled, prediction interval
    fig, ax = _row_axes(rows, title)
    null = null_value(measure, ratio)
    xs = []
    left = blended_transform_factory(ax.transAxes, ax.transData)
    ytop = rows - 1
    ax.text(-0.02, ytop, "Study", transform=left, ha="right", va="center", fontweight="bold")
    ax.text(1.03, ytop, "Effect (95% CI)", transform=left, ha="left", va="center", fontweight="bold")
    ax.text(1.55, ytop, "Weight", transform=left, ha="right", va="center", fontweight="bold")
    weights = [(_finite(s.get("weight")) or 0.0) for s in studies]
    wmax = max(weights) if weights and max(weights) > 0 else 1.0
    for i, s in enumerate(studies):
        y = ytop - 1 - i
        label = str(s.get("study"))
        ax.text(-0.02, y, label, transform=left, ha="right", va="center", parse_math=False)
        if values[i] is None or values[i][0] is None:
            ax.text(1.03, y, "not estimable", transform=left, ha="left", va="center", color="#666")
            continue
        e, l, h = values[i]
        xs += [v for v in (e, l, h) if v is not None]
        if l is not None and h is not None:
            ax.plot([l, h], [y, y], color="black", lw=0.9)
        ax.scatter([e], [y], marker="s", s=12 + 160 * weights[i] / wmax, color=_COLOR, zorder=3)
        ax.text(1.03, y, f"{fmt_value(e)} ({fmt_interval(l, h)})", transform=left, ha="left", va="center")
        ax.text(1.55, y, f"{weights[i]:.1f}%", transform=left, ha="right", va="center")
    est, lo, hi = (_finite(pooled.get(k)) for k in ("estimate", "ci_lower", "ci_upper"))
    y_pool, y_pi = 1.0, 0.0
    model = "Random-effects model" if str(meta.get("method", "")).upper() not in {"FE", "EE", "CE", "MH", "PETO"} \
        else "Common-effect model"
    ax.text(-0.02, y_pool, f"{model} (k = {fmt_count(meta.get('k'))})", transform=left, ha="right", va="center",
            fontweight="bold")
    if est is not None and lo is not None and hi is not None:
        ax.add_patch(Polygon([(lo, y_pool), (est, y_pool + 0.35), (hi, y_pool), (est, y_pool - 0.35)],
                             closed=True, color=_COLOR, zorder=3))
        xs += [est, lo, hi]
        ax.text(1.03, y_pool, f"{fmt_value(est)} ({fmt_interval(lo, hi)})", transform=left, ha="left", va="center",
                fontweight="bold")
        ax.text(1.55, y_pool, "100%", transform=left, ha="right", va="center", fontweight="bold")
    pl, pu = _finite(pooled.get("pi_lower")), _finite(pooled.get("pi_upper"))
    if pl is not None and pu is not None:
        ax.plot([pl, pu], [y_pi, y_pi], color="#b03a2e", lw=1.6)
        ax.plot([pl, pl], [y_pi - 0.15, y_pi + 0.15], color="#b03a2e", lw=1.6)
        ax.plot([pu, pu], [y_pi - 0.15, y_pi + 0.15], color="#b03a2e", lw=1.6)
        xs += [pl, pu]
        ax.text(-0.02, y_pi, "Prediction interval", transform=left, ha="right", va="center", color="#b03a2e")
        ax.text(1.03, y_pi, fmt_interval(pl, pu), transform=left, ha="left", va="center", color="#b03a2e")
    if ratio:
        ax.set_xscale("log")
    proportion = on_display and measure in PROPORTION_MEASURES
    ax.set_xlim(*(_proportion_limits(xs) if proportion else _xlimits(xs, ratio, null)))
    if ratio:
        _log_axis(ax)
    if null is not None:
        ax.axvline(null, color="#555", lw=0.8, ls="--", zorder=1)
    ax.set_xlabel(_axis_label(measure, ratio, on_display), parse_math=False)
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
        ax.text(-0.02, y, str(r.get("label")), transform=left, ha="right", va="center", parse_math=False)
        e, lo, hi = (_finite(r.get(k)) for k in ("estimate", "ci_lower", "ci_upper"))
        if e is None:
            continue
        if lo is not None and hi is not None:
            ax.plot([lo, hi], [y, y], color="black", lw=0.9)
            xs += [lo, hi]
        ax.scatter([e], [y], marker="D", s=22, color=_COLOR, zorder=3)
        xs.append(e)
        ax.text(1.03, y, f"{fmt_value(e)} ({fmt_interval(lo, hi)}), k = {fmt_count(r.get('k'))}", transform=left,
                ha="left", va="center")
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


def tsa_plot(tsa: dict, title: str) -> Figure:
    """Trial sequential analysis chart: cumulative Z against accrued information, monitoring and futility
    boundaries, the conventional ±1.96 lines and the required information size (RIS)."""
    fig = Figure(figsize=(8, 4.6))
    ax = fig.add_subplot(1, 1, 1)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.set_title(title, loc="left", fontsize=10, fontweight="bold", parse_math=False)
    ris = _finite(tsa.get("ris"))
    pts = [p for p in tsa.get("points") or [] if _finite(p.get("information")) is not None and _finite(p.get("z")) is not None]
    curve = [c for c in tsa.get("curve") or [] if _finite(c.get("fraction")) is not None]
    infos = [float(p["information"]) for p in pts]
    xmax = max([ris or 0.0] + infos) * 1.08 or 1.0
    zs = [float(p["z"]) for p in pts]
    current = _finite(pts[-1].get("upper")) if pts else None  # the boundary at the current information
    # The axis shows every Z and the current boundary up to TSA_Y_CAP; an early O'Brien-Fleming-type boundary
    # (15 or 30 at a few percent of the RIS) would squash everything else, so above the cap it is marked at
    # the top edge with its value instead.
    ylim = max(6.0, max((abs(z) for z in zs), default=0) + 1.0, min((current or 0) + 0.8, TSA_Y_CAP))
    if ris and curve:
        cx = [float(c["fraction"]) * ris for c in curve]
        up = [_finite(c.get("upper")) for c in curve]
        keep = [(x, u) for x, u in zip(cx, up) if u is not None]
        if keep:
            ax.plot([x for x, _ in keep], [u for _, u in keep], color="#b03a2e", lw=1.5,
                    label="monitoring boundary")
            ax.plot([x for x, _ in keep], [-u for _, u in keep], color="#b03a2e", lw=1.5)
            off = [(x, u) for x, u in keep if u > ylim]
            if off:
                for sign in (1, -1):
                    ax.scatter([x for x, _ in off], [sign * ylim] * len(off), marker="^" if sign > 0 else "v",
                               s=28, color="#b03a2e", clip_on=False, zorder=4)
    if pts and current is not None and current > ylim:
        ax.annotate(f"boundary at {pts[-1].get('label') or 'this look'}: ±{current:.1f} (off scale)",
                    (infos[-1], ylim), xytext=(6, -12), textcoords="offset points", fontsize=8, color="#b03a2e",
                    va="top", annotation_clip=False, parse_math=False)
        fut = [(x, _finite(c.get("futility"))) for x, c in zip(cx, curve) if _finite(c.get("futility")) is not None]
        if fut:
            ax.plot([x for x, _ in fut], [f for _, f in fut], color="#7d6608", lw=1.2, ls="-.",
                    label="futility boundary")
            ax.plot([x for x, _ in fut], [-f for _, f in fut], color="#7d6608", lw=1.2, ls="-.")
    ax.axhline(1.96, color="#555", lw=0.8, ls="--", label="conventional ±1.96")
    ax.axhline(-1.96, color="#555", lw=0.8, ls="--")
    ax.axhline(0, color="#999", lw=0.6)
    if ris:
        ax.axvline(ris, color="#1e8449", lw=1.2, ls=":", label=f"RIS = {fmt_count(ris)}")
    if pts:
        ax.plot(infos, zs, color=_COLOR, marker="o", ms=4, lw=1.4, label="cumulative Z")
        ax.annotate(str(pts[-1].get("label") or ""), (infos[-1], zs[-1]), xytext=(5, 5), textcoords="offset points",
                    fontsize=8, annotation_clip=False)
    ax.set_xlim(0, xmax)
    ax.set_ylim(-ylim, ylim)
    ax.set_xlabel("Information (participants)")
    ax.set_ylabel("Cumulative Z")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig


def funnel_plot(studies: list[dict], meta: dict, measure: str, ratio: bool, title: str) -> Figure:
    """Funnel plot on the analysis scale: effect against standard error (inverted), with the pooled
    estimate and its pseudo 95% confidence region."""
    fig = Figure(figsize=(6.5, 4.6))
    ax = fig.add_subplot(1, 1, 1)
    ax.set_title(title, loc="left", fontsize=10, fontweight="bold", parse_math=False)
    pts = [(float(s["yi"]), math.sqrt(float(s["vi"]))) for s in studies
           if _finite(s.get("yi")) is not None and _finite(s.get("vi")) is not None and float(s["vi"]) > 0]
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


def _box(ax, x, y, w, h, lines: list[str], bold_first: bool = True, color: str = "#eaf1f8") -> None:
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", fc=color, ec="#1f4e79",
                                lw=0.9))
    text = "\n".join(lines)
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8, parse_math=False, wrap=True)


def _count_line(key: str, cur: dict, prev: dict | None) -> str:
    new = cur.get(key)
    if prev is None or prev.get(key) is None:
        return f"n = {fmt_count(new)}"
    old = prev.get(key)
    delta = (new or 0) - (old or 0)
    return f"n = {fmt_count(new)} (previous {fmt_count(old)}, {delta:+,.0f})"


def prisma_diagram(current: dict, previous: dict | None, title: str) -> Figure:
    """PRISMA 2020 flow diagram for a living review: each box shows the current count and the previous
    version's count with the change."""
    fig = Figure(figsize=(9, 7.2))
    ax = fig.add_axes((0, 0, 1, 0.94))
    fig.suptitle(title, x=0.02, ha="left", fontsize=10, fontweight="bold")
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    ax.axis("off")
    c, p = current, previous

    def line(k):
        return _count_line(k, c, p)

    _box(ax, 0.3, 8.0, 5.2, 1.7, ["Records identified", f"PubMed: {line('identified_pubmed')}",
                                  f"ClinicalTrials.gov: {line('identified_ctgov')}", f"Total: {line('identified_total')}"])
    _box(ax, 6.2, 8.2, 3.5, 1.3, ["Duplicate records removed", "(linked to the same study)",
                                  line("duplicates_removed")], color="#f8f1ea")
    _box(ax, 0.3, 5.9, 5.2, 1.2, ["Records screened (title/abstract)", line("screened")])
    _box(ax, 6.2, 5.9, 3.5, 1.2, ["Records excluded", line("excluded_title_abstract")], color="#f8f1ea")
    _box(ax, 0.3, 3.8, 5.2, 1.2, ["Reports assessed for eligibility", line("full_text_assessed")])
    reasons = c.get("excluded_reasons") or {}
    reason_lines = [f"{str(r)[:40]}: {fmt_count(n)}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:5]]
    _box(ax, 6.2, 3.3, 3.5, 2.0, ["Reports excluded", line("excluded_full_text"), *reason_lines], color="#f8f1ea")
    _box(ax, 0.3, 1.2, 5.2, 1.6, ["Studies included in the review", line("studies_included"),
                                  f"Reports of included studies: {line('included')}"], color="#e9f7ef")
    arrow = dict(arrowstyle="-|>", color="#1f4e79", lw=1)
    for y0, y1 in ((8.0, 7.1), (5.9, 5.0), (3.8, 2.8)):
        ax.annotate("", xy=(2.9, y1), xytext=(2.9, y0), arrowprops=arrow)
    for y in (8.85, 6.5, 4.4):
        ax.annotate("", xy=(6.2, y), xytext=(5.5, y), arrowprops=arrow)
    for y, name in ((8.85, "Identification"), (5.0, "Screening"), (2.0, "Included")):
        ax.text(0.05, y, name, rotation=90, ha="center", va="center", fontsize=8, color="#555")
    return fig


def _file_name(*parts: str) -> str:
    return _SAFE_NAME.sub("-", "-".join(p for p in parts if p)).strip("-") + ".png"


def report_plots(report: Report) -> list[Plot]:
    """Draw every figure the report shows, in the order the report shows them."""
    plots: list[Plot] = []

    def add(fig: Figure, kind: str, title: str, aid: str | None) -> None:
        prefix = f"fig{len(plots) + 1}"
        svg, png = figure_files(fig, prefix)
        plots.append(Plot(kind=kind, title=title, analysis_id=aid, filename=_file_name(aid or "review", kind),
                          svg=svg, png=png))

    for row, a in zip(report.summary, report.doc["analyses"]):
        result = a.get("result") or {}
        meta = result.get("meta")
        aid, label, measure, ratio = row["analysis_id"], row["label"], row["measure"], row["ratio"]
        if meta:
            studies = list(meta.get("studies") or [])
            add(forest_plot(studies, meta, measure, ratio, label), "forest", f"Forest plot: {label}", aid)
            cum = [{"label": (f"+ {c.get('added')} ({c.get('year')})" if c.get("year") is not None
                              else f"+ {c.get('added')}"), **display_numbers(c), "k": c.get("k")}
                   for c in result.get("cumulative") or []]
            if cum:
                add(cumulative_plot(cum, ratio, measure, f"Cumulative meta-analysis by study: {label}"),
                    "cumulative", f"Cumulative forest plot (studies added in order of year): {label}", aid)
            hist = a.get("history") or []
            if len(hist) >= 2:
                rows = [{"label": f"version {h.get('version')}" + (f" ({str(h.get('as_of'))[:10]})" if h.get("as_of") else ""),
                         **{k: h.get(k) for k in ("estimate", "ci_lower", "ci_upper", "k")}} for h in hist]
                add(cumulative_plot(rows, ratio, measure, f"Pooled estimate across review versions: {label}"),
                    "versions", f"Cumulative forest plot across review versions: {label}", aid)
            if result.get("tsa"):
                add(tsa_plot(result["tsa"], f"Trial sequential analysis: {label}"), "tsa",
                    f"Trial sequential analysis: {label}", aid)
            if sum(1 for s in studies if _finite(s.get("yi")) is not None) >= FUNNEL_MIN_K:
                add(funnel_plot(studies, meta, measure, ratio, f"Funnel plot: {label}"), "funnel",
                    f"Funnel plot: {label}", aid)
    prisma = report.doc.get("prisma") or {}
    if prisma.get("current"):
        add(prisma_diagram(prisma["current"], prisma.get("previous"), "PRISMA 2020 flow diagram"), "prisma",
            "PRISMA 2020 flow diagram", None)
    return plots
