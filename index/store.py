"""One store interface, two Qdrant backends, one query shape.

* :class:`EdgeStore` — Qdrant Edge (``qdrant-edge-py``), the Qdrant engine
  in-process, over a shard directory. The embedded default.
* :class:`ClientStore` — one collection through ``qdrant-client``: a server or
  cluster by URL, or its local mode (the stand-in for a server in tests).
  :class:`QdrantCollections` holds the client and manages the collections and
  the alias behind which the live one stands.

Both run the same query (:meth:`StoreQuery.prefetches`): dense, BM25 and
character-bigram prefetches (again inside the sections a question names), fused with RRF, with every
filter inside the query so a unit the caller may not see is never scored. Registered Q&A (units of
kind ``curated``) are left out of every read the same way, unless the filter asks for them alone
(:meth:`QueryFilter.curated_for`).

Every call into either library is translated into :mod:`guideqa.errors` here, at
the boundary, iteration included (:func:`_edge_errors`, :func:`_client_errors`)::

    Edge: shard closed under a query      → IndexUnavailable
          anything else it reports        → IndexCorrupt
    client: server down, timeout, 5xx     → IndexUnavailable
            collection or alias missing   → IndexNotReady  (404; local mode's ValueError)
            local mode folder locked      → IndexLocked
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from guideqa.errors import (
    GuideQAError,
    IndexCorrupt,
    IndexLocked,
    IndexNotReady,
    IndexUnavailable,
)
from index.sparse import SparseVec
from ingest.models import CURATED_KIND

__all__ = [
    "IndexPoint",
    "QueryFilter",
    "StoreQuery",
    "Prefetch",
    "StoreHit",
    "VectorStore",
    "EdgeStore",
    "ClientStore",
    "QdrantCollections",
    "point_id",
    "KEYWORD_FIELDS",
]

DENSE = "dense"
SPARSE = "bm25"
BIGRAM = "bigram"
KEYWORD_FIELDS = ("id", "doc_id", "issuer", "kind", "tags", "access")
SCROLL_PAGE = 256


def point_id(unit_id: str) -> int:
    """Qdrant point ID for a unit ID (63-bit, stable across backends)."""
    return int.from_bytes(hashlib.blake2b(unit_id.encode(), digest_size=8).digest(), "big") >> 1


@dataclass
class IndexPoint:
    unit_id: str
    dense: list[float]
    sparse: SparseVec
    bigram: SparseVec
    payload: dict[str, Any]


@dataclass
class QueryFilter:
    """Filters applied inside the Qdrant query; every read of units takes one.

    ``access`` is required: the labels the reader may see (``["public"]``), an
    empty list for none. Admin and system reads say so with :meth:`everything`
    rather than by leaving the filter out.

    Units of kind ``curated`` (registered Q&A) are excluded from every read
    (:meth:`exclusions`); ``curated=True`` reads those alone (:meth:`curated_for`).

        >>> QueryFilter(access=["public"], doc_ids=["tokyo_ai-guideline_2026-03-30"]).conditions()[0]
        ('access', ['public'])
        >>> QueryFilter.everything().conditions(), QueryFilter.everything().exclusions()
        ([], [('kind', ['curated'])])
        >>> QueryFilter.curated_for(["public"]).conditions(), QueryFilter.curated_for(["public"]).exclusions()
        ([('access', ['public']), ('kind', ['curated'])], [])
    """

    access: list[str] | None
    doc_ids: list[str] = field(default_factory=list)
    issuers: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    curated: bool = False

    @classmethod
    def everything(cls) -> QueryFilter:
        """No restriction but the registered Q&A: every access label, every document (admin and system reads)."""
        return cls(access=None)

    @classmethod
    def curated_for(cls, access: list[str] | None) -> QueryFilter:
        """Only the registered Q&A whose group is among ``access`` (``None``: every group)."""
        return cls(access=None if access is None else list(access), curated=True)

    def admits(self, labels: Iterable[str]) -> bool:
        """Whether the access part lets the reader see something labelled with one of ``labels``."""
        return self.access is None or bool(set(labels) & set(self.access))

    def conditions(self) -> list[tuple[str, list[str]]]:
        out = []
        if self.access is not None:
            # An empty group list matches nothing rather than everything.
            out.append(("access", list(self.access) or ["\x00none"]))
        kinds = [CURATED_KIND] if self.curated else self.kinds
        for key, values in (("doc_id", self.doc_ids), ("issuer", self.issuers), ("kind", kinds), ("tags", self.tags)):
            if values:
                out.append((key, list(values)))
        return out

    def exclusions(self) -> list[tuple[str, list[str]]]:
        """Conditions no result may meet: the registered Q&A, unless they are what is read."""
        return [] if self.curated else [("kind", [CURATED_KIND])]


@dataclass
class StoreQuery:
    dense: list[float]
    sparse: SparseVec
    limit: int
    filter: QueryFilter
    bigram: SparseVec = field(default_factory=lambda: SparseVec([], []))
    prefetch_limit: int = 50
    rrf_k: int = 60
    section_units: list[str] = field(default_factory=list)  # IDs under the sections the question names
    strategy: str = "hybrid"  # hybrid | dense | bm25 (the last two for ablations)
    weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)  # RRF weight of dense, bm25, section, bigram prefetches

    def prefetches(self) -> list[Prefetch]:
        """The ranked lists both stores send, in fusion order.

        A question that names a section gets the same three signals again inside
        that section: Qdrant's weighted RRF compresses ranks rather than scaling
        scores, so one extra list adds at most 1/(k-1) and the section's items lost
        to any unit that all three global lists agree on.
        """
        signals = []
        if self.strategy in ("hybrid", "dense"):
            signals.append((DENSE, self.dense, self.weights[0]))
        if self.strategy in ("hybrid", "bm25") and self.sparse:
            signals.append((SPARSE, self.sparse, self.weights[1]))
        if self.strategy in ("hybrid", "bigram") and self.bigram:
            signals.append((BIGRAM, self.bigram, self.weights[3]))
        out = [Prefetch(using, vector, [], weight) for using, vector, weight in signals]
        if self.section_units and self.strategy == "hybrid":
            out += [Prefetch(using, vector, [("id", self.section_units)], self.weights[2]) for using, vector, _ in signals]
        return out

    def fusion_weights(self) -> list[float]:
        """The weights of the prefetches actually sent, in order."""
        return [p.weight for p in self.prefetches()]


@dataclass
class Prefetch:
    """One ranked list of the fused query: a vector, extra filter conditions, its RRF weight."""

    using: str
    vector: Any  # list[float] for DENSE, SparseVec otherwise
    conditions: list[tuple[str, list[str]]]
    weight: float


@dataclass
class StoreHit:
    unit_id: str
    score: float
    payload: dict[str, Any]
    dense: list[float] | None = None


class VectorStore(Protocol):
    """One index version's points. Reads take the caller's filter, always."""

    backend: str

    def upsert(self, points: list[IndexPoint]) -> None: ...
    def finish(self) -> None: ...
    def query(self, q: StoreQuery) -> list[StoreHit]: ...
    def retrieve(self, unit_ids: list[str], *, flt: QueryFilter) -> list[dict[str, Any]]: ...
    def scroll(self, *, flt: QueryFilter) -> Iterator[dict[str, Any]]: ...
    def count(self) -> int: ...
    def close(self) -> None: ...


# --------------------------------------------------------------------------- Edge
@contextmanager
def _edge_errors(path: Path) -> Iterator[None]:
    """Edge raises a plain ``Exception`` carrying a message; say which of ours it is."""
    try:
        yield
    except GuideQAError:
        raise
    except Exception as exc:  # noqa: BLE001 - Edge has no exception classes of its own
        text = str(exc)
        if "not initialized" in text:
            # The shard was closed under the call: a swap retired this version mid-query.
            raise IndexUnavailable(detail=f"{path}: {text}") from exc
        raise IndexCorrupt(detail=f"{path}: {text}") from exc


class EdgeStore:
    """A Qdrant Edge shard held by this process (Edge locks its WAL: one process per shard)."""

    backend = "qdrant-edge"

    def __init__(self, shard: Any, path: Path):
        self._shard = shard
        self.path = path

    @classmethod
    def create(cls, path: Path, dim: int) -> EdgeStore:
        import qdrant_edge as qe

        path.mkdir(parents=True, exist_ok=True)
        cfg = qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
            sparse_vectors={
                SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf),
                BIGRAM: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf),
            },
        )
        with _edge_errors(path):
            shard = qe.EdgeShard.create(str(path), cfg)
            for f in KEYWORD_FIELDS:
                shard.update(qe.UpdateOperation.create_field_index(f, qe.PayloadSchemaType.Keyword))
        _write_holder(path)
        return cls(shard, path)

    @classmethod
    def open(cls, path: Path) -> EdgeStore:
        """Open an existing shard; a lock held elsewhere becomes :class:`IndexLocked` naming the holder."""
        import qdrant_edge as qe

        if not path.is_dir():
            raise IndexNotReady(detail=f"no shard at {path}")
        try:
            shard = qe.EdgeShard.load(str(path))
        except Exception as exc:  # Edge raises a plain Exception carrying a message
            text = str(exc)
            if "WouldBlock" in text or "lock" in text.lower():
                holder = _read_holder(path)
                who = f"（pid {holder.get('pid')}: {holder.get('cmd', '?')}）" if holder else ""
                raise IndexLocked(
                    f"検索インデックスは別のプロセスが使用中です{who}。そのプロセスを停止するか、API 経由で利用してください。",
                    detail=text,
                ) from exc
            raise IndexCorrupt(detail=f"{path}: {text}") from exc
        _write_holder(path)
        return cls(shard, path)

    def upsert(self, points: list[IndexPoint]) -> None:
        import qdrant_edge as qe

        batch = [
            qe.Point(
                point_id(p.unit_id),
                {
                    DENSE: p.dense,
                    SPARSE: qe.SparseVector(p.sparse.indices, p.sparse.values),
                    BIGRAM: qe.SparseVector(p.bigram.indices, p.bigram.values),
                },
                p.payload,
            )
            for p in points
        ]
        with _edge_errors(self.path):
            self._shard.update(qe.UpdateOperation.upsert_points(batch))

    def finish(self) -> None:
        with _edge_errors(self.path):
            self._shard.optimize()
            self._shard.flush()

    def _filter(self, flt: QueryFilter, extra: list[tuple[str, list[str]]] | None = None) -> Any:
        import qdrant_edge as qe

        conds = flt.conditions() + (extra or [])
        excluded = flt.exclusions()
        if not conds and not excluded:
            return None
        return qe.Filter(
            must=[qe.FieldCondition(key=k, match=qe.MatchAny(v)) for k, v in conds] or None,
            must_not=[qe.FieldCondition(key=k, match=qe.MatchAny(v)) for k, v in excluded] or None,
        )

    def query(self, q: StoreQuery) -> list[StoreHit]:
        import qdrant_edge as qe

        prefetches = [
            qe.Prefetch(
                limit=q.prefetch_limit,
                query=qe.Query.Nearest(p.vector if p.using == DENSE else qe.SparseVector(p.vector.indices, p.vector.values), using=p.using),
                filter=self._filter(q.filter, p.conditions),
            )
            for p in q.prefetches()
        ]
        req = qe.QueryRequest(
            limit=q.limit,
            query=qe.Fusion.Rrf(k=q.rrf_k, weights=q.fusion_weights()),
            prefetches=prefetches,
            filter=self._filter(q.filter),
            with_payload=True,
            with_vector=[DENSE],
        )
        with _edge_errors(self.path):
            hits = self._shard.query(req)
        return [
            StoreHit(
                unit_id=h.payload["id"],
                score=float(h.score),
                payload=dict(h.payload),
                dense=_dense_of(h.vector),
            )
            for h in hits
        ]

    def retrieve(self, unit_ids: list[str], *, flt: QueryFilter) -> list[dict[str, Any]]:
        """The payloads of ``unit_ids`` that ``flt`` admits, in the order asked (unknown IDs dropped)."""
        import qdrant_edge as qe

        if not unit_ids:
            return []
        req = qe.ScrollRequest(limit=len(unit_ids), filter=self._filter(flt, [("id", list(unit_ids))]), with_payload=True)
        with _edge_errors(self.path):
            records, _ = self._shard.scroll(req)
        by_id = {r.payload["id"]: dict(r.payload) for r in records}
        return [by_id[i] for i in unit_ids if i in by_id]

    def scroll(self, *, flt: QueryFilter) -> Iterator[dict[str, Any]]:
        """Every payload ``flt`` admits, page by page."""
        import qdrant_edge as qe

        offset = None
        while True:
            with _edge_errors(self.path):
                records, offset = self._shard.scroll(
                    qe.ScrollRequest(offset=offset, limit=SCROLL_PAGE, filter=self._filter(flt), with_payload=True)
                )
            for r in records:
                yield dict(r.payload)
            if offset is None:
                break

    def count(self) -> int:
        import qdrant_edge as qe

        with _edge_errors(self.path):
            return int(self._shard.count(qe.CountRequest(exact=True)))

    def close(self) -> None:
        try:
            self._shard.close()
        finally:
            holder = self.path / "holder.json"
            if _read_holder(self.path).get("pid") == os.getpid():
                holder.unlink(missing_ok=True)


def _dense_of(vector: Any) -> list[float] | None:
    if isinstance(vector, dict):
        v = vector.get(DENSE)
        return list(v) if v is not None else None
    return None


def _write_holder(path: Path) -> None:
    import sys

    info = {"pid": os.getpid(), "cmd": " ".join(os.path.basename(a) for a in sys.argv[:3])}
    try:
        (path / "holder.json").write_text(json.dumps(info), encoding="utf-8")
    except OSError:
        pass  # informational only: the lock itself is Edge's


def _read_holder(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / "holder.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


# --------------------------------------------------------------------------- qdrant-client
@contextmanager
def _client_errors(where: str) -> Iterator[None]:
    """Translate what qdrant-client raises, on a server or in local mode, into our tree.

    A context manager rather than a decorator, so it sits inside a generator's loop:
    an error raised while scrolling is translated like any other.
    """
    import httpx
    from qdrant_client.http.exceptions import (
        ResponseHandlingException,
        UnexpectedResponse,
    )

    try:
        yield
    except GuideQAError:
        raise
    except UnexpectedResponse as exc:
        if exc.status_code == 404:
            raise IndexNotReady(detail=f"{where}: {exc}") from exc
        raise IndexUnavailable(detail=f"{where}: {type(exc).__name__}: {exc}") from exc
    except (ResponseHandlingException, httpx.HTTPError, ConnectionError, TimeoutError) as exc:
        raise IndexUnavailable(detail=f"{where}: {type(exc).__name__}: {exc}") from exc
    except ValueError as exc:
        # Local mode reports a missing collection, and any other refusal, as ValueError.
        if "not found" in str(exc):
            raise IndexNotReady(detail=f"{where}: {exc}") from exc
        raise IndexCorrupt(detail=f"{where}: {exc}") from exc
    except RuntimeError as exc:  # local mode: the client was closed under the call
        raise IndexUnavailable(detail=f"{where}: {exc}") from exc


class ClientStore:
    """One collection on a Qdrant server/cluster (or in qdrant-client's local mode).

    Args:
        client: a ``QdrantClient`` (see :meth:`connect`); closed with the store when ``owns_client``.
        collection: the collection, or an alias naming one.
    """

    def __init__(self, client: Any, collection: str, *, backend: str = "qdrant-server", owns_client: bool = True):
        self._client = client
        self.collection = collection
        self.backend = backend
        self._owns_client = owns_client

    @staticmethod
    def connect(*, url: str | None = None, api_key: str | None = None, local_path: Path | None = None, timeout: int = 30) -> Any:
        """A ``QdrantClient`` for ``url``, else local mode in ``local_path``, else in memory.

        Raises:
            IndexLocked: another process holds the local-mode folder.
        """
        from qdrant_client import QdrantClient

        if url:
            return QdrantClient(url=url, api_key=api_key, timeout=timeout, prefer_grpc=False, check_compatibility=False)
        if local_path is not None:
            local_path.mkdir(parents=True, exist_ok=True)
            try:
                return QdrantClient(path=str(local_path))
            except RuntimeError as exc:  # local mode locks its folder with portalocker
                raise IndexLocked(detail=str(exc)) from exc
        return QdrantClient(location=":memory:")

    def upsert(self, points: list[IndexPoint]) -> None:
        from qdrant_client import models

        batch = [
            models.PointStruct(
                id=point_id(p.unit_id),
                vector={
                    DENSE: p.dense,
                    SPARSE: models.SparseVector(indices=p.sparse.indices, values=p.sparse.values),
                    BIGRAM: models.SparseVector(indices=p.bigram.indices, values=p.bigram.values),
                },
                payload=p.payload,
            )
            for p in points
        ]
        with _client_errors(self.collection):
            self._client.upsert(self.collection, points=batch, wait=True)

    def finish(self) -> None:
        return None  # the server optimises in the background; upserts waited already

    def _filter(self, flt: QueryFilter, extra: list[tuple[str, list[str]]] | None = None) -> Any:
        from qdrant_client import models

        conds = flt.conditions() + (extra or [])
        excluded = flt.exclusions()
        if not conds and not excluded:
            return None
        return models.Filter(
            must=[models.FieldCondition(key=k, match=models.MatchAny(any=v)) for k, v in conds] or None,
            must_not=[models.FieldCondition(key=k, match=models.MatchAny(any=v)) for k, v in excluded] or None,
        )

    def query(self, q: StoreQuery) -> list[StoreHit]:
        from qdrant_client import models

        prefetch = [
            models.Prefetch(
                query=p.vector if p.using == DENSE else models.SparseVector(indices=p.vector.indices, values=p.vector.values),
                using=p.using,
                limit=q.prefetch_limit,
                filter=self._filter(q.filter, p.conditions),
            )
            for p in q.prefetches()
        ]
        with _client_errors(self.collection):
            res = self._client.query_points(
                self.collection,
                prefetch=prefetch,
                query=models.RrfQuery(rrf=models.Rrf(k=q.rrf_k, weights=q.fusion_weights())),
                query_filter=self._filter(q.filter),
                limit=q.limit,
                with_payload=True,
                with_vectors=[DENSE],
            )
        return [
            StoreHit(unit_id=p.payload["id"], score=float(p.score), payload=dict(p.payload), dense=_dense_of(p.vector))
            for p in res.points
        ]

    def retrieve(self, unit_ids: list[str], *, flt: QueryFilter) -> list[dict[str, Any]]:
        """The payloads of ``unit_ids`` that ``flt`` admits, in the order asked (unknown IDs dropped)."""
        if not unit_ids:
            return []
        with _client_errors(self.collection):
            records, _ = self._client.scroll(
                self.collection, scroll_filter=self._filter(flt, [("id", list(unit_ids))]), limit=len(unit_ids), with_payload=True
            )
        by_id = {r.payload["id"]: dict(r.payload) for r in records}
        return [by_id[i] for i in unit_ids if i in by_id]

    def scroll(self, *, flt: QueryFilter) -> Iterator[dict[str, Any]]:
        """Every payload ``flt`` admits, page by page."""
        offset = None
        while True:
            with _client_errors(self.collection):
                records, offset = self._client.scroll(
                    self.collection, scroll_filter=self._filter(flt), limit=SCROLL_PAGE, offset=offset, with_payload=True
                )
            for r in records:
                yield dict(r.payload)
            if offset is None:
                break

    def count(self) -> int:
        with _client_errors(self.collection):
            return int(self._client.count(self.collection, exact=True).count)

    def close(self) -> None:
        if not self._owns_client:
            return
        try:
            self._client.close()
        except Exception:  # noqa: BLE001 - closing a dead connection must not mask the caller's error
            pass


class QdrantCollections:
    """The collections on one Qdrant server (or local-mode folder) and the alias naming the live one.

    Versions are collections ``<alias>_<version>``; a rebuild fills a new one and then
    moves the alias in one operation, so readers never see a half-built collection.

    Args:
        client: a ``QdrantClient`` from :meth:`ClientStore.connect`; closed by :meth:`close`.
        backend: ``qdrant-server`` or ``qdrant-local`` (what stores report as their backend).
    """

    def __init__(self, client: Any, *, backend: str):
        self._client = client
        self.backend = backend

    def alias_target(self, alias: str) -> str | None:
        """The collection ``alias`` points at, or ``None``."""
        with _client_errors(alias):
            aliases = self._client.get_aliases().aliases
        return next((a.collection_name for a in aliases if a.alias_name == alias), None)

    def store(self, collection: str) -> ClientStore:
        """A store on ``collection`` sharing this client (closing the store leaves the client open)."""
        return ClientStore(self._client, collection, backend=self.backend, owns_client=False)

    def create(self, collection: str, dim: int, *, shard_number: int = 1, replication_factor: int = 1) -> ClientStore:
        """A new, empty collection (a leftover of the same name is replaced), with its payload indexes."""
        from qdrant_client import models

        extra: dict[str, Any] = {}
        if self.backend == "qdrant-server":
            extra = {"shard_number": shard_number, "replication_factor": replication_factor}
        with _client_errors(collection):
            if self._client.collection_exists(collection):
                self._client.delete_collection(collection)
            self._client.create_collection(
                collection,
                vectors_config={DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)},
                sparse_vectors_config={
                    SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF),
                    BIGRAM: models.SparseVectorParams(modifier=models.Modifier.IDF),
                },
                **extra,
            )
            for f in KEYWORD_FIELDS:
                self._client.create_payload_index(collection, f, models.PayloadSchemaType.KEYWORD)
        return self.store(collection)

    def point_alias(self, alias: str, collection: str) -> list[str]:
        """Point ``alias`` at ``collection`` in one operation, then drop the collections behind it
        except the live one and the one it replaced (a reader may still be on that).

        Returns:
            The collections dropped.
        """
        from qdrant_client import models

        old = self.alias_target(alias)
        ops: list[Any] = []
        if old:
            ops.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
        ops.append(models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=collection, alias_name=alias)))
        keep = {collection, old}
        dropped = []
        with _client_errors(alias):
            self._client.update_collection_aliases(change_aliases_operations=ops)
            # Decided by the alias, not by name order: names need not sort by age.
            for c in self._client.get_collections().collections:
                if c.name.startswith(f"{alias}_v") and c.name not in keep:
                    self._client.delete_collection(c.name)
                    dropped.append(c.name)
        return dropped

    def describe(self, collection: str) -> dict[str, Any]:
        """Points, status, shards and replicas of ``collection``."""
        with _client_errors(collection):
            info = self._client.get_collection(collection)
            units = int(self._client.count(collection, exact=True).count)
        params = info.config.params
        return {
            "units": units,
            "dim": _dense_size(params.vectors),
            "status": str(info.status),
            "shard_number": params.shard_number,
            "replication_factor": params.replication_factor,
        }

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:  # noqa: BLE001 - closing a dead connection must not mask the caller's error
            pass


def _dense_size(vectors: Any) -> int:
    if isinstance(vectors, dict) and DENSE in vectors:
        return int(vectors[DENSE].size)
    return 0
