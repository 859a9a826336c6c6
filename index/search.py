"""Read side of the index: hybrid search over the live version.

:class:`Searcher` never builds anything. It follows the live version
(:class:`~index.live.LiveIndex` over :func:`~index.backend.open_index`, so it never
knows which backend it has), looks up the version's tables
(:class:`~index.catalog.Catalog`), analyses the question (:mod:`index.query`) and
runs one fused query on the store.

Every method that reads units takes the reader's :class:`~index.store.QueryFilter`,
keyword-only and without a default; admin and system reads pass
``QueryFilter.everything()``. Questions are validated and normalised by the service
(``service/request.py``: types, control bytes, NFKC, the character and token
limits) before they get here; the searcher refuses only what it cannot search at
all: a non-string or an empty question.

    >>> searcher = Searcher(Settings(), embed_model=..., tokenizer=...)                       # doctest: +SKIP
    >>> searcher.search("3C情報はクラウドに入れていい？", top_k=5, flt=QueryFilter(access=["public"]))  # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding

from guideqa.errors import QueryEmpty, QueryInvalid
from guideqa.settings import Settings
from index.backend import open_index
from index.catalog import Catalog, Occurrence
from index.display import highlight_terms, shown_under
from index.embed_cache import EmbeddingCache, PassageVectors, QueryVectors
from index.live import LiveIndex, OpenVersion
from index.naming import DocumentInfo, NamedDocuments
from index.query import (
    captioned_articles,
    defined_terms,
    documents_named,
    pinned_sections,
    unknown_entities,
)
from index.sparse import char_bigrams, query_vector
from index.store import QueryFilter, StoreQuery, VectorStore
from index.text import lexical_text
from index.tokenizer import COMPOUND_PREFIX, JapaneseTokenizer
from ingest.models import Unit

__all__ = ["SearchHit", "SearchResult", "CuratedCandidate", "Searcher", "QUERY_CACHE_SIZE", "CURATED_CANDIDATES"]

QUERY_CACHE_SIZE = 1024
#: Registered Q&A scored per question; the fused query puts any close one among them.
CURATED_CANDIDATES = 20


@dataclass
class SearchHit:
    """One ranked unit. ``score`` is the fused RRF score; the others explain it."""

    unit: dict[str, Any]
    score: float
    dense_score: float
    lexical: float
    matched_terms: list[str]
    rank: int

    @property
    def unit_id(self) -> str:
        return self.unit["id"]


@dataclass
class CuratedCandidate:
    """A registered Q&A near a question: its unit payload, the cosine of the two questions and
    how much of their wording they share (Dice coefficient of their character bigrams, 1.0: the same words)."""

    unit: dict[str, Any]
    cosine: float
    overlap: float


@dataclass
class SearchResult:
    query: str
    hits: list[SearchHit]
    index_version: str
    timings: dict[str, float] = field(default_factory=dict)
    sections: list[str] = field(default_factory=list)
    query_terms: list[str] = field(default_factory=list)
    unknown_entities: list[str] = field(default_factory=list)
    captioned: list[str] = field(default_factory=list)  # units of rule articles whose 見出し the question says in full


class Searcher:
    """Hybrid search over the live index version, shared by the CLI, the API and eval."""

    def __init__(self, settings: Settings, *, embed_model: BaseEmbedding, tokenizer: JapaneseTokenizer):
        self.settings = settings
        self.embed_model = embed_model
        self.tokenizer = tokenizer
        self._live = LiveIndex(lambda: open_index(settings), prepare=self._catalog)
        self._queries = QueryVectors(embed_model, size=QUERY_CACHE_SIZE)
        self._passages: PassageVectors | None = None
        self._passages_lock = threading.Lock()

    # ------------------------------------------------------------------ the live version
    def _catalog(self, store: VectorStore) -> Catalog:
        return Catalog.build(store.scroll(flt=QueryFilter.everything()), self.tokenizer)

    def _current(self) -> OpenVersion:
        return self._live.current()

    @property
    def index_version(self) -> str:
        return self._current().version

    @property
    def store(self) -> VectorStore:
        return self._current().store

    def close(self) -> None:
        """Release the index (a later call opens it again) and the passage-vector cache."""
        self._live.close()
        with self._passages_lock:
            if self._passages is not None:
                self._passages.cache.close()
                self._passages = None

    # ------------------------------------------------------------------ searching
    def search(
        self,
        query: str,
        *,
        flt: QueryFilter,
        top_k: int | None = None,
        strategy: str = "hybrid",
        weights: tuple[float, ...] | None = None,
    ) -> SearchResult:
        """Hybrid dense + BM25 search fused with RRF, ``flt`` applied inside the query.

        Args:
            query: the question as the service validated and normalised it.
            flt: what the reader may see (and the request's own filters).

        Raises:
            QueryInvalid / QueryEmpty: not a string, or nothing to search.
            IndexNotReady / IndexCorrupt / IndexLocked / IndexUnavailable: no usable index.
        """
        t0 = time.perf_counter()
        q = _searchable(query)
        live = self._current()
        catalog = live.catalog
        k = top_k or self.settings.top_k
        words = self.tokenizer.tokens(q, query=True)
        content = [w for w in words if not w.startswith(COMPOUND_PREFIX)]
        if not words:
            # Only symbols or emoji: nothing to match on; a dense search would return noise.
            return SearchResult(q, [], live.version, {"total_ms": _ms(t0)})
        t1 = time.perf_counter()
        dense = self.query_vector(q)
        t2 = time.perf_counter()
        sections, section_ids = pinned_sections(q, catalog)
        captioned = captioned_articles(words, catalog)
        raw = live.store.query(
            StoreQuery(
                dense=dense,
                sparse=query_vector(words),
                bigram=query_vector(char_bigrams(q)),
                limit=k,
                prefetch_limit=self.settings.prefetch_limit,
                rrf_k=self.settings.rrf_k,
                filter=flt,
                section_units=sorted(set(section_ids) | set(defined_terms(q, catalog)) | set(captioned)),
                strategy=strategy,
                weights=weights or (self.settings.rrf_weight_dense, self.settings.rrf_weight_bm25, self.settings.rrf_weight_section, self.settings.rrf_weight_bigram),
            )
        )
        t3 = time.perf_counter()
        # Equal fused scores come back in no fixed order; the unit ID settles them, so the same
        # question gets the same ranking every time.
        raw = sorted(raw, key=lambda h: (-h.score, str(h.payload.get("id", ""))))
        q_terms = set(words)
        surfaces = [w.surface for w in self.tokenizer.words(q)] + [t[len(COMPOUND_PREFIX):] for t in words if t.startswith(COMPOUND_PREFIX)]
        hits = []
        for rank, h in enumerate(raw, start=1):
            unit = Unit.model_validate(h.payload)
            u_terms = catalog.unit_terms.get(unit.id) or frozenset(self.tokenizer.tokens(lexical_text(unit)))
            overlap = len(q_terms & u_terms) / max(len(q_terms), 1)
            cos = sum(a * b for a, b in zip(dense, h.dense)) if h.dense else 0.0
            hits.append(
                SearchHit(
                    unit=shown_under(h.payload, sections),
                    score=h.score,
                    dense_score=round(cos, 4),
                    lexical=round(overlap, 4),
                    matched_terms=highlight_terms(unit.text + "\n" + unit.row, surfaces),
                    rank=rank,
                )
            )
        timings = {
            "tokenize_ms": round((t1 - t0) * 1000, 2),
            "embed_ms": round((t2 - t1) * 1000, 2),
            "query_ms": round((t3 - t2) * 1000, 2),
            "total_ms": _ms(t0),
        }
        unknown = unknown_entities(q, catalog, self.tokenizer)
        return SearchResult(q, hits, live.version, timings, sections, sorted(set(content)), unknown, captioned)

    # ------------------------------------------------------------------ registered Q&A
    def curated_candidates(self, query: str, *, flt: QueryFilter, limit: int = CURATED_CANDIDATES) -> list[CuratedCandidate]:
        """The registered Q&A closest to ``query``, each with the cosine and the wording overlap of the two questions, best first.

        One fused query (dense, BM25, bigram) over the ``curated`` units alone; only the
        access part of ``flt`` applies (a caller matches only the items of groups it may see).

        Raises:
            QueryInvalid / QueryEmpty: not a string, or nothing to search.
            IndexNotReady / IndexCorrupt / IndexLocked / IndexUnavailable: no usable index.
        """
        q = _searchable(query)
        words = self.tokenizer.tokens(q, query=True)
        if not words:
            return []
        dense = self.query_vector(q)
        raw = self._current().store.query(
            StoreQuery(
                dense=dense,
                sparse=query_vector(words),
                bigram=query_vector(char_bigrams(q)),
                limit=limit,
                prefetch_limit=limit,
                rrf_k=self.settings.rrf_k,
                filter=QueryFilter.curated_for(flt.access),
            )
        )
        grams = set(char_bigrams(q))
        found = [
            CuratedCandidate(
                unit=h.payload,
                cosine=round(sum(a * b for a, b in zip(dense, h.dense or [])), 4),
                overlap=round(_dice(grams, set(char_bigrams(h.payload["text"]))), 4),
            )
            for h in raw
        ]
        return sorted(found, key=lambda c: -c.cosine)

    # ------------------------------------------------------------------ units
    def get_units(self, unit_ids: list[str], *, flt: QueryFilter) -> list[dict[str, Any]]:
        """The payloads of ``unit_ids`` that ``flt`` admits, in the order asked (others dropped)."""
        return self._current().store.retrieve(unit_ids, flt=flt)

    def iter_units(self, *, flt: QueryFilter) -> Iterator[dict[str, Any]]:
        """Every payload ``flt`` admits."""
        return self._current().store.scroll(flt=flt)

    def documents(self, *, flt: QueryFilter) -> dict[str, DocumentInfo]:
        """The live index's documents with a unit ``flt``'s access labels admit, by doc_id."""
        return self._current().catalog.documents_for(flt)

    def named_documents(self, query: str, *, flt: QueryFilter) -> NamedDocuments:
        """The documents ``query`` names (issuer, place, kind of document, 「本市」) among those
        ``flt`` admits, and the place names none of them knows."""
        return documents_named(query, self._current().catalog, self.tokenizer, flt=flt)

    # ------------------------------------------------------------------ lookups (every access label)
    def pinned_sections(self, query: str, catalog: Catalog) -> tuple[list[str], list[str]]:
        """See :func:`index.query.pinned_sections`: can match a section only hidden units stand under."""
        return pinned_sections(query, catalog)

    @staticmethod
    def defined_terms(query: str, catalog: Catalog) -> list[str]:
        """See :func:`index.query.defined_terms`: the IDs may name hidden definition units."""
        return defined_terms(query, catalog)

    @staticmethod
    def section_units(names: Iterable[str], catalog: Catalog) -> list[str]:
        """See :meth:`Catalog.section_units`: the IDs may name hidden units."""
        return catalog.section_units(names)

    def sections_named(self, query: str) -> tuple[list[str], list[str]]:
        """The section names ``query`` mentions and the IDs of the units under them, of every
        access label (a hidden section's name is matched; read the units through a filter)."""
        return pinned_sections(query, self._current().catalog)

    def occurrences_under(self, prefix: list[str] | tuple[str, ...], *, doc_id: str | None = None) -> list[Occurrence]:
        """Every unit occurrence whose path starts with ``prefix`` (document title first), in
        document order; IDs and paths of every access label, never text."""
        return self._current().catalog.occurrences_under(tuple(prefix), doc_id=doc_id)

    def glossary_entries(self, term: str) -> list[str]:
        """IDs of the definition units whose defined term is ``term`` (NFKC), of every access
        label; empty if none. Read the units through the caller's filter."""
        return self._current().catalog.glossary_entries(term)

    def term_units(self, term: str) -> int:
        """How many units of the live index hold ``term`` (0: the corpus never uses the word)."""
        return self._current().catalog.term_df.get(term, 0)

    def term_weight(self, term: str) -> float:
        """BM25's IDF of ``term`` over all the live index's units (rare words weigh more).

        Counts hidden units too, so a weight says a little about how common a word is
        in material the caller may not see; it is used only to rank visible sentences.
        """
        return self._current().catalog.term_weight(term)

    # ------------------------------------------------------------------ embeddings
    def query_vector(self, q: str) -> list[float]:
        """The question's embedding, remembered for the last :data:`QUERY_CACHE_SIZE` questions."""
        return self._queries.get(q)

    def passage_vectors(self, texts: list[str]) -> list[list[float]]:
        """Embeddings of sentences to score (cached by text; the build embeds the corpus's sentences ahead)."""
        with self._passages_lock:
            if self._passages is None:
                self._passages = PassageVectors(self.embed_model, EmbeddingCache(self.settings.embed_cache_path))
            passages = self._passages
        return passages.get(texts)

    def clear_query_cache(self) -> None:
        self._queries.clear()


def _searchable(query: Any) -> str:
    """The query stripped. The service has already validated it; this guards direct callers.

    Raises:
        QueryInvalid: not a string. QueryEmpty: empty or blank.
    """
    if not isinstance(query, str):
        raise QueryInvalid()
    q = query.strip()
    if not q:
        raise QueryEmpty()
    return q


def _dice(a: set[str], b: set[str]) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a or b else 0.0


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)
