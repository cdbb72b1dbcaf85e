"""The ranking model's analysed texts, kept beside the warehouse so each record version is tokenised once.

`queue_documents` returns the queue's documents (`livingmeta.screening.features.TermCounts`) for a ranker,
analysing only the records whose content changed since they were last analysed. The analysed texts live in
`<warehouse file>.features/<review id>/<analysis key>.npz` (the analysis key names the analyzer's settings and
scikit-learn's version): a cache, not data — deleting the folder only costs one re-analysis, a file that cannot
be read (or was written by other settings) is ignored and rewritten, and it never goes into snapshots. An
in-memory warehouse keeps no cache. The TF-IDF weights themselves (document frequencies, pruning, idf) are
refitted from these counts on every ranking, so they always describe the queue as it is (see
`livingmeta.screening.features`) once per queue: `queue_features` keeps the TF-IDF matrix of the queue as it is,
when screening live, in memory (a few per process) and beside the counts (`<analysis key>.tfidf.npz`), keyed by
the queue's documents and the ranker's settings, so the re-rank after each decision
(`warehouse.screening.next_to_screen`) refits only the classifier, and the TF-IDF weights of a queue are fitted
once for all the screening sessions that follow an update, even across restarts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np

from livingmeta.screening.features import ScoringModel, SortedTerms, TermCounts, Vocabulary

FORMAT = 1
ANALYSE_BATCH = 10_000  # texts analysed per slice (memory only: the counts do not depend on it)


def cache_path(con: duckdb.DuckDBPyConnection, review_id: str, analysis_key: str) -> Path | None:
    """Where the review's analysed texts for this analyzer live (None for an in-memory warehouse)."""
    rows = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
    if not rows or not rows[0][0]:
        return None
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{review_id}")
    return Path(f"{rows[0][0]}.features") / safe / (re.sub(r"[^A-Za-z0-9._-]+", "_", analysis_key) + ".npz")


def _beside(counts_path: Path, suffix: str) -> Path:
    """`<analysis key><suffix>` next to the counts file `<analysis key>.npz`."""
    return counts_path.with_name(counts_path.name[: -len(".npz")] + suffix)


def load(path: Path | None, analysis_key: str) -> TermCounts:
    """The stored documents, or none when there is no readable file for exactly this analyzer."""
    if path is None or not path.is_file():
        return TermCounts.empty()
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode("utf-8"))
            if meta.get("format") != FORMAT or meta.get("analysis_key") != analysis_key:
                return TermCounts.empty()
            terms = bytes(z["terms"]).decode("utf-8").split("\n") if int(meta["n_terms"]) else []
            keys = bytes(z["keys"]).decode("utf-8").split("\n") if int(meta["n_keys"]) else []
            docs = TermCounts(
                terms,
                keys,
                np.asarray(z["indptr"], dtype=np.int64),
                np.asarray(z["indices"], dtype=np.int32),
                np.asarray(z["counts"], dtype=np.int32),
            )
        if len(docs.indptr) != len(keys) + 1 or len(terms) != int(meta["n_terms"]):
            return TermCounts.empty()
        return docs
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return TermCounts.empty()  # a damaged cache is rebuilt, never trusted


def save(path: Path | None, analysis_key: str, docs: TermCounts) -> None:
    """Write the documents atomically (a reader sees the old file or the new one, never half of one)."""
    if path is None:
        return
    meta = {"format": FORMAT, "analysis_key": analysis_key, "n_terms": len(docs.terms), "n_keys": len(docs.keys)}
    _write_atomic(
        path,
        meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
        terms=np.frombuffer("\n".join(docs.terms).encode("utf-8"), dtype=np.uint8),
        keys=np.frombuffer("\n".join(docs.keys).encode("utf-8"), dtype=np.uint8),
        indptr=docs.indptr,
        indices=docs.indices,
        counts=docs.counts,
    )


def _write_atomic(path: Path, **arrays: np.ndarray) -> None:
    # a temporary file of this writer's own (threads of one process share a pid: a pid-named file would be
    # written by two of them at once), then an atomic rename over the old file
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it private; the cache was (and stays) readable like the warehouse
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def queue_documents(
    con: duckdb.DuckDBPyConnection,
    review_id: str,
    keys: list[str],
    analysis_key: str,
    analyzer: Callable[[str], list[str]],
    texts: Callable[[list[str]], dict[str, str]],
) -> TermCounts:
    """The analysed documents of these keys ("record_id\\tcontent_hash"), in this order.

    Args:
        keys: one per queue row, in queue order.
        analysis_key, analyzer: the ranker's (`Ranker.analysis_key()`, `Ranker.analyzer()`).
        texts: record ids -> their title + abstract, called only for records not analysed yet.
    Returns:
        TermCounts with exactly these documents; the cache file is rewritten when documents were added or
        documents no longer in the queue were dropped.
    """
    path = cache_path(con, review_id, analysis_key)
    cached = load(path, analysis_key)
    have = cached.row_of()
    missing = [k for k in dict.fromkeys(keys) if k not in have]
    # analysed a slice at a time: the first ranking of a 200,000-record queue never holds every text, and every
    # text's terms as Python lists, at once (the counts are the same as analysing all of them in one go)
    for start in range(0, len(missing), ANALYSE_BATCH):
        batch = missing[start : start + ANALYSE_BATCH]
        got = texts([k.split("\t", 1)[0] for k in batch])
        cached = cached.add([(k, got.get(k.split("\t", 1)[0], "")) for k in batch], analyzer)
        del got
    docs = cached.select(keys)
    if missing or len(cached.keys) != len(set(keys)):
        save(path, analysis_key, docs.compact() if len(set(keys)) == len(keys) else cached.compact())
    return docs


