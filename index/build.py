"""Write side of the index: units → embeddings + BM25 vectors → a new, complete index version.

Embeddings are cached by (model, text) in SQLite, so re-running ingest over
unchanged documents embeds nothing, and a changed document re-embeds only its
own units. A build never touches the live version: it writes a new shard
directory (or a new server collection) and only then moves the pointer
(``CURRENT``, or a collection alias on a server); :func:`index.backend.open_writer`
knows which.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from llama_index.core.base.embeddings.base import BaseEmbedding

from guideqa.settings import Settings
from index.backend import open_writer
from index.embed_cache import EmbeddingCache, PassageVectors
from index.sparse import bm25_document_vector, char_bigrams
from index.store import IndexPoint
from index.text import embed_text, lexical_text, passages_to_score
from index.tokenizer import DATA_DIR, JapaneseTokenizer
from index.versions import IndexMeta, new_version_name
from ingest.models import CURATED_KIND, Unit

__all__ = ["BuildReport", "corpus_hash", "build_index"]

BATCH = 16
# Bump when what a point holds changes (vectors, payload fields, the text behind them):
# an index of an older format is rebuilt even if the corpus did not change.
INDEX_FORMAT = 5


@dataclass
class BuildReport:
    meta: IndexMeta
    skipped: bool = False
    pruned: list[str] | None = None


def corpus_hash(units: list[Unit], model_name: str) -> str:
    """Fingerprint of what an index would contain: every unit's whole payload, and the model.

    The whole payload, not only the text: a document relabelled in the manifest (its access,
    its authority) changes what the index must hold though no word of it changed. So does
    the list of domain compounds, which decides the BM25 tokens of every unit.
    """
    h = hashlib.sha256(f"{model_name}\x1fformat{INDEX_FORMAT}".encode())
    h.update((DATA_DIR / "compounds.tsv").read_bytes())
    for u in sorted(units, key=lambda u: u.id):
        h.update(u.model_dump_json().encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


def _mean_length(lists: list[list[str]], counted: list[bool]) -> float:
    """Mean length of the lists marked ``counted`` (1.0 when none is)."""
    lengths = [len(x) for x, c in zip(lists, counted) if c]
    return sum(lengths) / len(lengths) if lengths else 1.0


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
    """Build a complete new index version and make it live, on whichever backend settings name.

    Args:
        units: the finished units from ingest.
        force: rebuild even if the live version already holds exactly these units.
        progress: called with (embedded so far, total).

    Returns:
        The new version's metadata, or the live one with ``skipped=True`` when nothing changed.

    Raises:
        IndexLocked / IndexUnavailable: the index cannot be written (held elsewhere, server down).
    """
    started = time.perf_counter()
    fingerprint = corpus_hash(units, embed_model.model_name)
    # Registered Q&A are no document, no passage an answer quotes, and no part of the
    # corpus's BM25 statistics: with or without them, a document's vectors are the same.
    corpus = [u for u in units if u.kind != CURATED_KIND]
    n_documents = documents or len({u.doc_id for u in corpus})
    writer = open_writer(settings)
    try:
        if not force:
            live = writer.unchanged(fingerprint, embed_model=embed_model.model_name, documents=n_documents)
            if live:
                return BuildReport(meta=live, skipped=True)

        cache = EmbeddingCache(settings.embed_cache_path)
        try:
            dense, embedded, reused = _embed_all(units, embed_model, cache, progress)
            # The answer composer scores a clause's sentences one by one; embedding them now
            # keeps that off the question's path (they are cached by text like the units).
            PassageVectors(embed_model, cache).get(passages_to_score(corpus))
        finally:
            cache.close()
        token_lists = [tokenizer.tokens(lexical_text(u)) for u in units]
        gram_lists = [char_bigrams(lexical_text(u)) for u in units]
        in_corpus = [u.kind != CURATED_KIND for u in units]
        avgdl = _mean_length(token_lists, in_corpus)
        avg_grams = _mean_length(gram_lists, in_corpus)
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
        meta = IndexMeta(
            version=new_version_name(fingerprint),
            backend=settings.backend_name,
            embed_model=embed_model.model_name,
            dim=dim,
            units=len(units),
            documents=n_documents,
            corpus_hash=fingerprint,
            built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            build_seconds=0.0,
            avgdl=avgdl,
            embedded=embedded,
            reused_embeddings=reused,
        )
        store = writer.create(meta.version, dim)
        try:
            for i in range(0, len(points), 256):
                store.upsert(points[i : i + 256])
            store.finish()
        finally:
            store.close()
        meta.build_seconds = round(time.perf_counter() - started, 2)
        pruned = writer.publish(meta)
        return BuildReport(meta=meta, pruned=pruned)
    finally:
        writer.close()
