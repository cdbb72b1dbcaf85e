"""Text features for ranking, computed once per record version and reused across updates.

Tokenising every title and abstract again is most of the cost of ranking a large queue, and it is the same
work every night: a record's terms change only when its text does. `TermCounts` keeps, for each document
(keyed by record id and content hash), the terms scikit-learn's own analyzer finds, with their counts, in
the order the analyzer first meets them; `tfidf_matrix` turns the rows of the current queue into exactly
the matrix `TfidfVectorizer(...).fit_transform(texts)` would give (same vocabulary after max_df/min_df
pruning, same column order, same order of entries within a row, same float operations): the document
frequencies, the pruning and the idf are refitted over the queue's rows every time, which is cheap array
work, while the text is analysed once per record version. tests/test_incremental_screening.py compares both
bit for bit.

How TfidfVectorizer builds its matrix (scikit-learn 1.x, `CountVectorizer._count_vocab`, `_limit_features`,
`_sort_features`): terms get ids in the order they first occur in the corpus, each row's entries are sorted
by those ids, terms with a document frequency above max_df (or below min_df) are dropped, and the ids are
then renumbered alphabetically without re-sorting the rows. `tfidf_matrix` reproduces that order from the
first position of each term in the concatenated rows.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp


@dataclass
class TermCounts:
    """Analysed documents: for each key, its terms (ids into the alphabetical `terms`) and their counts.

    Attributes:
        terms: every term of the stored documents, sorted (Python string order, as scikit-learn sorts).
        keys: one key per document (e.g. "record_id\\tcontent_hash").
        indptr, indices, counts: CSR rows of the documents; within a row, terms in the order the analyzer
            first produced them.
    """

    terms: list[str]
    keys: list[str]
    indptr: np.ndarray
    indices: np.ndarray
    counts: np.ndarray

    @classmethod
    def empty(cls) -> TermCounts:
        """No documents."""
        return cls([], [], np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32))

    def row_of(self) -> dict[str, int]:
        """key -> row number."""
        return {k: i for i, k in enumerate(self.keys)}

    def add(self, docs: Iterable[tuple[str, str]], analyzer: Callable[[str], list[str]]) -> TermCounts:
        """These counts with more documents analysed (keys already present are analysed again and replaced).

        Args:
            docs: (key, text) pairs.
            analyzer: the vectoriser's analyzer (`TfidfVectorizer(...).build_analyzer()`).
        Returns:
            a new TermCounts; new terms are merged into the sorted vocabulary and the stored rows renumbered.
        """
        analysed: list[tuple[str, list[str], list[int]]] = []
        new_terms: set[str] = set()
        known = self.terms
        for key, text in docs:
            counter: dict[str, int] = {}
            for term in analyzer(text):
                counter[term] = counter.get(term, 0) + 1
            analysed.append((key, list(counter), list(counter.values())))
            for term in counter:
                i = bisect.bisect_left(known, term)
                if i == len(known) or known[i] != term:
                    new_terms.add(term)
        if not analysed:
            return self
        added = sorted(new_terms)
        if added:
            merged = sorted(known + added)  # two sorted runs: timsort merges them in linear time
            # old id -> new id: shifted by the number of new terms sorting before it
            before = np.searchsorted(
                np.array([bisect.bisect_left(known, t) for t in added], dtype=np.int64),
                np.arange(len(known)),
                side="right",
            )
            remap = (np.arange(len(known)) + before).astype(np.int32)
            indices = remap[self.indices] if len(self.indices) else self.indices
        else:
            merged, indices = known, self.indices
        replaced = {k for k, _, _ in analysed}
        keep = [i for i, k in enumerate(self.keys) if k not in replaced]
        base = self._take_rows(keep, indices)
        rows_idx = [
            np.array([bisect.bisect_left(merged, t) for t in terms], dtype=np.int32) for _, terms, _ in analysed
        ]
        rows_cnt = [np.array(c, dtype=np.int32) for _, _, c in analysed]
        lengths = np.array([len(r) for r in rows_idx], dtype=np.int64)
        indptr = np.concatenate([base[0], base[0][-1] + np.cumsum(lengths)])
        return TermCounts(
            merged,
            [self.keys[i] for i in keep] + [k for k, _, _ in analysed],
            indptr,
            np.concatenate([base[1], *rows_idx]).astype(np.int32, copy=False),
            np.concatenate([base[2], *rows_cnt]).astype(np.int32, copy=False),
        )

    def _take_rows(
        self, rows: Sequence[int], indices: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        indices = self.indices if indices is None else indices
        rows = np.asarray(rows, dtype=np.int64)
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        lengths = ends - starts
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        # positions of every kept entry, row by row, without a Python loop over rows
        pos = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
        return indptr, indices[pos], self.counts[pos]

    def select(self, keys: Sequence[str]) -> TermCounts:
        """The documents of these keys, in this order (every key must be present)."""
        where = self.row_of()
        indptr, indices, counts = self._take_rows([where[k] for k in keys])
        return TermCounts(self.terms, list(keys), indptr, indices, counts)

    def compact(self) -> TermCounts:
        """The same documents with terms no document uses any more dropped (ids renumbered, order kept)."""
        used = np.bincount(self.indices, minlength=len(self.terms)) > 0
        if used.all():
            return self
        remap = (np.cumsum(used) - 1).astype(np.int32)
        return TermCounts(
            [t for t, u in zip(self.terms, used.tolist()) if u],
            self.keys,
            self.indptr,
            remap[self.indices],
            self.counts,
        )


class SortedTerms:
    """A sorted vocabulary kept on disk, looked up without loading it: for each term its UTF-8 bytes' first
    `PREFIX` bytes in a fixed-width array (binary search, memory-mapped: a lookup touches a few pages), and the
    whole terms as one UTF-8 blob with offsets, to tell apart terms that share a prefix.

    Attributes:
        prefixes: numpy bytes array (dtype S<PREFIX>), one per term, in term order (sorted).
        blob: uint8 array, the terms' UTF-8 bytes one after another.
        offsets: int64 array, len(terms) + 1: term i is blob[offsets[i]:offsets[i + 1]].
    """

    PREFIX = 24

    def __init__(self, prefixes: np.ndarray, blob: np.ndarray, offsets: np.ndarray):
        self.prefixes, self.blob, self.offsets = prefixes, blob, offsets

    @classmethod
    def build(cls, terms: Sequence[str]) -> SortedTerms:
        """From terms sorted as Python sorts strings (code points; UTF-8 bytes sort the same way)."""
        encoded = [t.encode("utf-8") for t in terms]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        blob = np.frombuffer(b"".join(encoded), dtype=np.uint8) if encoded else np.zeros(0, dtype=np.uint8)
        return cls(np.array([b[: cls.PREFIX] for b in encoded], dtype=f"S{cls.PREFIX}"), blob, offsets)

    def __len__(self) -> int:
        return len(self.prefixes)

    def term(self, i: int) -> bytes:
        return self.blob[self.offsets[i] : self.offsets[i + 1]].tobytes()

    def find(self, terms: Sequence[str]) -> np.ndarray:
        """The position of each term, -1 for a term not in the vocabulary."""
        out = np.full(len(terms), -1, dtype=np.int64)
        if not len(terms) or not len(self):
            return out
        encoded = [t.encode("utf-8") for t in terms]
        query = np.array([b[: self.PREFIX] for b in encoded], dtype=f"S{self.PREFIX}")
        lo = np.searchsorted(self.prefixes, query, side="left")
        hi = np.searchsorted(self.prefixes, query, side="right")
        for k in np.nonzero(hi > lo)[0].tolist():
            for i in range(int(lo[k]), int(hi[k])):  # terms sharing the first PREFIX bytes: compare them whole
                if self.term(i) == encoded[k]:
                    out[k] = i
                    break
        return out


@dataclass
class Vocabulary:
    """A fitted TF-IDF vocabulary: what `TfidfVectorizer.fit` keeps, to transform later documents with.

    Attributes:
        terms: the kept terms, alphabetical (the matrix's column order, as scikit-learn's `vocabulary_`):
            a list of str, or `SortedTerms` (a kept model read back from disk).
        idf: the inverse document frequency of each kept term (scikit-learn's `idf_`).
        sublinear_tf: whether term counts are taken as 1 + log(tf).
    """

    terms: list[str] | SortedTerms
    idf: np.ndarray
    sublinear_tf: bool

    def columns(self, terms: Sequence[str]) -> np.ndarray:
        """The column of each term, -1 for a term outside the vocabulary."""
        if isinstance(self.terms, SortedTerms):
            return self.terms.find(terms)
        out = np.full(len(terms), -1, dtype=np.int64)
        for k, term in enumerate(terms):
            j = bisect.bisect_left(self.terms, term)
            if j < len(self.terms) and self.terms[j] == term:
                out[k] = j
        return out

    def transform_used(self, docs: TermCounts) -> tuple[sp.csr_matrix, np.ndarray]:
        """`transform` restricted to the columns the documents use: (matrix over those columns, their column
        numbers, ascending). Its rows hold exactly the entries of `transform`'s, in the same order, so the cost
        (and the memory touched, for a vocabulary on disk) follows the documents, not the vocabulary."""
        import scipy.sparse as sp
        from sklearn.feature_extraction.text import TfidfTransformer

        n_doc = len(docs.keys)
        used_terms = np.unique(docs.indices)
        col_of_used = self.columns([docs.terms[i] for i in used_terms.tolist()])
        present = col_of_used >= 0
        used_cols = np.unique(col_of_used[present])  # ascending: the vocabulary's column order
        col = np.full(len(docs.terms), -1, dtype=np.int64)
        col[used_terms[present]] = np.searchsorted(used_cols, col_of_used[present])
        cols = col[docs.indices]
        keep = cols >= 0
        row_of_entry = np.repeat(np.arange(n_doc), np.diff(docs.indptr))
        if not len(used_cols):  # no term of these documents is in the vocabulary: empty rows
            return sp.csr_matrix((n_doc, 0), dtype=np.float64), used_cols
        counts = sp.csr_matrix(
            (docs.counts[keep].astype(np.float64), (row_of_entry[keep], cols[keep])),
            shape=(n_doc, len(used_cols)),
        )
        counts.sum_duplicates()  # sorts each row's entries by column, as CountVectorizer's transform leaves them
        transformer = TfidfTransformer(norm="l2", use_idf=True, smooth_idf=True, sublinear_tf=self.sublinear_tf)
        transformer.idf_ = np.asarray(self.idf[used_cols], dtype=np.float64)
        return transformer.transform(counts, copy=False), used_cols

    def transform(self, docs: TermCounts) -> sp.csr_matrix:
        """Exactly `fitted TfidfVectorizer.transform(texts)` for documents analysed with the same analyzer.

        Terms outside the vocabulary are ignored (as scikit-learn does); a document with none of its terms
        in the vocabulary gets an empty row.
        """
        import scipy.sparse as sp

        rows, used_cols = self.transform_used(docs)
        return sp.csr_matrix((rows.data, used_cols[rows.indices], rows.indptr), shape=(rows.shape[0], len(self.terms)))


@dataclass
class ScoringModel:
    """A trained linear ranker kept to score later records without refitting: its vocabulary and weights.

    `score` gives exactly what the fitted model's `decision_function` gives for the TF-IDF rows
    `vocabulary.transform` builds (scikit-learn's `LinearSVC`: rows @ coef + intercept).
    """

    vocabulary: Vocabulary
    coef: np.ndarray
    intercept: float
    description: str
    trained_on: int

    def score(self, docs: TermCounts) -> np.ndarray:
        """One score per document (analysed with the ranker's analyzer); higher = screen first."""
        if not docs.keys:
            return np.zeros(0, dtype=np.float64)
        rows, used_cols = self.vocabulary.transform_used(docs)
        coef = np.asarray(self.coef[used_cols], dtype=np.float64).reshape(-1, 1)
        return np.asarray(rows @ coef, dtype=np.float64).ravel() + self.intercept


def tfidf_matrix(
    docs: TermCounts,
    *,
    max_df: float | int,
    min_df: float | int,
    sublinear_tf: bool,
    keep_term: np.ndarray | None = None,
) -> sp.csr_matrix:
    """Exactly `TfidfVectorizer(max_df, min_df, sublinear_tf, ...).fit_transform(texts)` for these documents.

    (`fit_tfidf` gives the same matrix with the fitted `Vocabulary`.)

    Args:
        docs: the documents in queue order, analysed with the vectoriser's analyzer.
        max_df, min_df: as in scikit-learn (a float is a share of the documents, an int a count).
        sublinear_tf: use 1 + log(tf).
        keep_term: optional boolean mask over `docs.terms` (e.g. single words only, for a 1-gram view of
            documents analysed into 1-2-grams: the analyzer emits every single word before any pair).
    Returns:
        the L2-normalised TF-IDF matrix (CSR, float64, one row per document).
    Raises:
        ValueError: as scikit-learn, when no term is left ("empty vocabulary", "After pruning, no terms remain").
    Reference: scikit-learn `CountVectorizer.fit_transform` and `TfidfTransformer` (smooth idf, l2 norm).
    """
    return fit_tfidf(docs, max_df=max_df, min_df=min_df, sublinear_tf=sublinear_tf, keep_term=keep_term)[0]


def fit_tfidf(
    docs: TermCounts,
    *,
    max_df: float | int,
    min_df: float | int,
    sublinear_tf: bool,
    keep_term: np.ndarray | None = None,
) -> tuple[sp.csr_matrix, Vocabulary]:
    """`tfidf_matrix` and the fitted vocabulary (kept terms and their idf), to transform later documents."""
    import scipy.sparse as sp  # scipy loads with the ranking model, not with the warehouse
    from sklearn.feature_extraction.text import TfidfTransformer

    n_doc = len(docs.keys)
    indices, counts, indptr = docs.indices, docs.counts, docs.indptr
    if keep_term is not None:
        mask = keep_term[indices]
        row_of_entry = np.repeat(np.arange(n_doc), np.diff(indptr))
        indices, counts = indices[mask], counts[mask]
        indptr = np.zeros(n_doc + 1, dtype=np.int64)
        np.cumsum(np.bincount(row_of_entry[mask], minlength=n_doc), out=indptr[1:])
    if len(indices) == 0:
        raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
    n_terms = len(docs.terms)
    # term ids are dense and alphabetical, so counting replaces sorting and searching
    dfs = np.bincount(indices, minlength=n_terms)  # each term occurs at most once per row
    high = max_df if isinstance(max_df, (int, np.integer)) else max_df * n_doc
    low = min_df if isinstance(min_df, (int, np.integer)) else min_df * n_doc
    if high < low:
        raise ValueError("max_df corresponds to < documents than min_df")
    kept = (dfs > 0) & (dfs <= high) & (dfs >= low)
    if not kept.any():
        raise ValueError("After pruning, no terms remain. Try a lower min_df or a higher max_df.")
    col_of_term = (np.cumsum(kept) - 1).astype(np.int32)  # alphabetical rank among kept terms
    # scikit-learn's first-seen order: each term's first position in the concatenated rows, as a dense rank
    nnz = len(indices)
    pos_type = np.int32 if nnz < 2**31 - 1 else np.int64
    first = np.full(n_terms, nnz, dtype=pos_type)
    np.minimum.at(first, indices, np.arange(nnz, dtype=pos_type))
    rank = np.empty(n_terms, dtype=np.int32)
    rank[np.argsort(first, kind="stable")] = np.arange(n_terms, dtype=np.int32)
    del first
    keep_entry = kept[indices]
    cum = np.zeros(nnz + 1, dtype=np.int64)
    np.cumsum(keep_entry, out=cum[1:])
    new_indptr = cum[indptr]
    del cum
    terms_kept = indices[keep_entry]
    counts_kept = counts[keep_entry]
    # within a row, entries by that rank: a per-row sort (scipy's sort_indices) instead of one global sort
    perm = sp.csr_matrix(
        (np.arange(len(terms_kept), dtype=pos_type), rank[terms_kept], new_indptr), shape=(n_doc, n_terms)
    )
    perm.has_sorted_indices = False
    perm.sort_indices()
    order = perm.data
    del perm
    x = sp.csr_matrix(
        (counts_kept[order].astype(np.float64), col_of_term[terms_kept[order]], new_indptr),
        shape=(n_doc, int(kept.sum())),
    )
    transformer = TfidfTransformer(norm="l2", use_idf=True, smooth_idf=True, sublinear_tf=sublinear_tf)
    transformer.fit(x)
    vocabulary = Vocabulary(
        [t for t, k in zip(docs.terms, kept.tolist()) if k],
        np.asarray(transformer.idf_, dtype=np.float64),
        sublinear_tf,
    )
    return transformer.transform(x, copy=False), vocabulary
