"""A run's fetched records on disk instead of in memory, until they are stored (issue 15).

A source run fetches and parses every page before it stores anything (`livingmeta.sources.run`), so a first
load of a large review used to hold every record with its raw payload in memory at once (the first load of the
200k growth benchmark peaked at 5.8 GB in search/ingest). `FetchedSpool` keeps them in an anonymous temporary
file instead (`$TMPDIR`), in pickled batches, with only their record ids in memory (a synthetic PubMed record
with its payload takes about 7 kB there); `warehouse.ingest.finish_search_run` reads them back batch by batch.
The file is gone when the spool is closed or dropped (and when the process dies: it has no name).
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Iterable, Iterator

from livingmeta.sources.changes import Fetched

FRAME = 1_000  # records per pickled frame: small enough to hold, large enough to pickle fast


class FetchedSpool:
    """An append-only, re-iterable sequence of `Fetched` records kept in a temporary file, in order.

    `append` / `extend` add records; iterating gives them back in the order added (any number of times);
    `record_ids` lists their record ids without reading the file. Used where a list of `Fetched` was.
    """

    def __init__(self, items: Iterable[Fetched] = (), directory: str | None = None):
        self._file = tempfile.TemporaryFile(prefix="livingmeta-fetched-", dir=directory)
        self._frames: list[tuple[int, int]] = []  # (offset, length) of each pickled frame
        self._end = 0
        self._pending: list[Fetched] = []
        self._ids: list[str] = []
        self.extend(items)

    def append(self, item: Fetched) -> None:
        self._pending.append(item)
        self._ids.append(item.record.record_id)
        if len(self._pending) >= FRAME:
            self._flush()

    def extend(self, items: Iterable[Fetched]) -> None:
        for item in items:
            self.append(item)

    def _flush(self) -> None:
        if not self._pending:
            return
        data = pickle.dumps(self._pending, protocol=pickle.HIGHEST_PROTOCOL)
        os.pwrite(self._file.fileno(), data, self._end)
        self._frames.append((self._end, len(data)))
        self._end += len(data)
        self._pending = []

    @property
    def record_ids(self) -> list[str]:
        """The record id of each record, in order (a copy)."""
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[Fetched]:
        frames, pending = list(self._frames), list(self._pending)
        for offset, length in frames:
            yield from pickle.loads(os.pread(self._file.fileno(), length, offset))
        yield from pending

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> FetchedSpool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
