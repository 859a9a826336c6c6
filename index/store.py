"""One store interface, two Qdrant backends, one query shape.

* :class:`EdgeStore` — Qdrant Edge (``qdrant-edge-py``), the Qdrant engine
  in-process, over a shard directory. The embedded default.
* :class:`ClientStore` — ``qdrant-client`` against a server or cluster by URL
  (or its local mode, the stand-in for a server in tests).

Both run the same query (:meth:`StoreQuery.prefetches`): dense, BM25 and
character-bigram prefetches (again inside the sections a question names), fused with RRF, with every
filter inside the query so a unit the caller may not see is never scored.
Library errors are translated into :mod:`guideqa.errors` here, at the boundary.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

from guideqa.errors import IndexCorrupt, IndexLocked, IndexNotReady, IndexUnavailable
from index.sparse import SparseVec

__all__ = [
    "IndexPoint",
    "QueryFilter",
    "StoreQuery",
    "Prefetch",
    "StoreHit",
    "VectorStore",
    "EdgeStore",
    "ClientStore",
    "point_id",
    "KEYWORD_FIELDS",
]

DENSE = "dense"
SPARSE = "bm25"
BIGRAM = "bigram"
KEYWORD_FIELDS = ("id", "doc_id", "issuer", "kind", "tags", "access")


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
    """Filters applied inside the Qdrant query. ``access=None`` means no access restriction (admin)."""

    access: list[str] | None = None
    doc_ids: list[str] = field(default_factory=list)
    issuers: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    def conditions(self) -> list[tuple[str, list[str]]]:
        out = []
        if self.access is not None:
            # An empty group list matches nothing rather than everything.
            out.append(("access", list(self.access) or ["\x00none"]))
        for key, values in (("doc_id", self.doc_ids), ("issuer", self.issuers), ("kind", self.kinds), ("tags", self.tags)):
            if values:
                out.append((key, list(values)))
        return out


@dataclass
class StoreQuery:
    dense: list[float]
    sparse: SparseVec
    limit: int
    bigram: SparseVec = field(default_factory=lambda: SparseVec([], []))
    prefetch_limit: int = 50
    rrf_k: int = 60
    filter: QueryFilter = field(default_factory=QueryFilter)
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
    backend: str

    def upsert(self, points: list[IndexPoint]) -> None: ...
    def finish(self) -> None: ...
    def query(self, q: StoreQuery) -> list[StoreHit]: ...
    def retrieve(self, unit_ids: list[str], flt: QueryFilter | None = None) -> list[dict[str, Any]]: ...
    def scroll(self, flt: QueryFilter | None = None) -> Iterator[dict[str, Any]]: ...
    def count(self) -> int: ...
    def close(self) -> None: ...


# --------------------------------------------------------------------------- Edge
class EdgeStore:
    """A Qdrant Edge shard held by this process (Edge locks its WAL: one process per shard)."""

    backend = "qdrant-edge"

    def __init__(self, shard: Any, path: Path):
        self._shard = shard
        self.path = path

    @classmethod
    def create(cls, path: Path, dim: int) -> "EdgeStore":
        import qdrant_edge as qe

        path.mkdir(parents=True, exist_ok=True)
        cfg = qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
            sparse_vectors={
                SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf),
                BIGRAM: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf),
            },
        )
        shard = qe.EdgeShard.create(str(path), cfg)
        ops = [qe.UpdateOperation.create_field_index(f, qe.PayloadSchemaType.Keyword) for f in KEYWORD_FIELDS]
        for op in ops:
            shard.update(op)
        _write_holder(path)
        return cls(shard, path)

    @classmethod
    def open(cls, path: Path) -> "EdgeStore":
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
        self._shard.update(qe.UpdateOperation.upsert_points(batch))

    def finish(self) -> None:
        self._shard.optimize()
        self._shard.flush()

    def _filter(self, flt: QueryFilter | None, extra: list[tuple[str, list[str]]] | None = None) -> Any:
        import qdrant_edge as qe

        conds = (flt.conditions() if flt else []) + (extra or [])
        if not conds:
            return None
        return qe.Filter(must=[qe.FieldCondition(key=k, match=qe.MatchAny(v)) for k, v in conds])

    def query(self, q: StoreQuery) -> list[StoreHit]:
        import qdrant_edge as qe

        flt = self._filter(q.filter)
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
            filter=flt,
            with_payload=True,
            with_vector=[DENSE],
        )
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

    def retrieve(self, unit_ids: list[str], flt: QueryFilter | None = None) -> list[dict[str, Any]]:
        import qdrant_edge as qe

        if not unit_ids:
            return []
        req = qe.ScrollRequest(limit=len(unit_ids), filter=self._filter(flt, [("id", list(unit_ids))]), with_payload=True)
        records, _ = self._shard.scroll(req)
        by_id = {r.payload["id"]: dict(r.payload) for r in records}
        return [by_id[i] for i in unit_ids if i in by_id]

    def scroll(self, flt: QueryFilter | None = None) -> Iterator[dict[str, Any]]:
        import qdrant_edge as qe

        offset = None
        while True:
            records, offset = self._shard.scroll(
                qe.ScrollRequest(offset=offset, limit=256, filter=self._filter(flt), with_payload=True)
            )
            for r in records:
                yield dict(r.payload)
            if offset is None:
                break

    def count(self) -> int:
        import qdrant_edge as qe

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
def _server_errors() -> tuple[type[BaseException], ...]:
    """What qdrant-client raises when the server is down, restarting or unreachable."""
    import httpx
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    return (ResponseHandlingException, UnexpectedResponse, httpx.HTTPError, ConnectionError, TimeoutError)


def translate_server_errors(fn):
    """Turn a dead or restarting server into :class:`IndexUnavailable` (503), not a 500."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except IndexNotReady:
            raise
        except _server_errors() as exc:
            raise IndexUnavailable(detail=f"{type(exc).__name__}: {exc}") from exc

    return wrapper


