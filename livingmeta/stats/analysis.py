"""The public analyses: meta_analyze, leave_one_out, cumulative and subgroup_analysis."""

from __future__ import annotations

from typing import Any

import numpy as np
from livingmeta.stats import distributions as stats  # scipy.stats costs ~1 s to import; same floats

from livingmeta.stats.effect_sizes import MEASURES_BY_KIND, check_measure, compute_effect_sizes
from livingmeta.stats.errors import StatsInputError
from livingmeta.stats.inputs import StudyTable, parse_table
from livingmeta.stats.pooling import METHODS, fit_subsets
from livingmeta.stats.regression import fit_meta_regression
from livingmeta.stats.result import MetaResult, clean
from livingmeta.stats.updating import SubsetLayout

TESTS = ("z", "knha")
CONTROL_KEYS = ("threshold", "maxiter", "stepadj", "tau2_max")


class Analysis:
    """Validated inputs of one analysis: the table, effect sizes and options."""

    def __init__(
        self,
        rows,
        measure="OR",
        method="MH",
        test="z",
        level=0.95,
        zero_correction=None,
        kind=None,
        scale="difference",
        add=None,
        to=None,
        drop00=None,
        control=None,
        tau2_ci=True,
        **unknown,
    ):
        if unknown:
            raise StatsInputError(
                f"unknown option(s) {', '.join(sorted(unknown))}; known options are kind, "
                f"scale, add, to, drop00, zero_correction, control, tau2_ci, "
                f"{', '.join(CONTROL_KEYS)}"
            )
        if not isinstance(tau2_ci, (bool, np.bool_)):
            raise StatsInputError(f"tau2_ci={tau2_ci!r} must be True or False")
        self.tau2_ci = bool(tau2_ci)
        self.table: StudyTable = parse_table(rows, kind=kind)
        measure = str(measure).upper()
        method = str(method).upper()
        test = str(test).lower()
        known = [m for ms in MEASURES_BY_KIND.values() for m in ms]
        if measure not in known:
            raise StatsInputError(f"unknown measure {measure!r}; use one of {', '.join(known)}")
        check_measure(self.table.kind, measure)
        if method not in METHODS:
            raise StatsInputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
        if test not in TESTS:
            raise StatsInputError(f"unknown test {test!r}; use 'z' or 'knha' (Knapp-Hartung)")
        if method == "MH" and measure not in ("OR", "RR", "RD"):
            raise StatsInputError(
                f"method MH (Mantel-Haenszel) pools 2x2 counts for OR, RR or RD, not {measure}; "
                f"use FE or a random-effects method (DL, REML, ...)"
            )
        if method == "PETO" and measure not in ("OR", "PETO"):
            raise StatsInputError(
                f"method PETO pools 2x2 counts as a Peto odds ratio (measure OR or PETO), "
                f"not {measure}; use FE or a random-effects method"
            )
        if method in ("MH", "PETO") and test == "knha":
            raise StatsInputError(
                f"Knapp-Hartung (test='knha') applies to inverse-variance random-effects models, "
                f"not {method}; use test='z'"
            )
        try:
            level = float(level)
        except (TypeError, ValueError):
            raise StatsInputError(f"level={level!r} is not a number; use e.g. 0.95") from None
        if level > 1:
            level = level / 100  # metafor's convention (level=95) is accepted too
        if not 0 < level < 1:
            raise StatsInputError(f"level={level!r} must lie between 0 and 1 (e.g. 0.95)")
        zc = _zero_options(zero_correction, add, to, drop00, method)
        ctrl = dict(control or {})
        for key in ctrl:
            if key not in CONTROL_KEYS:
                raise StatsInputError(f"unknown control option {key!r}; use {', '.join(CONTROL_KEYS)}")
        self.measure, self.method, self.test, self.level = measure, method, test, level
        self.scale, self.control, self.zero = scale, ctrl, zc
        # rma.peto's per-study effects are Peto's one-step log odds ratios ((O - E) / V, variance 1 / V), not
        # ordinary log odds ratios: the study list, forest plots and Egger's test must show what was pooled
        self.es = compute_effect_sizes(self.table, "PETO" if method == "PETO" else measure, scale=scale, **zc)

    def fit(self, members: np.ndarray, extra=None, layout: SubsetLayout | None = None) -> list[MetaResult]:
        return fit_subsets(
            self.table,
            self.es,
            members,
            self.measure,
            self.method,
            self.test,
            self.level,
            self.control,
            self.scale,
            extra,
            tau2_ci=self.tau2_ci,
            layout=layout,
        )


