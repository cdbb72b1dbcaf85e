"""Simulated screening on a fully labelled review: how early would a ranker find the includes?

Protocol (the one ASReview's published simulations use, and our benchmark figures):

1. Prior knowledge: one included and one excluded record, drawn with
   ``rng = numpy.random.default_rng(seed)``: first ``rng.choice(included_positions)``, then
   ``rng.choice(excluded_positions)`` (positions in ascending order, as ``numpy.flatnonzero``
   returns them).
2. Repeat: train the ranker on every label revealed so far, score all records, reveal the
   label of the highest-scoring unlabelled record (ties: the lowest position), until every
   included record has been found.
3. The records never reached are all excluded, so they are appended in position order; the
   metrics (:mod:`livingmeta.screening.metrics`) are computed on the labelling order after
   the two priors, so N = number of records - 2.

The CSV reader here is pure (text in, records out); reading the file is the caller's job.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from livingmeta.screening.metrics import compute_metrics
from livingmeta.screening.ranking import make_ranker

__all__ = ["LabelledDataError", "LabelledSet", "SimulationResult", "draw_priors", "parse_labelled_csv", "simulate"]

REQUIRED_COLUMNS = ("title", "label_included")
_LABELS = {"1": 1, "0": 0, "1.0": 1, "0.0": 0}


class LabelledDataError(ValueError):
    """A labelled data set that cannot be used, with a message saying where and how to fix it."""


@dataclass(frozen=True)
class LabelledSet:
    """Records of a labelled review: ``texts`` (title + abstract) and ``labels`` (1/0)."""

    texts: list[str]
    labels: np.ndarray
    source: str = "<data>"

    @property
    def n_included(self) -> int:
        return int(self.labels.sum())


@dataclass(frozen=True)
class SimulationResult:
    """Outcome of one simulated screening run.

    ``priors`` are the (included, excluded) positions given as prior knowledge; ``screened``
    the positions revealed afterwards, in order, up to the last included record; ``order``
    the labels of all N = n_records - 2 records after the priors (``screened`` followed by the
    never-reached records, all excluded); ``metrics`` WSS@95, RRF@10, ATD and loss on ``order``.
    """

    priors: tuple[int, int]
    screened: np.ndarray
    order: np.ndarray
    metrics: dict[str, float]
    model: str
    n_records: int
    n_included: int
    seed: int


def parse_labelled_csv(text: str, source: str = "<data>") -> LabelledSet:
    """Read a labelled screening data set from CSV text.

    Parameters
    ----------
    text : str
        CSV with a header row containing ``title`` and ``label_included`` (1 included, 0 excluded;
        ``1.0``/``0.0`` accepted) and optionally ``abstract``. Other columns are ignored.
        A missing title or abstract counts as an empty string.
    source : str
        Name of the file, used in error messages.

    Returns
    -------
    LabelledSet
        Texts as "title abstract" and labels, in file order.

    Raises
    ------
    LabelledDataError
        Missing columns, a bad label (naming the line and the record), or no records.
    """
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise LabelledDataError(
            f"{source}: the file is empty; expected a CSV header with columns title, abstract, label_included"
        ) from None
    except csv.Error as exc:
        raise LabelledDataError(f"{source}, line 1: not readable as CSV ({exc})") from None
    columns = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise LabelledDataError(
            f"{source}, line 1: missing column {missing[0]!r} (found: {', '.join(columns) or 'none'}); "
            "the header must name title, abstract and label_included"
        )
    i_title = columns.index("title")
    i_label = columns.index("label_included")
    i_abstract = columns.index("abstract") if "abstract" in columns else None

    texts: list[str] = []
    labels: list[int] = []
    line = 1
    try:
        for row in reader:
            start_line = line + 1
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) <= i_label:
                raise LabelledDataError(
                    f"{source}, line {start_line}: the row has {len(row)} fields but label_included is "
                    f"column {i_label + 1}; check for a missing delimiter or an unclosed quote above"
                )
            title = row[i_title].strip()
            abstract = row[i_abstract].strip() if i_abstract is not None and i_abstract < len(row) else ""
            raw = row[i_label].strip()
            if raw not in _LABELS:
                record = title[:60] or f"record {len(texts) + 1}"
                raise LabelledDataError(
                    f"{source}, line {start_line}, field label_included: {raw!r} is not a label "
                    f"(record {record!r}); use 1 for included or 0 for excluded"
                )
            texts.append(f"{title} {abstract}".strip())
            labels.append(_LABELS[raw])
    except csv.Error as exc:
        raise LabelledDataError(f"{source}, line {reader.line_num}: not readable as CSV ({exc})") from None
    if not texts:
        raise LabelledDataError(f"{source}: no records after the header")
    return LabelledSet(texts=texts, labels=np.asarray(labels, dtype=np.int64), source=source)


def draw_priors(labels: np.ndarray, seed: int) -> tuple[int, int]:
    """Draw the prior knowledge: one included and one excluded record.

    Parameters
    ----------
    labels : array of 0/1
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    (included_position, excluded_position)
        ``rng.choice(flatnonzero(labels == 1))`` then ``rng.choice(flatnonzero(labels == 0))``,
        from the same generator, in that order.
    """
    rng = np.random.default_rng(seed)
    included = np.flatnonzero(labels == 1)
    excluded = np.flatnonzero(labels == 0)
    return int(rng.choice(included)), int(rng.choice(excluded))


def simulate(
    texts: Sequence[str],
    labels: Sequence[int] | np.ndarray,
    ranker_params: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> SimulationResult:
    """Simulate screening with retraining after every decision (see the module docstring).

    Parameters
    ----------
    texts : sequence of str
        Title + abstract per record.
    labels : sequence of 0/1
        The review team's decision per record (1 included).
    ranker_params : mapping, optional
        ``[screening.model]`` settings for :func:`~livingmeta.screening.ranking.make_ranker`.
        Its ``seed`` defaults to ``seed``.
    seed : int
        Seed for drawing the priors (and the ranker, unless ``ranker_params`` sets one).

    Returns
    -------
    SimulationResult

    Raises
    ------
    ValueError
        Lengths differ, labels other than 0/1, fewer than 2 included or 1 excluded records.
    """
    y = np.asarray(labels, dtype=np.int64)
    n = len(texts)
    if y.shape != (n,):
        raise ValueError(f"got {n} texts but {y.size} labels; give one label per text")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 1 (included) or 0 (excluded)")
    n_inc = int(y.sum())
    if n_inc < 2 or n - n_inc < 1:
        raise ValueError(
            f"a simulation needs at least 2 included and 1 excluded record (have {n_inc} included, "
            f"{n - n_inc} excluded): one of each is used as prior knowledge and at least one "
            "included record must remain to be found"
        )
    params = dict(ranker_params or {})
    params.setdefault("seed", seed)
    ranker = make_ranker(params)

    prior_inc, prior_exc = draw_priors(y, seed)
    known: dict[int, int] = {prior_inc: 1, prior_exc: 0}
    unlabelled = np.ones(n, dtype=bool)
    unlabelled[[prior_inc, prior_exc]] = False
    screened: list[int] = []
    found, to_find = 1, n_inc
    text_list = list(texts)
    while found < to_find:
        scores = ranker.fit_rank(text_list, known)
        scores = np.where(unlabelled, scores, -np.inf)
        top = int(np.argmax(scores))
        screened.append(top)
        known[top] = int(y[top])
        unlabelled[top] = False
        found += int(y[top])

    rest = np.flatnonzero(unlabelled)
    order = np.concatenate([y[screened], y[rest]])
    return SimulationResult(
        priors=(prior_inc, prior_exc),
        screened=np.asarray(screened, dtype=np.int64),
        order=order,
        metrics=compute_metrics(order),
        model=ranker.describe(),
        n_records=n,
        n_included=n_inc,
        seed=seed,
    )
