"""The live index version, opened with what queries need and followed across rebuilds.

A rebuild publishes a new version (``CURRENT`` moves, or a server alias). The
next call after that notices it and moves to the new version without a restart;
if the new version cannot be opened, the one already open keeps serving; a fresh
process falls back to the newest version that opens.

    >>> live = LiveIndex(lambda: open_index(settings), prepare=lambda store: Catalog.build(...))  # doctest: +SKIP
    >>> live.current().version                                                                 # doctest: +SKIP
    'v20260401T101500-123456-1f2e3d4c'
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from guideqa.errors import IndexError_, IndexLocked, IndexNotReady
from index.backend import IndexReader
from index.catalog import Catalog
from index.store import VectorStore

__all__ = ["LiveIndex", "OpenVersion"]

log = logging.getLogger(__name__)


@dataclass
class OpenVersion:
    """One open version: its name, its store and its lookup tables."""

    version: str
    store: VectorStore
    catalog: Catalog


class LiveIndex:
    """The version the reader names live, opened once and swapped when a rebuild publishes another.

    Args:
        open_reader: opens the read side (:func:`index.backend.open_index`); called on first use,
            and again after :meth:`close`.
        prepare: builds a newly opened version's catalog before it is served (it reads the
            whole store); an :class:`IndexError_` it raises makes the version unusable.
    """

    def __init__(self, open_reader: Callable[[], IndexReader], *, prepare: Callable[[VectorStore], Catalog]):
        self._open_reader = open_reader
        self._prepare = prepare
        self._lock = threading.Lock()
        self._reader: IndexReader | None = None
        self._live: OpenVersion | None = None
        self._previous: OpenVersion | None = None
        self._checked = 0.0

    def current(self) -> OpenVersion:
        """The live version, re-checked when the reader's interval has passed.

        Raises:
            IndexNotReady: nothing has been built. IndexLocked: another process holds it.
            IndexCorrupt / IndexUnavailable: no version can be opened or the server is unreachable.
        """
        with self._lock:
            if self._reader is None:
                self._reader = self._open_reader()
            now = time.monotonic()
            if self._live is None or now - self._checked >= self._reader.recheck_s:
                self._checked = now
                fresh = self._newest(self._reader)
                if fresh is None and self._live is None:
                    raise IndexNotReady()
                if fresh is not None and fresh is not self._live:
                    # Keep one previous version open: a query that started on it may still be running.
                    if self._previous is not None:
                        self._previous.store.close()
                    self._previous, self._live = self._live, fresh
                    log.info("serving index version %s", fresh.version)
            assert self._live is not None
            return self._live

    def _newest(self, reader: IndexReader) -> OpenVersion | None:
        candidates = reader.live_versions()
        last_error: IndexError_ | None = None
        for version in candidates:
            if self._live is not None and version == self._live.version:
                return self._live  # a newer one failed (or there is none); keep serving what we have
            try:
                return self._open(reader, version)
            except IndexLocked:
                raise
            except IndexError_ as exc:
                log.error("index version %s unusable: %s", version, exc.detail or exc.message)
                last_error = exc
        if last_error is not None:
            raise last_error
        return None

    def _open(self, reader: IndexReader, version: str) -> OpenVersion:
        store = reader.open_version(version)
        try:
            return OpenVersion(version, store, self._prepare(store))
        except BaseException:
            store.close()
            raise

    def close(self) -> None:
        """Close every open version and the reader (a later :meth:`current` opens them again)."""
        with self._lock:
            for v in (self._previous, self._live):
                if v is not None:
                    v.store.close()
            self._live = self._previous = None
            if self._reader is not None:
                self._reader.close()
                self._reader = None
