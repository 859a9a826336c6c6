"""Embeddings cached by text: the build's unit vectors, the composer's sentence vectors, the questions.

Unit and sentence vectors are keyed by (model name, exact text) in one SQLite file,
so re-ingesting an unchanged corpus embeds nothing and a sentence embedded at build
time costs a lookup when a question needs it. Question vectors are kept in memory
only (:class:`QueryVectors`).
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct
import threading
from collections import OrderedDict
from pathlib import Path

from llama_index.core.base.embeddings.base import BaseEmbedding

__all__ = ["EmbeddingCache", "PassageVectors", "QueryVectors"]


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


class PassageVectors:
    """Passage embeddings by exact text: a bounded memory map, then the SQLite cache, then the model.

    Args:
        embed_model: the same model the index was built with (its ``model_name`` keys the cache).
        cache: the persistent cache; vectors computed here are written back to it.
        memory: how many vectors to keep in memory.
    """

    def __init__(self, embed_model: BaseEmbedding, cache: EmbeddingCache, *, memory: int = 8192):
        self.embed_model = embed_model
        self.cache = cache
        self.memory = memory
        self._recent: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, texts: list[str], *, batch: int = 16) -> list[list[float]]:
        """One vector per text (``passage:`` side of the model), in order."""
        keys = [EmbeddingCache.key(self.embed_model.model_name, t) for t in texts]
        found: dict[str, list[float]] = {}
        with self._lock:
            for k in keys:
                if k in self._recent:
                    found[k] = self._recent[k]
                    self._recent.move_to_end(k)
        missing_keys = [k for k in dict.fromkeys(keys) if k not in found]
        if missing_keys:
            found.update(self.cache.get_many(missing_keys))
        todo = list(dict.fromkeys(t for t, k in zip(texts, keys) if k not in found))
        for start in range(0, len(todo), batch):
            chunk = todo[start : start + batch]
            vecs = self.embed_model.get_text_embedding_batch(chunk)
            new = {EmbeddingCache.key(self.embed_model.model_name, t): v for t, v in zip(chunk, vecs)}
            self.cache.put_many(new)
            found.update(new)
        with self._lock:
            for k in keys:
                self._recent[k] = found[k]
                self._recent.move_to_end(k)
            while len(self._recent) > self.memory:
                self._recent.popitem(last=False)
        return [found[k] for k in keys]


class QueryVectors:
    """The embeddings of the last ``size`` questions (``query:`` side of the model), in memory.

    Staff ask the same questions again and again (and the widget re-asks in clauses
    mode); on 2 cores the question's embedding is most of a search's cost.
    """

    def __init__(self, embed_model: BaseEmbedding, *, size: int = 1024):
        self.embed_model = embed_model
        self.size = size
        self._recent: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, query: str) -> list[float]:
        with self._lock:
            vec = self._recent.get(query)
            if vec is not None:
                self._recent.move_to_end(query)
                return vec
        vec = self.embed_model.get_query_embedding(query)
        with self._lock:
            self._recent[query] = vec
            while len(self._recent) > self.size:
                self._recent.popitem(last=False)
        return vec

    def clear(self) -> None:
        with self._lock:
            self._recent.clear()
