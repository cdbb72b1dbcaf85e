"""Metrics of a screening order: how early the included records were found.

All functions take ``order``: the labels (1 included, 0 excluded) of the records in the order
they were screened, covering every record that counts (in a simulation: all records except
the prior knowledge). Throughout:

- ``N`` = ``len(order)``: the records screened after the priors (priors excluded, as in
  ASReview's simulation metrics).
- ``R`` = ``sum(order)``: the included records among them.
- a record's *position* is 1-based: the number of records screened up to and including it.

All results are fractions (not percentages).

Two definitions of WSS@95 are in use, and figures are only comparable under the same one:

- ``wss95`` (:func:`wss_asreview`): ASReview insights' definition, the one that reproduces the
  reference figures in shared/datasets/screening/README.md and so the one benchmarks compare
  against. Target k = floor(0.95 R) included records, work saved measured against the expected
  random curve.
- ``wss95_strict`` (:func:`wss_strict`): Cohen et al.'s (N - n95)/N - 0.05 with n95 the position
  where recall first reaches at least 95% (k = ceil(0.95 R)). The two can differ by tens of
  percentage points either way on one order, most when R is small (R = 15: strict needs all 15
  included records, ASReview's 14).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["atd", "compute_metrics", "loss", "n_at_recall", "rrf", "wss_asreview", "wss_strict"]


def _as_order(order: Sequence[int] | np.ndarray) -> np.ndarray:
    arr = np.asarray(order, dtype=np.int64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("a screening order must be a non-empty 1-D sequence of 0/1 labels")
    if not np.isin(arr, (0, 1)).all():
        raise ValueError("a screening order may only contain labels 0 (excluded) and 1 (included)")
    if arr.sum() == 0:
        raise ValueError("a screening order needs at least one included record to measure recall")
    return arr


def n_at_recall(order: Sequence[int] | np.ndarray, percent: int = 95) -> int:
    """Number of records screened when ``percent``% of the included ones have been found.

    Parameters
    ----------
    order : sequence of 0/1 labels in screening order
    percent : int
        Target recall in percent.

    Returns
    -------
    int
        The position of the k-th included record, k = ceil(percent/100 * R): the first moment
        recall is at least the target (Cohen et al. 2006). Integer arithmetic avoids float
        rounding deciding k (0.95 * 20 must give 19, not 19.000000000000004 -> 20).
    """
    arr = _as_order(order)
    r = int(arr.sum())
    k = max(1, -(-percent * r // 100))
    return int(np.flatnonzero(arr)[k - 1] + 1)


def wss_strict(order: Sequence[int] | np.ndarray, percent: int = 95) -> float:
    """Work saved over sampling at recall of at least ``percent``% (``wss95_strict``).

    WSS@95 = (N - n95) / N - (1 - 0.95), with N the records screened after the priors and n95
    from :func:`n_at_recall`: the position of the ceil(0.95 R)-th included record, so recall
    really is at least 95% (Cohen AM et al. 2006, J Am Med Inform Assoc 13:206-219,
    doi:10.1197/jamia.M1929). In [-0.05, 0.95]; negative for an order worse than random
    screening. Not the definition of the README's reference figures: see :func:`wss_asreview`.

    Parameters
    ----------
    order : sequence of 0/1 labels in screening order
    percent : int
        Target recall in percent.

    Returns
    -------
    float
    """
    arr = _as_order(order)
    n = arr.size
    return (n - n_at_recall(arr, percent)) / n - (1 - percent / 100)


def wss_asreview(order: Sequence[int] | np.ndarray, percent: int = 95) -> float:
    """Work saved over sampling as ASReview insights computes it (``wss95``, the benchmark's).

    This is the definition that reproduces the reference figures in
    shared/datasets/screening/README.md (ASReview LAB 3.0.8 ELAS u4), so benchmark targets are
    stated in it. Two differences from :func:`wss_strict`: the target is k = floor(percent/100 * R)
    included records (at least 1; the last recall level not above the target, so with R = 15 it
    is 14, recall 93%), and the work saved is measured against the expected random curve
    ``round(linspace(0, R, N))``: (j_random(k) - (n_k - 1)) / N, where n_k is the position of
    the k-th included record and j_random(k) the first 0-based index at which the random curve
    reaches k. With R = 15 the two definitions can differ by 20 percentage points, so figures
    are only comparable under the same definition. In (-1, 1).

    Parameters
    ----------
    order : sequence of 0/1 labels in screening order
    percent : int
        Target recall in percent.

    Returns
    -------
    float

    Reference: asreview-insights ``_wss_values`` / ``_slice_metric``
    (https://github.com/asreview/asreview-insights).
    """
    arr = _as_order(order)
    n, r = arr.size, int(arr.sum())
    k = max(1, percent * r // 100)
    n_k = int(np.flatnonzero(arr)[k - 1] + 1)
    random_found = np.round(np.linspace(0, r, n))
    j_random = int(np.searchsorted(random_found, k))
    return (j_random - (n_k - 1)) / n


def rrf(order: Sequence[int] | np.ndarray, percent: int = 10) -> float:
    """Relevant records found: share of included records among the first ``percent``% screened.

    The first floor(percent/100 * N) records count, as in ASReview insights' recall at a
    given share of records screened.

    Parameters
    ----------
    order : sequence of 0/1 labels in screening order
    percent : int
        Share of the records screened, in percent.

    Returns
    -------
    float
        Recall in [0, 1].
    """
    arr = _as_order(order)
    n_screened = percent * arr.size // 100
    return float(arr[:n_screened].sum() / arr.sum())


def atd(order: Sequence[int] | np.ndarray) -> float:
    """Average time to discovery, as a share of the records.

    Mean over included records of position / N (Ferdinands et al. 2023, Syst Rev 12:100,
    doi:10.1186/s13643-023-02257-7; the position is 1-based, as in ASReview insights).

    Parameters
    ----------
    order : sequence of 0/1 labels in screening order

    Returns
    -------
    float
        In (0, 1]; 0 would mean every included record was found before screening anything.
    """
    arr = _as_order(order)
    positions = np.flatnonzero(arr) + 1
    return float(positions.mean() / arr.size)


def loss(order: Sequence[int] | np.ndarray) -> float:
    """Normalised area between the perfect recall curve and the actual one.

    The recall curve is the count of included records found against the number screened
    (x = 1..N), integrated with the trapezoidal rule; 0 is a perfect order (all included first),
    1 the worst (all included last). Same definition as ASReview insights' ``loss``.

    Parameters
    ----------
    order : sequence of 0/1 labels in screening order

    Returns
    -------
    float
        In [0, 1].
    """
    arr = _as_order(order)
    n, r = arr.size, int(arr.sum())
    found = np.cumsum(arr).astype(float)
    actual = float(((found[1:] + found[:-1]) / 2).sum())
    best = n * r - 0.5 - r * r / 2
    worst = r * r / 2
    # best > worst whenever some record is excluded; when all are included best == actual,
    # so the quotient is 0 without a special case.
    return (best - actual) / (best - worst)


def compute_metrics(order: Sequence[int] | np.ndarray) -> dict[str, float]:
    """WSS@95, RRF@10, ATD and loss of a screening order.

    Parameters
    ----------
    order : sequence of 0/1 labels in screening order

    Returns
    -------
    dict
        ``{"wss95", "wss95_strict", "rrf10", "atd", "loss"}`` as floats (fractions):
        ``wss95`` is :func:`wss_asreview` (ASReview's definition, the one of the README's
        reference figures), ``wss95_strict`` is :func:`wss_strict` (recall >= 95%, Cohen 2006).
    """
    arr = _as_order(order)
    return {
        "wss95": wss_asreview(arr, 95),
        "wss95_strict": wss_strict(arr, 95),
        "rrf10": rrf(arr, 10),
        "atd": atd(arr),
        "loss": loss(arr),
    }