def _zero_options(zero_correction, add, to, drop00, method):
    # rma.mh/rma.peto drop double-zero studies from the per-study effects by default; rma.uni keeps them
    opts = {"add": 0.5, "to": "only0", "drop00": method in ("MH", "PETO")}
    if zero_correction is not None:
        if isinstance(zero_correction, dict):
            unknown = set(zero_correction) - {"add", "to", "drop00"}
            if unknown:
                raise StatsInputError(
                    f"zero_correction has unknown key(s) {', '.join(sorted(unknown))}; use add, to, drop00"
                )
            opts.update(zero_correction)
        elif isinstance(zero_correction, str):
            opts["to"] = zero_correction
        else:
            opts["add"] = zero_correction
    for key, value in (("add", add), ("to", to), ("drop00", drop00)):
        if value is not None:
            opts[key] = value
    opts["drop00"] = bool(opts["drop00"])
    return opts


def _split_control(kw: dict) -> dict:
    kw = dict(kw)
    control = dict(kw.pop("control", None) or {})
    for key in CONTROL_KEYS:
        if key in kw:
            control[key] = kw.pop(key)
    kw["control"] = control
    return kw


def meta_analyze(
    rows: Any,
    measure: str = "OR",
    method: str = "MH",
    test: str = "z",
    level: float = 0.95,
    zero_correction: Any = None,
    tau2_ci: bool = True,
    **options,
) -> MetaResult:
    """Pool the studies in `rows`.

    Parameters
    ----------
    rows : DataFrame or list of dicts
        Study data with the column names of shared/reference/README.md (binary, proportion,
        continuous or generic); optional ``year`` and other columns are carried along.
    measure : str
        RR, OR, RD, PETO, PR, PLO, PAS, PFT, MD, SMD, ROM or GEN.
    method : str
        FE (inverse variance), MH (Mantel-Haenszel), PETO, or a random-effects tau2 estimator:
        DL, REML, ML, PM, SJ, HE, EB.
    test : str
        "z" or "knha" (Knapp-Hartung: t with k-1 df, also used for the prediction interval).
    level : float
        Confidence level, e.g. 0.95.
    zero_correction : None, float, str or dict
        None: metafor's defaults (add 0.5 to all cells of tables with a zero; double-zero studies kept,
        except for MH/PETO, whose per-study effects drop them as rma.mh/rma.peto do; MH and Peto pool raw
        counts regardless). A number sets `add`, a string sets `to`, a dict may set add/to/drop00.
    tau2_ci : bool
        Compute the Q-profile confidence interval of tau2 (random-effects methods). False leaves
        tau2_ci_lower/tau2_ci_upper None and skips the root finding.
    **options
        kind (binary/proportion/continuous/generic), scale ("ratio"/"difference", GEN only),
        add, to, drop00, and control settings threshold (1e-5), maxiter (100), stepadj (1), tau2_max (100).

    Returns
    -------
    MetaResult. If REML/ML/EB/PM fail to converge, tau2 falls back to DL and `warnings` says so.
    Studies that cannot contribute are listed with yi None and named in `warnings`.

    Raises
    ------
    StatsInputError for bad rows or options (message names row and column).

    Reference: Viechtbauer W (2010) J Stat Softw 36(3) — numbers match metafor 3.8-1.
    """
    analysis = Analysis(rows, measure, method, test, level, zero_correction, tau2_ci=tau2_ci, **_split_control(options))
    k = len(analysis.table)
    return analysis.fit(np.ones((1, k), bool))[0]


def leave_one_out(rows: Any, tau2_ci: bool = True, **kw) -> list[tuple[str, MetaResult]]:
    """Re-run the analysis leaving out each study in turn.

    Parameters
    ----------
    rows, **kw : as meta_analyze.
    tau2_ci : bool
        As meta_analyze: False skips the Q-profile interval of tau2 for every subset (most of the time
        of a random-effects leave-one-out at large k) and leaves tau2_ci_lower/upper None.

    Returns
    -------
    list of (left-out study label, MetaResult), in row order; empty when there is only one study.
    Each result equals meta_analyze on that subset (to the last digits: sums are updated rather than
    recomputed). The closed-form parts (FE, MH, Peto, Cochran's Q, DL, HE, the SJ and REML/ML/EB starting
    values) are updated in O(k) per subset (livingmeta/stats/updating.py); the iterative estimators run
    exactly the iterations a separate fit would, all subsets at once.
    Reference: metafor's leave1out() (Viechtbauer 2010, J Stat Softw 36(3)).
    """
    analysis = Analysis(rows, tau2_ci=tau2_ci, **_split_control(kw))
    k = len(analysis.table)
    if k < 2:
        return []
    layout = SubsetLayout("leave_one_out", k)
    results = analysis.fit(layout.members(), layout=layout)
    return list(zip(analysis.table.studies, results))


