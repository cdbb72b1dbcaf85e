"""Living re-analysis: the study rows an analysis pools, the hash of its inputs, and one full run.

Pure: the warehouse hands over the current extraction rows of included, non-retracted studies; this
module turns them into the stats engine's columns, hashes them with the analysis settings and the engine
version (an unchanged hash means the stored run still holds), and runs meta-analysis, leave-one-out,
cumulative, subgroup and trial sequential analyses.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any
from collections.abc import Iterable, Mapping

from livingmeta.records import hash_json

# the engine (and scipy) load when an analysis runs, not when inputs are built and hashed: a nightly whose
# analyses' inputs did not change never imports them (see livingmeta.stats)
from livingmeta.stats import ENGINE_VERSION, StatsInputError

RATIO_MEASURES = ("OR", "RR", "PETO", "ROM")


def _combine_counts(rows: list[Mapping]) -> tuple[float, float]:
    return sum(float(r["events"]) for r in rows), sum(float(r["total"]) for r in rows)


def _combine_means(rows: list[Mapping]) -> tuple[float, float, float]:
    """Combine groups into one arm (Cochrane Handbook 6.5.2.10, Table 6.5.a)."""
    n, m, sd = float(rows[0]["n"]), float(rows[0]["mean"]), float(rows[0]["sd"])
    for r in rows[1:]:
        n2, m2, sd2 = float(r["n"]), float(r["mean"]), float(r["sd"])
        total = n + n2
        var = ((n - 1) * sd * sd + (n2 - 1) * sd2 * sd2 + n * n2 / total * (m - m2) ** 2) / (total - 1)
        m = (n * m + n2 * m2) / total
        n, sd = total, math.sqrt(var)
    return n, m, sd


def _pick(rows: list[Mapping]) -> list[Mapping]:
    # a study reporting both an overall row and subgroup rows for an arm: the overall row counts
    overall = [r for r in rows if not r.get("subgroup")]
    return overall or rows


def build_study_rows(
    extraction: Iterable[Mapping], *, kind: str, arm: str = "treatment"
) -> tuple[list[dict], list[str]]:
    """Turn extraction rows of one outcome into the stats engine's study rows.

    Args:
        extraction: current extraction rows (keys study_id, arm, group_label, events, total, mean, sd, n,
            estimate, se, ci_lower, ci_upper, scale, subgroup, year).
        kind: the outcome kind: binary | proportion | continuous | generic.
        arm: for proportion outcomes, which arm's rows count besides `single` rows (the analysis' `arm`).
    Returns:
        (rows sorted by study id, notes) — rows in the engine's column names (binary: treat_events,
        treat_total, control_events, control_total; proportion: events, total; continuous: treat_mean,
        treat_sd, treat_n, control_*; generic: estimate with se or ci_lower/ci_upper, scale) plus `year` and
        `subgroup`; notes name studies left out (a missing arm) or arms combined from several groups
        (counts summed; means and SDs combined as in the Cochrane Handbook 6.5.2.10).
    """
    by_study: dict[str, dict[str, list[Mapping]]] = defaultdict(lambda: defaultdict(list))
    year: dict[str, Any] = {}
    subgroup: dict[str, str] = {}
    for r in extraction:
        sid = r["study_id"]
        by_study[sid][r["arm"]].append(r)
        if r.get("year") is not None:
            year[sid] = int(r["year"])
        if r.get("subgroup") and sid not in subgroup:
            subgroup[sid] = str(r["subgroup"])
    rows: list[dict] = []
    notes: list[str] = []
    for sid in sorted(by_study):
        arms = {a: _pick(rs) for a, rs in by_study[sid].items()}
        for a, rs in arms.items():
            if len(rs) > 1:
                notes.append(f"{sid}: {len(rs)} {a} groups combined into one arm")
        row: dict[str, Any] = {"study": sid}
        if kind == "binary":
            missing = [a for a in ("treatment", "control") if a not in arms]
            if missing:
                notes.append(f"{sid}: left out, no {' or '.join(missing)} arm extracted")
                continue
            row["treat_events"], row["treat_total"] = _combine_counts(arms["treatment"])
            row["control_events"], row["control_total"] = _combine_counts(arms["control"])
        elif kind == "proportion":
            use = arms.get("single", []) + arms.get(arm, [])
            if not use:
                notes.append(f"{sid}: left out, no single or {arm} arm extracted")
                continue
            row["events"], row["total"] = _combine_counts(use)
        elif kind == "continuous":
            missing = [a for a in ("treatment", "control") if a not in arms]
            if missing:
                notes.append(f"{sid}: left out, no {' or '.join(missing)} arm extracted")
                continue
            row["treat_n"], row["treat_mean"], row["treat_sd"] = _combine_means(arms["treatment"])
            row["control_n"], row["control_mean"], row["control_sd"] = _combine_means(arms["control"])
        elif kind == "generic":
            if "contrast" not in arms:
                notes.append(f"{sid}: left out, no contrast row extracted")
                continue
            c = arms["contrast"][0]
            if len(arms["contrast"]) > 1:
                notes.append(f"{sid}: several contrast rows; the first ({c.get('group_label') or 'unnamed'}) is used")
            row["estimate"] = c["estimate"]
            if c.get("se") is not None:
                row["se"] = c["se"]
            else:
                row["ci_lower"], row["ci_upper"] = c["ci_lower"], c["ci_upper"]
            row["scale"] = c.get("scale") or "difference"
        else:
            raise ValueError(f"unknown outcome kind {kind!r}")
        row["year"] = year.get(sid)
        row["subgroup"] = subgroup.get(sid)
        rows.append(row)
    return rows, notes


DISPLAY_ONLY_TSA_KEYS = ("effect_source",)  # reported beside the numbers, never changes them


def input_hash(rows: list[dict], settings: Mapping[str, Any], engine_version: str = ENGINE_VERSION) -> str:
    """Hash of everything a run's numbers depend on: study rows, analysis settings, engine version.

    Settings that only describe the numbers (the TSA's `effect_source`) are left out, so writing them down does
    not recompute and republish unchanged analyses.
    """
    settings = dict(settings)
    if isinstance(settings.get("tsa"), Mapping):
        settings["tsa"] = {k: v for k, v in settings["tsa"].items() if k not in DISPLAY_ONLY_TSA_KEYS}
    return hash_json({"rows": rows, "settings": settings, "engine": engine_version})


def _strip(result) -> dict:
    d = result.to_dict()
    d.pop("studies", None)
    return d


def _tsa(
    rows: list[dict], settings: Mapping[str, Any], kind: str, cum: list[tuple[str, Any]], engine_opts: dict
) -> dict | None:
    from livingmeta.stats import meta_analyze
    from livingmeta.stats.tsa import (
        TsaInputError,
        diversity,
        required_information_size_binary,
        required_information_size_continuous,
        trial_sequential_analysis,
    )

    tsa = settings.get("tsa")
    if not tsa or not tsa.get("enabled", True):
        return None
    alpha, beta = float(tsa.get("alpha", 0.05)), float(tsa.get("beta", 0.20))
    effect = tsa.get("anticipated_effect")
    direction_word = tsa.get("effect_direction", "reduction")
    if effect is None:
        raise TsaInputError("the TSA needs [analyses.tsa] anticipated_effect")
    if kind == "binary":
        if tsa.get("control_event_rate") is None:
            raise TsaInputError("a binary TSA needs [analyses.tsa] control_event_rate")
        ris0 = required_information_size_binary(tsa["control_event_rate"], effect, alpha, beta, direction_word)
        # a reduction makes ratio measures fall below 1 (log < 0) and differences negative
        direction = -1 if direction_word == "reduction" else 1
    elif kind == "continuous":
        if tsa.get("sd") is None:
            raise TsaInputError("a continuous TSA needs [analyses.tsa] sd")
        ris0 = required_information_size_continuous(effect, tsa["sd"], alpha, beta)
        direction = 1 if float(effect) >= 0 else -1
    else:
        raise TsaInputError(f"TSA is defined for binary and continuous outcomes, not {kind}")
    d2 = 0.0
    if tsa.get("heterogeneity_correction", "diversity") == "diversity" and len(rows) > 1:
        # D2 compares inverse-variance fixed and DerSimonian-Laird random-effects variances (Wetterslev 2009)
        measure = engine_opts["measure"] if engine_opts["measure"] != "PETO" else "OR"
        fe = meta_analyze(rows, measure=measure, method="FE", level=engine_opts["level"])
        re = meta_analyze(rows, measure=measure, method="DL", level=engine_opts["level"])
        d2 = diversity(None if re.se is None else re.se**2, None if fe.se is None else fe.se**2)
    ris = ris0 / (1 - d2) if d2 < 1 else math.inf
    points = [{"label": study, "information": r.participants, "z": r.statistic} for study, r in cum]
    return trial_sequential_analysis(
        points, ris, alpha=alpha, beta=beta, d2=d2, direction=direction, ris_unadjusted=ris0
    )


def _same_generic_columns(rows: list[dict], scale: str) -> list[dict]:
    """Give every contrast row an `se` when some rows report an SE and others a 95% CI.

    The engine reads one layout per table (all `se` or all CIs); a review whose trials report either must
    still pool. The SE is derived from the CI exactly as the engine does it (on the log scale for ratios,
    width / (2 * 1.959964): Cochrane Handbook 6.3.1, 6.3.2).
    """
    from livingmeta.stats.effect_sizes import CI_Z

    if not any("se" in r for r in rows) or all("se" in r for r in rows):
        return rows
    out = []
    for r in rows:
        if "se" in r:
            out.append({k: v for k, v in r.items() if k not in ("ci_lower", "ci_upper")})
            continue
        lo, hi = r.get("ci_lower"), r.get("ci_upper")
        if lo is None or hi is None:
            raise StatsInputError(
                f"study {r['study']}: the contrast row has neither se nor both ci_lower and ci_upper; fill them in"
            )
        lo, hi = float(lo), float(hi)
        if scale == "ratio":
            if not (lo > 0 and hi > 0):
                raise StatsInputError(
                    f"study {r['study']}: ci_lower {lo:g} / ci_upper {hi:g} are not ratios "
                    f"(ratios are > 0); give the CI on the ratio scale or use scale 'difference'"
                )
            lo, hi = math.log(lo), math.log(hi)
        if not hi > lo:
            raise StatsInputError(f"study {r['study']}: ci_upper {hi:g} must be above ci_lower {lo:g}")
        se = (hi - lo) / (2 * CI_Z)
        out.append({**{k: v for k, v in r.items() if k not in ("ci_lower", "ci_upper")}, "se": se})
    return out


def run_analysis(rows: list[dict], settings: Mapping[str, Any], kind: str) -> dict:
    """Run one configured analysis on its study rows.

    Args:
        rows: from build_study_rows (at least one).
        settings: the analysis from review.toml as a dict (measure, method, test, level, subgroups, tsa).
        kind: the outcome kind.
    Returns:
        the `analysis_runs.result` document: {"meta": MetaResult.to_dict(), "leave_one_out": [{"omitted",
        ...}], "cumulative": [{"added", "year", ...}] (by year, then study id), "subgroups": {by, subgroups,
        q_between*, moderator (the shared-tau2 test, see stats.subgroup_analysis)} or None,
        "tsa": TSA dict or None, "notes": [...], "inputs": the study rows pooled (the report's arm columns)}.
        A TSA that cannot be computed is None with a note; the pooled numbers are never withheld because of it.
    Raises:
        StatsInputError: the engine refused the rows or settings (message names study and column).
    """
    from livingmeta.stats import cumulative, leave_one_out, meta_analyze, subgroup_analysis
    from livingmeta.stats.tsa import TsaInputError

    opts: dict[str, Any] = {
        "measure": settings["measure"],
        "method": settings["method"],
        "test": settings.get("test", "z"),
        "level": settings.get("level", 0.95),
    }
    if kind == "generic":
        scales = sorted({r.get("scale") or "difference" for r in rows})
        if len(scales) > 1:
            raise StatsInputError("the contrast rows mix scales 'ratio' and 'difference'; give them all on one scale")
        opts["scale"] = scales[0]
        rows = [{k: v for k, v in r.items() if k != "scale"} for r in rows]
        rows = _same_generic_columns(rows, scales[0])
    engine_rows = [
        {k: v for k, v in r.items() if not (k == "subgroup" and v is None) and not (k == "year" and v is None)}
        for r in rows
    ]
    if any("year" not in r for r in engine_rows):
        engine_rows = [{k: v for k, v in r.items() if k != "year"} for r in engine_rows]
    if any("subgroup" not in r for r in engine_rows):
        engine_rows = [{k: v for k, v in r.items() if k != "subgroup"} for r in engine_rows]
    meta = meta_analyze(engine_rows, **opts)
    # nothing downstream reads per-subset tau2 CIs (reports use estimates, CIs and k), and their Q-profile
    # root finding was most of the time of a large update: stored leave-one-out/cumulative rows hold None
    loo = [{"omitted": s, **_strip(r)} for s, r in leave_one_out(engine_rows, tau2_ci=False, **opts)]
    years = {r["study"]: r.get("year") for r in rows}
    # cumulative order: publication year, ties and unknown years by study id (rows are sorted by study id)
    order = sorted(range(len(rows)), key=lambda i: (rows[i].get("year") is None, rows[i].get("year") or 0, i))
    cum = cumulative(engine_rows, order=order, tau2_ci=False, **opts)
    cum_out = [{"added": s, "year": years.get(s), **_strip(r)} for s, r in cum]
    notes: list[str] = []
    subgroups = None
    if settings.get("subgroups"):
        if all(r.get("subgroup") for r in rows):
            sg = subgroup_analysis(engine_rows, by="subgroup", **opts)
            subgroups = {
                "by": "subgroup",
                "subgroups": {g: _strip(r) for g, r in sg["subgroups"].items()},
                "q_between": sg["q_between"],
                "q_between_df": sg["q_between_df"],
                "q_between_p": sg["q_between_p"],
                "moderator": sg["moderator"],
            }
        else:
            missing = [r["study"] for r in rows if not r.get("subgroup")]
            notes.append(f"subgroup analysis skipped: no subgroup extracted for {', '.join(missing)}")
    try:
        tsa = _tsa(engine_rows, settings, kind, cum, opts)
    except (TsaInputError, StatsInputError) as e:
        tsa = None
        notes.append(f"TSA not computed: {e}")
    inputs = [{k: v for k, v in r.items() if k not in ("subgroup",)} for r in rows]
    return {
        "meta": meta.to_dict(),
        "leave_one_out": loo,
        "cumulative": cum_out,
        "subgroups": subgroups,
        "tsa": tsa,
        "notes": notes,
        "inputs": inputs,
    }
