"""The ranking model's analysed texts, kept beside the warehouse so each record version is tokenised once.

`queue_documents` returns the queue's documents (`livingmeta.screening.features.TermCounts`) for a ranker,
analysing only the records whose content changed since they were last analysed. The analysed texts live in
`<warehouse file>.features/<review id>/<analysis key>.npz` (the analysis key names the analyzer's settings and
scikit-learn's version): a cache, not data — deleting the folder only costs one re-analysis, a file that cannot
be read (or was written by other settings) is ignored and rewritten, and it never goes into snapshots. An
in-memory warehouse keeps no cache. The TF-IDF weights themselves (document frequencies, pruning, idf) are
refitted from these counts on every ranking, so they always describe the queue as it is (see
`livingmeta.screening.features`); a live re-rank after people's decisions reuses the same file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np

from livingmeta.screening.features import TermCounts

FORMAT = 1


def cache_path(con: duckdb.DuckDBPyConnection, review_id: str, analysis_key: str) -> Path | None:
    """Where the review's analysed texts for this analyzer live (None for an in-memory warehouse)."""
    rows = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
    if not rows or not rows[0][0]:
        return None
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{review_id}")
    return Path(f"{rows[0][0]}.features") / safe / (re.sub(r"[^A-Za-z0-9._-]+", "_", analysis_key) + ".npz")


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
            docs = TermCounts(terms, keys, np.asarray(z["indptr"], dtype=np.int64),
                              np.asarray(z["indices"], dtype=np.int32), np.asarray(z["counts"], dtype=np.int32))
        if len(docs.indptr) != len(keys) + 1 or len(terms) != int(meta["n_terms"]):
            return TermCounts.empty()
        return docs
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return TermCounts.empty()  # a damaged cache is rebuilt, never trusted


def save(path: Path | None, analysis_key: str, docs: TermCounts) -> None:
    """Write the documents atomically (a reader sees the old file or the new one, never half of one)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    meta = {"format": FORMAT, "analysis_key": analysis_key, "n_terms": len(docs.terms), "n_keys": len(docs.keys)}
    with open(tmp, "wb") as f:
        np.savez(f, meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
                 terms=np.frombuffer("\n".join(docs.terms).encode("utf-8"), dtype=np.uint8),
                 keys=np.frombuffer("\n".join(docs.keys).encode("utf-8"), dtype=np.uint8),
                 indptr=docs.indptr, indices=docs.indices, counts=docs.counts)
    os.replace(tmp, path)


def queue_documents(con: duckdb.DuckDBPyConnection, review_id: str, keys: list[str], analysis_key: str,
                    analyzer: Callable[[str], list[str]], texts: Callable[[list[str]], dict[str, str]]) -> TermCounts:
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
    if missing:
        got = texts([k.split("\t", 1)[0] for k in missing])
        cached = cached.add([(k, got.get(k.split("\t", 1)[0], "")) for k in missing], analyzer)
    docs = cached.select(keys)
    if missing or len(cached.keys) != len(set(keys)):
        save(path, analysis_key, docs.compact() if len(set(keys)) == len(keys) else cached.compact())
    return docs