def cumulative(rows: Any, order: Any = None, tau2_ci: bool = True, **kw) -> list[tuple[str, MetaResult]]:
    """Cumulative meta-analysis: add one study at a time.

    Parameters
    ----------
    rows, **kw : as meta_analyze.
    order : None, str or sequence
        None: by the ``year`` column when present (stable, ties keep row order), else row order.
        A column name: sorted by that column. A sequence of study labels or 0-based row positions:
        exactly that order (each study once).
    tau2_ci : bool
        As meta_analyze: False skips the Q-profile interval of tau2 at every step.

    Returns
    -------
    list of (label of the study added at that step, MetaResult of the studies so far). Each result
    equals meta_analyze on those studies; closed-form sums are running sums (see leave_one_out).
    Reference: Lau J et al. (1992) N Engl J Med 327:248-254.
    """
    analysis = Analysis(rows, tau2_ci=tau2_ci, **_split_control(kw))
    table = analysis.table
    k = len(table)
    perm = _order(table, order)
    layout = SubsetLayout("cumulative", k, perm)
    results = analysis.fit(layout.members(), layout=layout)
    return [(table.studies[perm[j]], results[j]) for j in range(k)]


def _order(table: StudyTable, order: Any) -> np.ndarray:
    k = len(table)
    if order is None:
        if table.year is not None:
            return np.argsort(table.year, kind="stable")
        return np.arange(k)
    if isinstance(order, str):
        if order == "year" and table.year is not None:
            return np.argsort(table.year, kind="stable")
        frame = table.frame
        if order not in frame.columns:
            raise StatsInputError(
                f"cumulative order column {order!r} does not exist; use one of {', '.join(map(str, frame.columns))}"
            )
        values = frame[order].tolist()
        keys = []
        for i, v in enumerate(values):
            try:
                keys.append(float(v))
            except (TypeError, ValueError):
                raise StatsInputError(
                    f"{table.locations[i]}, column '{order}': {v!r} is not a number; "
                    f"the cumulative order column must be numeric"
                ) from None
        return np.argsort(np.asarray(keys), kind="stable")
    seq = list(order)
    if all(isinstance(x, (int, np.integer)) for x in seq):
        perm = [int(x) for x in seq]
    else:
        position: dict[str, int] = {}
        for i, name in enumerate(table.studies):
            if name in position:
                raise StatsInputError(
                    f"study label {name!r} appears twice ({table.locations[position[name]]} and "
                    f"{table.locations[i]}); give an order by row positions instead"
                )
            position[name] = i
        perm = []
        for name in seq:
            if name not in position:
                raise StatsInputError(f"cumulative order names study {name!r}, which is not in the data")
            perm.append(position[name])
    if sorted(perm) != list(range(k)):
        raise StatsInputError(f"cumulative order must list each of the {k} studies exactly once")
    return np.asarray(perm)