class ClientStore:
    """A collection on a Qdrant server/cluster (or qdrant-client's local mode)."""

    def __init__(self, client: Any, collection: str, *, backend: str = "qdrant-server", owns_client: bool = True):
        self._client = client
        self.collection = collection
        self.backend = backend
        self._owns_client = owns_client

    @staticmethod
    def connect(*, url: str | None = None, api_key: str | None = None, local_path: Path | None = None, timeout: int = 30) -> Any:
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

    @classmethod
    def create(cls, client: Any, collection: str, dim: int, *, shard_number: int = 1, replication_factor: int = 1, backend: str = "qdrant-server") -> "ClientStore":
        from qdrant_client import models

        if client.collection_exists(collection):
            client.delete_collection(collection)
        extra: dict[str, Any] = {}
        if backend == "qdrant-server":
            extra = {"shard_number": shard_number, "replication_factor": replication_factor}
        client.create_collection(
            collection,
            vectors_config={DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)},
            sparse_vectors_config={
                SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF),
                BIGRAM: models.SparseVectorParams(modifier=models.Modifier.IDF),
            },
            **extra,
        )
        for f in KEYWORD_FIELDS:
            client.create_payload_index(collection, f, models.PayloadSchemaType.KEYWORD)
        return cls(client, collection, backend=backend)

    @translate_server_errors
    def upsert(self, points: list[IndexPoint]) -> None:
        from qdrant_client import models

        self._client.upsert(
            self.collection,
            points=[
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
            ],
            wait=True,
        )

    def finish(self) -> None:
        return None  # the server optimises in the background; upserts waited already

    def _filter(self, flt: QueryFilter | None, extra: list[tuple[str, list[str]]] | None = None) -> Any:
        from qdrant_client import models

        conds = (flt.conditions() if flt else []) + (extra or [])
        if not conds:
            return None
        return models.Filter(must=[models.FieldCondition(key=k, match=models.MatchAny(any=v)) for k, v in conds])

    @translate_server_errors
    def query(self, q: StoreQuery) -> list[StoreHit]:
        from qdrant_client import models

        flt = self._filter(q.filter)
        prefetch = [
            models.Prefetch(
                query=p.vector if p.using == DENSE else models.SparseVector(indices=p.vector.indices, values=p.vector.values),
                using=p.using,
                limit=q.prefetch_limit,
                filter=self._filter(q.filter, p.conditions),
            )
            for p in q.prefetches()
        ]
        try:
            res = self._client.query_points(
                self.collection,
                prefetch=prefetch,
                query=models.RrfQuery(rrf=models.Rrf(k=q.rrf_k, weights=q.fusion_weights())),
                query_filter=flt,
                limit=q.limit,
                with_payload=True,
                with_vectors=[DENSE],
            )
        except ValueError as exc:  # local mode: missing collection
            raise IndexNotReady(detail=str(exc)) from exc
        return [
            StoreHit(unit_id=p.payload["id"], score=float(p.score), payload=dict(p.payload), dense=_dense_of(p.vector))
            for p in res.points
        ]

    @translate_server_errors
    def retrieve(self, unit_ids: list[str], flt: QueryFilter | None = None) -> list[dict[str, Any]]:
        if not unit_ids:
            return []
        records, _ = self._client.scroll(
            self.collection, scroll_filter=self._filter(flt, [("id", list(unit_ids))]), limit=len(unit_ids), with_payload=True
        )
        by_id = {r.payload["id"]: dict(r.payload) for r in records}
        return [by_id[i] for i in unit_ids if i in by_id]

    @translate_server_errors
    def scroll(self, flt: QueryFilter | None = None) -> Iterator[dict[str, Any]]:
        offset = None
        while True:
            records, offset = self._client.scroll(
                self.collection, scroll_filter=self._filter(flt), limit=256, offset=offset, with_payload=True
            )
            for r in records:
                yield dict(r.payload)
            if offset is None:
                break

    @translate_server_errors
    def count(self) -> int:
        return int(self._client.count(self.collection, exact=True).count)

    def close(self) -> None:
        if not self._owns_client:
            return
        try:
            self._client.close()
        except Exception:  # noqa: BLE001 - closing a dead connection must not mask the caller's error
            pass
