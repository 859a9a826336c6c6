"""The index this process reads and writes, chosen from settings in one place.

:func:`open_index` gives the read side and :func:`open_writer` the write side. The
build, the searcher and ``guideqa index --status`` use them and never know which
backend they have:

* neither ``qdrant_url`` nor ``qdrant_local_path`` set: embedded Qdrant Edge, one shard
  directory per version under ``index_root``, ``CURRENT`` naming the live one
  (:mod:`index.versions`);
* ``qdrant_url`` (a server or cluster) or ``qdrant_local_path`` (qdrant-client's local
  mode): one collection per version, ``<qdrant_collection>_<version>``, the alias
  ``qdrant_collection`` naming the live one.

    >>> reader = open_index(Settings())                 # doctest: +SKIP
    >>> version = reader.live_versions()[0]             # doctest: +SKIP
    >>> store = reader.open_version(version)            # doctest: +SKIP
    >>> store.count()                                   # doctest: +SKIP
    797
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from guideqa.errors import IndexCorrupt, IndexNotReady
from guideqa.settings import Settings
from index.store import ClientStore, EdgeStore, QdrantCollections, VectorStore
from index.versions import (
    IndexMeta,
    complete_versions,
    current_meta,
    prune_versions,
    read_meta,
    resolve_current,
    set_current,
    versions_dir,
    write_meta,
)

__all__ = ["IndexReader", "IndexWriter", "open_index", "open_writer"]

#: How long a server's alias is trusted before it is read again (a rebuild moves it).
SERVER_RECHECK_S = 5.0


class IndexReader(Protocol):
    """The read side: which versions are live, and a store on one of them."""

    backend: str

    @property
    def recheck_s(self) -> float:
        """How long the live version found may be trusted before asking again (0: on every call)."""
        ...

    def live_versions(self) -> list[str]:
        """Versions to try opening, live one first; empty when nothing has been built."""
        ...

    def open_version(self, version: str) -> VectorStore:
        """A store on ``version``.

        Raises:
            IndexLocked: another process holds it. IndexCorrupt / IndexNotReady: it is unusable.
        """
        ...

    def status(self) -> dict[str, Any]:
        """What ``guideqa index --status`` shows of the live version.

        Raises:
            IndexNotReady: nothing has been built yet.
        """
        ...

    def close(self) -> None: ...


class IndexWriter(Protocol):
    """The write side: a new version is filled apart from the live one, then published."""

    backend: str

    def unchanged(self, fingerprint: str, *, embed_model: str, documents: int) -> IndexMeta | None:
        """The live version's metadata if it already holds exactly ``fingerprint`` (:func:`index.build.corpus_hash`)."""
        ...

    def create(self, version: str, dim: int) -> VectorStore:
        """An empty store for the new ``version``; nothing reads it until :meth:`publish`."""
        ...

    def publish(self, meta: IndexMeta) -> list[str]:
        """Make ``meta.version`` live (the store must be closed) and drop versions no reader needs.

        Returns:
            The versions removed.
        """
        ...

    def close(self) -> None: ...


def open_index(settings: Settings) -> IndexReader:
    """The read side of the configured index.

    Raises:
        IndexLocked: qdrant-client's local-mode folder is held by another process.
    """
    if settings.backend_name == "qdrant-edge":
        return _EdgeReader(settings.index_root)
    return _ServerReader(_connect(settings), alias=settings.qdrant_collection)


def open_writer(settings: Settings) -> IndexWriter:
    """The write side of the configured index.

    Raises:
        IndexLocked: qdrant-client's local-mode folder is held by another process.
    """
    if settings.backend_name == "qdrant-edge":
        return _EdgeWriter(settings.index_root)
    return _ServerWriter(
        _connect(settings),
        alias=settings.qdrant_collection,
        shard_number=settings.qdrant_shard_number,
        replication_factor=settings.qdrant_replication_factor,
    )


def _connect(settings: Settings) -> QdrantCollections:
    api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    client = ClientStore.connect(url=settings.qdrant_url, api_key=api_key, local_path=settings.qdrant_local_path)
    return QdrantCollections(client, backend=settings.backend_name)