def subgroup_analysis(rows: Any, by: str, **kw) -> dict:
    """Pool each subgroup separately and test for subgroup differences.

    Parameters
    ----------
    rows, **kw : as meta_analyze.
    by : str
        Column holding the subgroup of each study (no empty cells).

    Returns
    -------
    dict with ``by``, ``subgroups`` {value: MetaResult} (in order of first appearance), ``overall``
    (MetaResult of all studies), ``q_between``, ``q_between_df``, ``q_between_p``: the test for subgroup
    differences, Q = sum w_g (est_g - est_w)^2 with w_g = 1/se_g^2 over subgroups with an estimate,
    chi-square with G-1 df (None when fewer than two subgroups have an estimate); and ``moderator``: the
    same question with one tau2 shared by the subgroups, as metafor's rma(yi, vi, mods = ~ factor(by)):
    dict(method, test, k, groups, tau2, qm, qm_df, qm_df2, qm_p, qe, qe_df, qe_p, note), see
    _moderator_test.

    Reference: Borenstein M et al. (2009) Introduction to Meta-Analysis, ch. 19 (separate tau2 per
    subgroup, and a pooled tau2); the Cochrane Handbook's test for subgroup differences; rma.uni() with
    moderators in metafor 3.8-1 (shared tau2).
    """
    analysis = Analysis(rows, **_split_control(kw))
    table = analysis.table
    if by not in table.frame.columns:
        raise StatsInputError(
            f"subgroup column {by!r} does not exist; use one of {', '.join(map(str, table.frame.columns))}"
        )
    labels = []
    for i, v in enumerate(table.frame[by].tolist()):
        if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "":
            raise StatsInputError(
                f"{table.locations[i]}, column '{by}': the subgroup is empty; fill it in or remove the row"
            )
        labels.append(str(v).strip())
    groups = list(dict.fromkeys(labels))
    members = np.array([[lab == g for lab in labels] for g in groups] + [[True] * len(labels)])
    results = analysis.fit(members)
    subgroups = dict(zip(groups, results[:-1]))
    est = np.array([np.nan if r.estimate is None else r.estimate for r in results[:-1]], float)
    se = np.array([np.nan if r.se is None else r.se for r in results[:-1]], float)
    ok = np.isfinite(est) & np.isfinite(se) & (se > 0)
    q_between = q_df = q_p = None
    if ok.sum() >= 2:
        w = 1 / se[ok] ** 2
        mu = np.sum(w * est[ok]) / np.sum(w)
        q_between = float(np.sum(w * (est[ok] - mu) ** 2))
        q_df = int(ok.sum() - 1)
        q_p = float(stats.chi2.sf(q_between, q_df))
    return {
        "by": by,
        "subgroups": subgroups,
        "overall": results[-1],
        "q_between": clean(q_between),
        "q_between_df": q_df,
        "q_between_p": clean(q_p),
        "moderator": _moderator_test(analysis, labels, groups),
    }


def _moderator_test(analysis: Analysis, labels: list[str], groups: list[str]) -> dict:
    """The subgroup factor as a moderator with one tau2 shared by all subgroups, as metafor's
    rma(yi, vi, mods = ~ factor(g), method, test): QM (G - 1 df; F with G - 1 and k - G df under
    Knapp-Hartung) tests the subgroup differences, QE (k - G df) the residual heterogeneity.

    MH and Peto analyses re-pool their per-study effects (Peto's log odds ratios for PETO) with
    common-effect weights. Returns the numbers, or None for them with ``note`` saying why.
    """
    es = analysis.es
    ok = np.isfinite(es.yi)
    used = [g for g in groups if any(ok[i] and labels[i] == g for i in range(len(labels)))]
    out: dict[str, Any] = {
        "method": "FE" if analysis.method in ("MH", "PETO") else analysis.method,
        "test": analysis.test,
        "k": int(ok.sum()),
        "groups": used,
        "tau2": None,
        "qm": None,
        "qm_df": None,
        "qm_df2": None,
        "qm_p": None,
        "qe": None,
        "qe_df": None,
        "qe_p": None,
        "note": None,
    }
    if analysis.method in ("MH", "PETO"):
        out["note"] = (
            f"{analysis.method} pools raw counts; the moderator model re-pools the studies' "
            f"{'Peto log odds ratios' if analysis.method == 'PETO' else 'effect sizes'} with inverse-variance "
            f"common-effect weights"
        )
    k, p = int(ok.sum()), len(used)
    if p < 2:
        out["note"] = "fewer than two subgroups have a study with an effect size: no subgroup difference to test"
        return out
    if k <= p:
        out["note"] = (
            f"{k} studies with an effect size in {p} subgroups: the moderator model needs more studies than subgroups"
        )
        return out
    y, v = es.yi[ok], es.vi[ok]
    lab = [labels[i] for i in range(len(labels)) if ok[i]]
    X = np.column_stack([np.ones(k)] + [[1.0 if g == level else 0.0 for g in lab] for level in used[1:]])
    fit = fit_meta_regression(y, v, X, out["method"], analysis.test, analysis.level, control=analysis.control)
    out.update(
        tau2=clean(fit.tau2),
        qm=clean(fit.qm),
        qm_df=fit.qm_df,
        qm_df2=fit.qm_df2,
        qm_p=clean(fit.qm_p),
        qe=clean(fit.qe),
        qe_df=fit.qe_df,
        qe_p=clean(fit.qe_p),
    )
    return out
