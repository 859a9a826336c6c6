"""Write side of the index: units → embeddings + BM25 vectors → a new, complete index version.

Embeddings are cached by (model, text) in SQLite, so re-running ingest over
unchanged documents embeds nothing, and a changed document re-embeds only its
own units. A build never touches the live version: it writes a new shard
directory (or a new server collection) and only then moves the pointer
(``CURRENT``, or a collection alias on a server).
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from llama_index.core.base.embeddings.base import BaseEmbedding

from guideqa.settings import Settings
from index.sparse import bm25_document_vector, char_bigrams
from index.store import ClientStore, EdgeStore, IndexPoint
from index.text import embed_text, lexical_text
from index.tokenizer import JapaneseTokenizer
from index.versions import IndexMeta, new_version_name, prune_versions, read_meta, resolve_current, set_current, write_meta
from ingest.models import Unit

__all__ = ["EmbeddingCache", "BuildReport", "corpus_hash", "build_index", "current_meta"]

BATCH = 16
# Bump when what a point holds changes (vectors, payload fields, the text behind them):
# an index of an older format is rebuilt even if the corpus did not change.
INDEX_FORMAT = 4


class EmbeddingCache:
    """Vectors keyed by model name and the exact text embedded."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
        self._lock = threading.Lock()

    @staticmethod
    def key(model: str, text: str) -> str:
        return hashlib.sha256(f"{model}\x1f{text}".encode()).hexdigest()

    def get_many(self, keys: list[str]) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                rows = self._db.execute(
                    f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
                for k, blob in rows:
                    out[k] = list(struct.unpack(f"{len(blob) // 4}f", blob))
        return out

    def put_many(self, items: dict[str, list[float]]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO emb (key, vec) VALUES (?, ?)",
                [(k, struct.pack(f"{len(v)}f", *v)) for k, v in items.items()],
            )
            self._db.commit()

    def close(self) -> None:
        self._db.close()


@dataclass
class BuildReport:
    meta: IndexMeta
    skipped: bool = False
    pruned: list[str] | None = None


def corpus_hash(units: list[Unit], model_name: str) -> str:
    """Fingerprint of what an index would contain: unit IDs, contents, access labels and the model."""
    h = hashlib.sha256(f"{model_name}\x1fformat{INDEX_FORMAT}".encode())
    for u in sorted(units, key=lambda u: u.id):
        h.update(f"{u.id}\x1f{u.content_hash}\x1f{u.access}\x1f{len(u.provenance)}\x1f{'|'.join(u.section_path)}\n".encode())
    return h.hexdigest()[:16]


def current_meta(settings: Settings) -> IndexMeta | None:
    """Metadata of the live embedded version, if any."""
    for version in resolve_current(settings.index_root):
        meta = read_meta(settings.index_root / "versions" / version)
        if meta:
            return meta
    return None


def _embed_all(
    units: list[Unit], model: BaseEmbedding, cache: EmbeddingCache, progress: Callable[[int, int], None] | None
) -> tuple[list[list[float]], int, int]:
    texts = [embed_text(u) for u in units]
    keys = [EmbeddingCache.key(model.model_name, t) for t in texts]
    found = cache.get_many(keys)
    missing = [i for i, k in enumerate(keys) if k not in found]
    done = len(units) - len(missing)
    if progress:
        progress(done, len(units))
    for start in range(0, len(missing), BATCH):
        idx = missing[start : start + BATCH]
        vecs = model.get_text_embedding_batch([texts[i] for i in idx])
        new = {keys[i]: v for i, v in zip(idx, vecs)}
        cache.put_many(new)
        found.update(new)
        done += len(idx)
        if progress:
            progress(done, len(units))
    return [found[k] for k in keys], len(missing), len(units) - len(missing)


def build_index(
    units: list[Unit],
    settings: Settings,
    *,
    embed_model: BaseEmbedding,
    tokenizer: JapaneseTokenizer,
    documents: int = 0,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> BuildReport:
    """Build a complete new index version and make it live.

    Args:
        units: the finished units from ingest.
        force: rebuild even if the live version already holds exactly these units.
        progress: called with (embedded so far, total).

    Returns:
        The new version's metadata, or the live one with ``skipped=True`` when nothing changed.
    """
    started = time.perf_counter()
    fingerprint = corpus_hash(units, embed_model.model_name)
    embedded_backend = settings.backend_name == "qdrant-edge"
    if embedded_backend and not force:
        live = current_meta(settings)
        if live and live.corpus_hash == fingerprint:
            return BuildReport(meta=live, skipped=True)

    cache = EmbeddingCache(settings.embed_cache_path)
    try:
        dense, embedded, reused = _embed_all(units, embed_model, cache, progress)
    finally:
        cache.close()
    token_lists = [tokenizer.tokens(lexical_text(u)) for u in units]
    gram_lists = [char_bigrams(lexical_text(u)) for u in units]
    avgdl = sum(len(t) for t in token_lists) / max(len(token_lists), 1)
    avg_grams = sum(len(g) for g in gram_lists) / max(len(gram_lists), 1)
    points = [
        IndexPoint(
            unit_id=u.id,
            dense=vec,
            sparse=bm25_document_vector(toks, avgdl),
            bigram=bm25_document_vector(grams, avg_grams),
            payload=u.model_dump(mode="json"),
        )
        for u, vec, toks, grams in zip(units, dense, token_lists, gram_lists)
    ]
    dim = len(dense[0]) if dense else 0
    version = new_version_name(fingerprint)
    meta = IndexMeta(
        version=version,
        backend=settings.backend_name,
        embed_model=embed_model.model_name,
        dim=dim,
        units=len(units),
        documents=documents or len({u.doc_id for u in units}),
        corpus_hash=fingerprint,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        build_seconds=0.0,
        avgdl=avgdl,
        embedded=embedded,
        reused_embeddings=reused,
    )
    if embedded_backend:
        root = settings.index_root
        vdir = root / "versions" / version
        store = EdgeStore.create(vdir / "shard", dim)
        try:
            for i in range(0, len(points), 256):
                store.upsert(points[i : i + 256])
            store.finish()
        finally:
            store.close()
        meta.build_seconds = round(time.perf_counter() - started, 2)
        write_meta(vdir, meta)
        set_current(root, version)
        pruned = prune_versions(root)
        return BuildReport(meta=meta, pruned=pruned)

    client = ClientStore.connect(
        url=settings.qdrant_url,
        api_key=settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None,
        local_path=settings.qdrant_local_path,
    )
    try:
        live = [a.collection_name for a in client.get_aliases().aliases if a.alias_name == settings.qdrant_collection]
        if live and live[0].endswith(fingerprint[:8]) and not force:
            # Collection names end with the corpus fingerprint: nothing to rebuild.
            meta.collection = live[0]
            meta.version = live[0]
            meta.units = client.count(live[0], exact=True).count
            return BuildReport(meta=meta, skipped=True)
        collection = f"{settings.qdrant_collection}_{version.replace('-', '_')}"
        store = ClientStore.create(
            client, collection, dim,
            shard_number=settings.qdrant_shard_number,
            replication_factor=settings.qdrant_replication_factor,
            backend=settings.backend_name,
        )
        for i in range(0, len(points), 256):
            store.upsert(points[i : i + 256])
        _swap_alias(client, settings.qdrant_collection, collection)
        meta.collection = collection
        meta.build_seconds = round(time.perf_counter() - started, 2)
        return BuildReport(meta=meta)
    finally:
        client.close()


def _swap_alias(client, alias: str, collection: str) -> None:
    """Point ``alias`` at ``collection`` in one operation, then drop all but the live and the previous collection."""
    from qdrant_client import models

    old = [a.collection_name for a in client.get_aliases().aliases if a.alias_name == alias]
    ops: list = []
    if old:
        ops.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
    ops.append(models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=collection, alias_name=alias)))
    client.update_collection_aliases(change_aliases_operations=ops)
    # Keep the live collection and the one it replaced (a reader may still be on it);
    # decide by the alias, not by name order.
    keep = {collection, *old}
    prefix = f"{alias}_v"
    for c in client.get_collections().collections:
        if c.name.startswith(prefix) and c.name not in keep:
            client.delete_collection(c.name)