# --------------------------------------------------------------------------- Edge
class _EdgeReader:
    backend = "qdrant-edge"
    recheck_s = 0.0  # CURRENT is a local file: read it on every call

    def __init__(self, root: Path):
        self.root = root

    def live_versions(self) -> list[str]:
        return resolve_current(self.root)

    def open_version(self, version: str) -> VectorStore:
        meta = read_meta(versions_dir(self.root) / version)
        store = EdgeStore.open(versions_dir(self.root) / version / "shard")
        try:
            if meta and store.count() != meta.units:
                raise IndexCorrupt(detail=f"{version}: {meta.units} units expected")
        except BaseException:
            store.close()
            raise
        return store

    def status(self) -> dict[str, Any]:
        # meta.json only: this works while the server holds the shard.
        order = resolve_current(self.root)
        meta = read_meta(versions_dir(self.root) / order[0]) if order else None
        if meta is None:
            raise IndexNotReady()
        return {
            "backend": meta.backend,
            "version": meta.version,
            "units": meta.units,
            "documents": meta.documents,
            "embed_model": meta.embed_model,
            "dim": meta.dim,
            "built_at": meta.built_at,
            "build_seconds": meta.build_seconds,
            "embedded": meta.embedded,
            "reused_embeddings": meta.reused_embeddings,
            "corpus_hash": meta.corpus_hash,
            "path": str(versions_dir(self.root) / meta.version),
            "versions_on_disk": len(complete_versions(self.root)),
        }

    def close(self) -> None:
        return None


class _EdgeWriter:
    backend = "qdrant-edge"

    def __init__(self, root: Path):
        self.root = root

    def unchanged(self, fingerprint: str, *, embed_model: str, documents: int) -> IndexMeta | None:
        live = current_meta(self.root)
        return live if live and live.corpus_hash == fingerprint else None

    def create(self, version: str, dim: int) -> VectorStore:
        return EdgeStore.create(versions_dir(self.root) / version / "shard", dim)

    def publish(self, meta: IndexMeta) -> list[str]:
        # meta.json is written last: its presence marks the version complete.
        write_meta(versions_dir(self.root) / meta.version, meta)
        set_current(self.root, meta.version)
        return prune_versions(self.root)

    def close(self) -> None:
        return None


# --------------------------------------------------------------------------- server, cluster, local mode
class _ServerReader:
    def __init__(self, collections: QdrantCollections, *, alias: str):
        self._collections = collections
        self.alias = alias
        self.backend = collections.backend

    @property
    def recheck_s(self) -> float:
        return SERVER_RECHECK_S

    def live_versions(self) -> list[str]:
        target = self._collections.alias_target(self.alias)
        return [target] if target else []

    def open_version(self, version: str) -> VectorStore:
        # The collection itself, not the alias: a query begun on it finishes there after a swap.
        return self._collections.store(version)

    def status(self) -> dict[str, Any]:
        target = self._collections.alias_target(self.alias)
        if not target:
            raise IndexNotReady()
        info = self._collections.describe(target)
        return {
            "backend": self.backend,
            "version": target,
            "units": info["units"],
            "status": info["status"],
            "shard_number": info["shard_number"],
            "replication_factor": info["replication_factor"],
        }

    def close(self) -> None:
        self._collections.close()


class _ServerWriter:
    def __init__(self, collections: QdrantCollections, *, alias: str, shard_number: int, replication_factor: int):
        self._collections = collections
        self.alias = alias
        self.backend = collections.backend
        self.shard_number = shard_number
        self.replication_factor = replication_factor

    def _collection(self, version: str) -> str:
        return f"{self.alias}_{version.replace('-', '_')}"

    def unchanged(self, fingerprint: str, *, embed_model: str, documents: int) -> IndexMeta | None:
        live = self._collections.alias_target(self.alias)
        # Collection names end with the corpus fingerprint (see index.versions.new_version_name).
        if not live or not live.endswith(fingerprint[:8]):
            return None
        info = self._collections.describe(live)
        return IndexMeta(
            version=live, backend=self.backend, embed_model=embed_model, dim=info["dim"], units=info["units"],
            documents=documents, corpus_hash=fingerprint, built_at="", build_seconds=0.0, avgdl=0.0, collection=live,
        )

    def create(self, version: str, dim: int) -> VectorStore:
        return self._collections.create(
            self._collection(version), dim, shard_number=self.shard_number, replication_factor=self.replication_factor
        )

    def publish(self, meta: IndexMeta) -> list[str]:
        meta.collection = self._collection(meta.version)
        return self._collections.point_alias(self.alias, meta.collection)

    def close(self) -> None:
        self._collections.close()
