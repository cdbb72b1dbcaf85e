"""Small-study effects: Egger's regression test and trim-and-fill.

References: Egger M, Davey Smith G, Schneider M, Minder C (1997) BMJ 315:629-634;
Duval S, Tweedie R (2000) Biometrics 56:455-463 and J Am Stat Assoc 95:89-98 (trim-and-fill,
L0 estimator); trimfill() and regtest(model = "rma" / "lm") in metafor 3.8-1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from livingmeta.stats import distributions as stats  # scipy.stats costs ~1 s to import; same floats

from livingmeta.stats.analysis import Analysis, _split_control
from livingmeta.stats.effect_sizes import EffectSizes
from livingmeta.stats.errors import StatsInputError
from livingmeta.stats.inputs import StudyTable
from livingmeta.stats.pooling import fit_subsets
from livingmeta.stats.regression import fit_meta_regression, tau2_regression
from livingmeta.stats.result import MetaResult, clean


def egger_test(result_or_rows: Any, model: str = "lm", **kw) -> dict:
    """Egger's regression test for funnel-plot asymmetry, as metafor's regtest() with predictor "sei".

    model="lm" (Egger 1997): the standardised effect yi/sei is regressed on precision 1/sei by
    ordinary least squares; the intercept measures asymmetry and is tested with t on k-2 df (identical to
    regtest(..., model="lm"), whose coefficient on sei is this intercept).

    model="rma" (regtest's default): the meta-regression yi ~ sei with the analysis' own model (its tau2
    estimator for random effects, FE for FE, MH and Peto) is fitted, and the coefficient of sei is tested
    with z (t on k-2 df under Knapp-Hartung); ``limit`` is the intercept, the estimate as sei -> 0, with
    its confidence interval.

    Parameters
    ----------
    result_or_rows : MetaResult or rows
        A result (its studies' yi/vi are used, and for model="rma" its method and test; the confidence
        level of the limit estimate is `level=`, default 0.95) or rows plus meta_analyze keyword arguments.
    model : "lm" or "rma"

    Returns
    -------
    model="lm": dict(model, intercept, se, statistic, p_value, df, k, slope).
    model="rma": dict(model, method, test, statistic, p_value, df (None for z), k, slope, slope_se,
    limit, limit_ci_lower, limit_ci_upper, tau2, level). Values are None when k < 3.
    """
    if model not in ("lm", "rma"):
        raise StatsInputError(
            f"Egger model {model!r} is unknown; use 'rma' (meta-regression, metafor's default) "
            f"or 'lm' (Egger 1997's weighted regression)"
        )
    if isinstance(result_or_rows, MetaResult):
        pairs = [(s["yi"], s["vi"]) for s in result_or_rows.studies if s["yi"] is not None]
        method, test = result_or_rows.method, result_or_rows.test
        level = kw.get("level", 0.95)
    else:
        analysis = Analysis(result_or_rows, **_split_control(kw))
        ok = np.isfinite(analysis.es.yi)
        pairs = list(zip(analysis.es.yi[ok], analysis.es.vi[ok]))
        method, test, level = analysis.method, analysis.test, analysis.level
    k = len(pairs)
    yi = np.array([p[0] for p in pairs], float)
    sei = np.sqrt(np.array([p[1] for p in pairs], float))
    if model == "rma":
        return _egger_rma(yi, sei, method, test, level, kw.get("control"))
    out = {
        "model": "lm",
        "intercept": None,
        "se": None,
        "statistic": None,
        "p_value": None,
        "df": None,
        "k": k,
        "slope": None,
    }
    if k < 3:
        return out
    X = np.column_stack([np.ones(k), 1 / sei])
    z = yi / sei
    beta, *_ = np.linalg.lstsq(X, z, rcond=None)
    resid = z - X @ beta
    df = k - 2
    sigma2 = resid @ resid / df
    cov = sigma2 * np.linalg.inv(X.T @ X)
    se = float(np.sqrt(cov[0, 0]))
    t = beta[0] / se if se > 0 else np.nan
    out.update(
        intercept=clean(beta[0]),
        se=clean(se),
        statistic=clean(t),
        p_value=clean(2 * stats.t.sf(abs(t), df)),
        df=df,
        slope=clean(beta[1]),
    )
    return out


def _egger_rma(yi, sei, method, test, level, control):
    k = len(yi)
    fit_method = "FE" if method in ("MH", "PETO") else method
    out = {
        "model": "rma",
        "method": fit_method,
        "test": test,
        "statistic": None,
        "p_value": None,
        "df": None,
        "k": k,
        "slope": None,
        "slope_se": None,
        "limit": None,
        "limit_ci_lower": None,
        "limit_ci_upper": None,
        "tau2": None,
        "level": level,
    }
    if k < 3:
        return out
    fit = fit_meta_regression(yi, sei**2, np.column_stack([np.ones(k), sei]), fit_method, test, level, control=control)
    out.update(
        statistic=clean(fit.statistic[1]),
        p_value=clean(fit.p_value[1]),
        df=fit.qe_df if test == "knha" else None,
        slope=clean(fit.b[1]),
        slope_se=clean(fit.se[1]),
        limit=clean(fit.b[0]),
        limit_ci_lower=clean(fit.ci_lower[0]),
        limit_ci_upper=clean(fit.ci_upper[0]),
        tau2=clean(fit.tau2),
    )
    return out


def _generic_table(names, yi, vi, template: StudyTable | None) -> StudyTable:
    frame = pd.DataFrame({"study": names, "estimate": yi, "se": np.sqrt(vi)})
    return StudyTable(
        kind="generic",
        studies=tuple(names),
        values={"estimate": yi, "se": np.sqrt(vi)},
        locations=tuple(f"row {i + 1}" for i in range(len(names))),
        frame=frame,
    )


def trim_and_fill(rows: Any, side: str | None = None, maxiter: int = 100, **kw) -> dict:
    """Duval and Tweedie's trim-and-fill with the L0 estimator, as metafor's trimfill().

    Parameters
    ----------
    rows, **kw : as meta_analyze (MH and PETO are replaced by inverse-variance FE, with a warning,
        because trim-and-fill re-pools study effect sizes).
    side : "left", "right" or None
        Side on which studies are missing; None chooses it as metafor does (from the sign of the
        slope of yi on sqrt(vi) in a meta-regression fitted with the same method: negative -> right).
    maxiter : int
        Iterations of the trim-and-fill loop.

    Returns
    -------
    dict(k0, side, result, filled): k0 the estimated number of missing studies, `result` the
    MetaResult of the observed plus filled studies (labelled "Filled 1", ...), `filled` a list of
    {study, yi, vi} for the imputed studies (mirror images of the k0 most extreme studies about the
    trimmed pooled estimate).
    """
    kw = _split_control(kw)
    notes = []
    if str(kw.get("method", "MH")).upper() in ("MH", "PETO"):
        notes.append(
            f"trim-and-fill re-pools study effect sizes: method {str(kw.get('method', 'MH')).upper()} "
            f"replaced by inverse-variance FE"
        )
        if str(kw.get("method")).upper() == "PETO":
            kw["measure"] = "PETO"  # re-pool the studies' Peto log odds ratios, the effects a Peto analysis shows
        kw["method"] = "FE"
    analysis = Analysis(rows, **kw)
    ok = np.isfinite(analysis.es.yi)
    names = [s for s, good in zip(analysis.table.studies, ok) if good]
    yi0, vi0 = analysis.es.yi[ok], analysis.es.vi[ok]
    ni0 = None if analysis.es.ni is None else analysis.es.ni[ok]
    k = len(yi0)
    if k < 2:
        raise StatsInputError(f"trim-and-fill needs at least 2 studies with an effect size; there are {k}")
    method = analysis.method

    def pool(y, v, n_arr, labels, extra):
        table = _generic_table(labels, y, v, None)
        es = EffectSizes(yi=y, vi=v, ni=n_arr, excluded={})
        return fit_subsets(
            table,
            es,
            np.ones((1, len(y)), bool),
            analysis.measure,
            method,
            analysis.test,
            analysis.level,
            analysis.control,
            analysis.scale,
            [extra],
        )[0]

    if side is None:
        X = np.column_stack([np.ones(k), np.sqrt(vi0)])
        t = tau2_regression(yi0, vi0, X, method)
        w = 1 / (vi0 + t)
        b = np.linalg.solve(X.T @ (w[:, None] * X), X.T @ (w * yi0))
        side = "right" if b[1] < 0 else "left"
    elif side not in ("left", "right"):
        raise StatsInputError(f"side={side!r} is unknown; use 'left', 'right' or None")
    y = -yi0 if side == "right" else yi0.copy()
    ix = np.argsort(y, kind="stable")
    y, v = y[ix], vi0[ix]
    k0_prev, k0, it = -1, 0, 0
    beta = 0.0
    while k0 != k0_prev:
        k0_prev = k0
        it += 1
        if it > maxiter:
            raise StatsInputError("trim-and-fill did not converge; give side='left' or 'right' explicitly")
        yt, vt_ = y[: k - k0], v[: k - k0]
        trimmed = pool(yt, vt_, None if ni0 is None else ni0[ix][: k - k0], [f"s{j}" for j in range(len(yt))], [])
        beta = float(trimmed.estimate)
        yc = y - beta
        ranks = np.empty(k)
        ranks[np.argsort(np.abs(yc), kind="stable")] = np.arange(1, k + 1)
        sr = np.sum(ranks[yc > 0])
        k0 = int(max(0, np.round((4 * sr - k * (k + 1)) / (2 * k - 1))))
    filled = []
    if k0 > 0:
        mirrored = 2 * beta - y[k - k0 :]
        fill_y = -mirrored if side == "right" else mirrored
        fill_v = v[k - k0 :]
        labels = names + [f"Filled {j + 1}" for j in range(k0)]
        fill_n = None if ni0 is None else np.concatenate([ni0, ni0[ix][k - k0 :]])
        result = pool(
            np.concatenate([yi0, fill_y]),
            np.concatenate([vi0, fill_v]),
            fill_n,
            labels,
            notes + [f"{k0} filled stud{'y' if k0 == 1 else 'ies'} on the {side} side"],
        )
        filled = [{"study": labels[k + j], "yi": clean(fill_y[j]), "vi": clean(fill_v[j])} for j in range(k0)]
    else:
        result = pool(yi0, vi0, ni0, names, notes)
    return {"k0": k0, "side": side, "result": result, "filled": filled}