# the TF-IDF matrices of the last few queues ranked in this process: (where, fingerprint) -> (features, on disk)
_MEMORY: OrderedDict[tuple[str, str], tuple[object, bool]] = OrderedDict()
_MEMORY_LOCK = threading.Lock()
MEMORY_ENTRIES = 4


def features_fingerprint(keys: list[str], ranker) -> str:
    """What a queue's features depend on: its documents in order (record id and content hash), the analyzer
    and the ranker's settings. Labels are not part of it: features carry none."""
    h = hashlib.sha256()
    h.update(
        json.dumps([FORMAT, ranker.name, ranker.analysis_key(), sorted(ranker.params.items())], default=str).encode(
            "utf-8"
        )
    )
    h.update("\n".join(keys).encode("utf-8"))
    return h.hexdigest()


def _save_features(path: Path, fingerprint: str, features) -> None:
    mats = list(features) if isinstance(features, tuple) else [features]
    arrays: dict[str, np.ndarray] = {
        "meta": np.frombuffer(
            json.dumps(
                {"format": FORMAT, "fingerprint": fingerprint, "n": len(mats), "tuple": isinstance(features, tuple)}
            ).encode("utf-8"),
            dtype=np.uint8,
        )
    }
    for i, m in enumerate(mats):
        m = m.tocsr()
        arrays.update(
            {
                f"data{i}": m.data,
                f"indices{i}": m.indices,
                f"indptr{i}": m.indptr,
                f"shape{i}": np.asarray(m.shape, dtype=np.int64),
            }
        )
    _write_atomic(path, **arrays)


def _load_features(path: Path, fingerprint: str):
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode("utf-8"))
            if meta.get("format") != FORMAT or meta.get("fingerprint") != fingerprint:
                return None
            import scipy.sparse as sp  # loads with the ranking model, not with the warehouse

            mats = [
                sp.csr_matrix(
                    (z[f"data{i}"], z[f"indices{i}"], z[f"indptr{i}"]), shape=tuple(int(x) for x in z[f"shape{i}"])
                )
                for i in range(int(meta["n"]))
            ]
        return tuple(mats) if meta.get("tuple") else mats[0]
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None  # a damaged cache is rebuilt, never trusted


def queue_features(
    con: duckdb.DuckDBPyConnection,
    review_id: str,
    keys: list[str],
    ranker,
    texts: Callable[[list[str]], dict[str, str]],
    *,
    persist: bool = False,
):
    """The queue's features for this ranker (`Ranker.features_from_counts`), built at most once per queue.

    Looked up in this process's memory, then in `<analysis key>.tfidf.npz` beside the counts; built from the
    analysed documents (`queue_documents`) only when the queue's documents or the ranker's settings changed,
    then, with `persist` (screening live), kept in memory and on disk; without it (an update) they are only
    returned, so a long-running process (`livingmeta serve`) keeps no matrix of past queues (an update that
    refits the model writes the features it fitted to disk: `keep_queue_features`). The result equals
    `ranker.features_from_counts(queue_documents(...))`.

    Args:
        keys: one per queue row ("record_id\\tcontent_hash"), in queue order.
        ranker: a ranker that ranks from term counts.
        texts: record ids -> their title + abstract, called only for records not analysed yet.
    """
    fingerprint = features_fingerprint(keys, ranker)
    counts_path = cache_path(con, review_id, ranker.analysis_key())
    where = str(counts_path) if counts_path is not None else f"memory:{id(con)}:{review_id}"
    slot = (where, fingerprint)
    tfidf_path = _beside(counts_path, ".tfidf.npz") if counts_path else None
    with _MEMORY_LOCK:
        features, on_disk = _MEMORY.get(slot, (None, False))
        if features is not None:
            _MEMORY.move_to_end(slot)
    if features is None:
        features = _load_features(tfidf_path, fingerprint) if tfidf_path is not None else None
        on_disk = features is not None
    if features is None:
        docs = queue_documents(con, review_id, keys, ranker.analysis_key(), ranker.analyzer(), texts)
        features = ranker.features_from_counts(docs)
    if not persist:
        return features
    if not on_disk and tfidf_path is not None:
        _save_features(tfidf_path, fingerprint, features)
        on_disk = True
    with _MEMORY_LOCK:
        _MEMORY[slot] = (features, on_disk)
        _MEMORY.move_to_end(slot)
        while len(_MEMORY) > MEMORY_ENTRIES:
            _MEMORY.popitem(last=False)
    return features


def keep_queue_features(con: duckdb.DuckDBPyConnection, review_id: str, keys: list[str], ranker, features) -> None:
    """Keep on disk (not in memory) the features an update fitted the model on, so that the live re-ranks that
    follow (`queue_features`, same queue) refit only the classifier: the TF-IDF vocabulary of a queue is fitted
    once. `features` must be `ranker.features_from_counts(queue_documents(...))` for these keys."""
    counts_path = cache_path(con, review_id, ranker.analysis_key())
    if counts_path is None:
        return
    _save_features(_beside(counts_path, ".tfidf.npz"), features_fingerprint(keys, ranker), features)


def model_path(con: duckdb.DuckDBPyConnection, review_id: str, analysis_key: str) -> Path | None:
    """The pointer to the review's kept ranking model, `<analysis key>.model.json` (None for an in-memory
    warehouse). The model itself is the folder `<analysis key>.model-<token>/` it names."""
    counts = cache_path(con, review_id, analysis_key)
    return _beside(counts, ".model.json") if counts is not None else None


def _model_folder(pointer: Path, token: str) -> Path:
    return pointer.with_name(pointer.name[: -len(".json")] + "-" + re.sub(r"[^A-Za-z0-9_-]+", "_", token))


def save_model(path: Path | None, token: str, analysis_key: str, model: ScoringModel) -> None:
    """Keep a trained model (vocabulary, idf, weights) so that records arriving before the next decision are
    scored by it instead of refitting it over the whole queue. `token` names it (`screening_rank_state.model`).

    The arrays are .npy files in a folder of their own, read back memory-mapped (`load_model`): scoring a few new
    records reads a few pages of a vocabulary of millions of terms. The folder is complete before the pointer
    names it (atomic rename); older models' folders are then removed.
    """
    if path is None:
        return
    terms = model.vocabulary.terms
    sorted_terms = terms if isinstance(terms, SortedTerms) else SortedTerms.build(terms)
    folder = _model_folder(path, token)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=folder.name + ".", suffix=".tmp"))
    try:
        for name, array in (
            ("prefixes", sorted_terms.prefixes),
            ("blob", sorted_terms.blob),
            ("offsets", sorted_terms.offsets),
            ("idf", np.asarray(model.vocabulary.idf, dtype=np.float64)),
            ("coef", np.asarray(model.coef, dtype=np.float64)),
        ):
            np.save(tmp / f"{name}.npy", np.asarray(array), allow_pickle=False)
        os.chmod(tmp, 0o755)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    meta = {
        "format": FORMAT,
        "token": token,
        "analysis_key": analysis_key,
        "description": model.description,
        "trained_on": model.trained_on,
        "intercept": model.intercept,
        "sublinear_tf": model.vocabulary.sublinear_tf,
        "n_terms": len(sorted_terms),
    }
    fd, tmp_pointer = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(meta, f)
    os.chmod(tmp_pointer, 0o644)
    os.replace(tmp_pointer, path)
    for old in path.parent.glob(path.name[: -len(".json")] + "-*"):
        if old != folder and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def load_model(path: Path | None, token: str, analysis_key: str) -> ScoringModel | None:
    """The kept model named `token`, trained with this analyzer, memory-mapped; None when absent, another one,
    or damaged (the caller then refits)."""
    if path is None or not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        if (meta.get("format"), meta.get("token"), meta.get("analysis_key")) != (FORMAT, token, analysis_key):
            return None
        folder = _model_folder(path, token)
        arrays = {
            n: np.load(folder / f"{n}.npy", mmap_mode="r", allow_pickle=False)
            for n in ("prefixes", "blob", "offsets", "idf", "coef")
        }
        n = int(meta["n_terms"])
        if not (
            len(arrays["prefixes"]) == len(arrays["idf"]) == len(arrays["coef"]) == n == len(arrays["offsets"]) - 1
        ):
            return None
        if n and int(arrays["offsets"][-1]) != len(arrays["blob"]):
            return None
        return ScoringModel(
            Vocabulary(
                SortedTerms(arrays["prefixes"], arrays["blob"], arrays["offsets"]),
                arrays["idf"],
                bool(meta["sublinear_tf"]),
            ),
            arrays["coef"],
            float(meta["intercept"]),
            str(meta["description"]),
            int(meta["trained_on"]),
        )
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
        return None  # a damaged cache is rebuilt, never trusted
