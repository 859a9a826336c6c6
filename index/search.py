"""Read side of the index: open the live version and run hybrid searches.

:class:`Searcher` never builds anything. It opens the live version (an Edge
shard directory named by ``CURRENT``, or a server collection behind an alias),
notices when a rebuild has swapped in a new version and moves to it without a
restart, and keeps serving the previous version if the new one cannot be opened.

    >>> searcher = Searcher(Settings(), embed_model=..., tokenizer=...)   # doctest: +SKIP
    >>> result = searcher.search("3C情報はクラウドに入れていい？", top_k=5)  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterable
import logging
import re
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding

from guideqa.errors import IndexCorrupt, IndexError_, IndexLocked, IndexNotReady, QueryRejected
from guideqa.settings import Settings
from index.sparse import char_bigrams, query_vector
from index.store import ClientStore, EdgeStore, QueryFilter, StoreQuery, VectorStore, translate_server_errors
from index.text import bare_section, lexical_text
from index.tokenizer import COMPOUND_PREFIX, JapaneseTokenizer
from index.versions import read_meta, resolve_current
from ingest.models import Unit

_DEFINITION_INTENT = re.compile(r"定義|意味|とは|って何|ってなに|って(?:どういう|どんな)こと|指す")
_ASKED_ABOUT = r"[」』\"]?(?:って|とは|の定義|の意味|は何|はなに)"  # the term is what is asked about

__all__ = ["SearchHit", "SearchResult", "Searcher", "validate_query", "highlight_terms"]

log = logging.getLogger(__name__)
_SERVER_RECHECK_S = 5.0
QUERY_CACHE_SIZE = 1024


def validate_query(query: Any, *, max_chars: int) -> str:
    """Check a user query before anything else sees it.

    Returns:
        The query, stripped.

    Raises:
        QueryRejected: not a string (``query_invalid``), empty (``query_empty``),
            over ``max_chars`` (``query_too_long``) or containing control bytes (``query_binary``).
    """
    if not isinstance(query, str):
        raise QueryRejected("質問は文字列で入力してください。", code="query_invalid")
    q = query.strip()
    if not q:
        raise QueryRejected("質問が空です。内容を入力してください。", code="query_empty")
    if len(q) > max_chars:
        raise QueryRejected(f"質問が長すぎます（{len(q)} 文字）。{max_chars} 文字以内で入力してください。", code="query_too_long")
    if any(unicodedata.category(c) == "Cc" and c not in "\n\r\t" for c in q) or "\ufffd" in q:
        raise QueryRejected("質問に読み取れない文字（制御文字やバイナリ）が含まれています。", code="query_binary")
    return q


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
class SearchResult:
    query: str
    hits: list[SearchHit]
    index_version: str
    timings: dict[str, float] = field(default_factory=dict)
    sections: list[str] = field(default_factory=list)
    query_terms: list[str] = field(default_factory=list)
    unknown_entities: list[str] = field(default_factory=list)


@dataclass
class _Open:
    store: VectorStore
    version: str
    sections: list[str]
    unit_paths: dict[str, list[frozenset[str]]]  # unit id -> the bare section names of each of its paths
    glossary: dict[str, str]  # defined term (NFKC) -> the id of its definition unit
    vocabulary: frozenset[str]
    unit_terms: dict[str, frozenset[str]]
    opened_at: float


def highlight_terms(text: str, terms: list[str]) -> list[str]:
    """The terms that occur in ``text`` (NFKC-insensitive), longest first, as spelled in ``text`` when possible."""
    norm = unicodedata.normalize("NFKC", text).lower()
    found = []
    for t in sorted(set(terms), key=len, reverse=True):
        if t and t.lower() in norm and not any(t.lower() in f.lower() for f in found):
            found.append(t)
    return found


class Searcher:
    """Hybrid search over the live index version, shared by the CLI, the API and eval."""

    def __init__(self, settings: Settings, *, embed_model: BaseEmbedding, tokenizer: JapaneseTokenizer):
        self.settings = settings
        self.embed_model = embed_model
        self.tokenizer = tokenizer
        self._lock = threading.Lock()
        self._open: _Open | None = None
        self._previous: _Open | None = None
        self._checked = 0.0
        self._client: Any = None
        self._query_cache: OrderedDict[str, list[float]] = OrderedDict()

    # ------------------------------------------------------------------ opening
    def _open_edge(self) -> _Open | None:
        root = self.settings.index_root
        candidates = resolve_current(root)
        if not candidates:
            return None
        if self._open and self._open.version == candidates[0]:
            return self._open
        last_error: IndexError_ | None = None
        for version in candidates:
            if self._open and version == self._open.version:
                return self._open  # the newer one failed; keep serving what we have
            meta = read_meta(root / "versions" / version)
            try:
                store = EdgeStore.open(root / "versions" / version / "shard")
                if meta and store.count() != meta.units:
                    store.close()
                    raise IndexCorrupt(detail=f"{version}: {meta.units} units expected")
            except IndexLocked:
                raise
            except IndexError_ as exc:
                log.error("index version %s unusable: %s", version, exc.detail or exc.message)
                last_error = exc
                continue
            return self._make_open(store, version)
        if last_error:
            raise last_error
        return None

    @translate_server_errors
    def _open_server(self) -> _Open | None:
        # One client for the life of the searcher: local mode locks its folder, and a
        # server connection is worth keeping. The alias is re-read on each re-check.
        if self._client is None:
            self._client = ClientStore.connect(
                url=self.settings.qdrant_url,
                api_key=self.settings.qdrant_api_key.get_secret_value() if self.settings.qdrant_api_key else None,
                local_path=self.settings.qdrant_local_path,
            )
        alias = self.settings.qdrant_collection
        target = [a.collection_name for a in self._client.get_aliases().aliases if a.alias_name == alias]
        if not target:
            return None
        if self._open and self._open.version == target[0]:
            return self._open
        store = ClientStore(self._client, alias, backend=self.settings.backend_name, owns_client=False)
        return self._make_open(store, target[0])

    def _make_open(self, store: VectorStore, version: str) -> _Open:
        """Read what queries need from the whole index once: section names and the words it contains."""
        sections: set[str] = set()
        unit_paths: dict[str, list[frozenset[str]]] = {}
        vocabulary: set[str] = set()
        unit_terms: dict[str, frozenset[str]] = {}
        glossary: dict[str, str] = {}
        for payload in store.scroll(None):
            unit = _unit_of(payload)
            if unit.kind == "definition" and unit.title:
                glossary[unicodedata.normalize("NFKC", unit.title)] = unit.id
            unit_paths[unit.id] = [frozenset(b for b in map(bare_section, path[1:]) if b) for path in unit.all_paths()]
            sections.update(*unit_paths[unit.id])
            terms = frozenset(self.tokenizer.tokens(lexical_text(unit)))
            unit_terms[unit.id] = terms
            vocabulary.update(terms)
            vocabulary.update(self.tokenizer.entity_terms(unit.text + "\n" + " ".join(unit.section_path)))
        names = sorted(n for n in sections if len(n) >= 2)
        return _Open(store, version, names, unit_paths, glossary, frozenset(vocabulary), unit_terms, time.monotonic())

    def _handle(self) -> _Open:
        with self._lock:
            now = time.monotonic()
            server = self.settings.backend_name != "qdrant-edge"
            if self._open is None or not server or now - self._checked > _SERVER_RECHECK_S:
                self._checked = now
                fresh = self._open_server() if server else self._open_edge()
                if fresh is None and self._open is None:
                    raise IndexNotReady()
                if fresh is not None and fresh is not self._open:
                    # Keep one previous version open: a query that started on it may still be running.
                    if self._previous is not None:
                        self._previous.store.close()
                    self._previous, self._open = self._open, fresh
                    log.info("serving index version %s", fresh.version)
            assert self._open is not None
            return self._open

    @property
    def index_version(self) -> str:
        return self._handle().version

    @property
    def store(self) -> VectorStore:
        return self._handle().store

    def close(self) -> None:
        with self._lock:
            for h in (self._previous, self._open):
                if h is not None:
                    h.store.close()
            self._open = self._previous = None
            if self._client is not None:
                self._client.close()
                self._client = None

    # ------------------------------------------------------------------ searching
    def pinned_sections(self, query: str, handle: _Open) -> tuple[list[str], list[str]]:
        """Section names the query mentions that one path of some unit runs through together,
        and the IDs of the units on such a path (``([], [])`` when it names none).

        Longest match wins (都民サービス関連業務 over 都民サービス); of the names found, the
        largest combination that one path contains is kept, so a stray generic
        name (フェーズ) cannot empty the filter.
        """
        q = re.sub(r"\s+", "", unicodedata.normalize("NFKC", query))
        hits = [s for s in handle.sections if len(s) >= 2 and s in q]
        hits = [s for s in hits if not any(s != o and s in o for o in hits)][:6]
        for size in range(len(hits), 0, -1):
            for combo in itertools.combinations(hits, size):
                if size == 1 and len(combo[0]) < 3:
                    continue
                ids = self.section_units(combo, handle)
                if ids:
                    return list(combo), ids
        return [], []

    @staticmethod
    def defined_terms(query: str, handle: _Open) -> list[str]:
        """IDs of the definitions of the terms a question asks the meaning of (生成AIって何？).

        Only when the question asks what something means: a question that merely
        uses ハルシネーション should not get the glossary entry pushed up. Longest
        match wins, so 生成AI does not also pin AI.
        """
        q = re.sub(r"\s+", "", unicodedata.normalize("NFKC", query))
        if not _DEFINITION_INTENT.search(q):
            return []
        found = [t for t in handle.glossary if len(t) >= 2 and re.search(re.escape(t) + _ASKED_ABOUT, q)]
        return sorted(handle.glossary[t] for t in found if not any(t != o and t in o for o in found))

    @staticmethod
    def section_units(names: Iterable[str], handle: _Open) -> list[str]:
        """IDs of the units with one path under every section in ``names``.

        Per path, not over the union of a merged unit's paths: the Tokyo items repeated
        in 12 sections would otherwise all match 職員内部業務 + 廃止 because one copy sits
        under 職員内部業務 and another under some 廃止.
        """
        wanted = set(names)
        return sorted(uid for uid, paths in handle.unit_paths.items() if any(wanted <= p for p in paths))

    def search(
        self,
        query: str,
        *,
        top_k: int | None = None,
        flt: QueryFilter | None = None,
        strategy: str = "hybrid",
        weights: tuple[float, ...] | None = None,
    ) -> SearchResult:
        """Hybrid dense + BM25 search fused with RRF, filters applied inside the query.

        Raises:
            QueryRejected: empty, oversize or binary query.
            IndexNotReady / IndexCorrupt / IndexLocked: no usable index.
        """
        t0 = time.perf_counter()
        q = validate_query(query, max_chars=self.settings.max_query_chars)
        handle = self._handle()
        k = top_k or self.settings.top_k
        words = self.tokenizer.tokens(q, query=True)
        content = [w for w in words if not w.startswith(COMPOUND_PREFIX)]
        if not words:
            # Only symbols or emoji: nothing to match on; a dense search would return noise.
            return SearchResult(q, [], handle.version, {"total_ms": _ms(t0)})
        t1 = time.perf_counter()
        dense = self._query_vector(q)
        t2 = time.perf_counter()
        sections, section_ids = self.pinned_sections(q, handle)
        raw = handle.store.query(
            StoreQuery(
                dense=dense,
                sparse=query_vector(words),
                bigram=query_vector(char_bigrams(q)),
                limit=k,
                prefetch_limit=self.settings.prefetch_limit,
                rrf_k=self.settings.rrf_k,
                filter=flt or QueryFilter(access=["public"]),
                section_units=sorted(set(section_ids) | set(self.defined_terms(q, handle))),
                strategy=strategy,
                weights=weights or (self.settings.rrf_weight_dense, self.settings.rrf_weight_bm25, self.settings.rrf_weight_section, self.settings.rrf_weight_bigram),
            )
        )
        t3 = time.perf_counter()
        q_terms = set(words)
        surfaces = [w.surface for w in self.tokenizer.words(q)] + [t[len(COMPOUND_PREFIX):] for t in words if t.startswith(COMPOUND_PREFIX)]
        hits = []
        for rank, h in enumerate(raw, start=1):
            unit = _unit_of(h.payload)
            u_terms = handle.unit_terms.get(unit.id) or frozenset(self.tokenizer.tokens(lexical_text(unit)))
            overlap = len(q_terms & u_terms) / max(len(q_terms), 1)
            cos = sum(a * b for a, b in zip(dense, h.dense)) if h.dense else 0.0
            hits.append(
                SearchHit(
                    unit=_shown_under(h.payload, sections),
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
        unknown = [e for e in self.tokenizer.entity_terms(q) if e not in handle.vocabulary]
        return SearchResult(q, hits, handle.version, timings, sections, sorted(set(content)), unknown)

    def _query_vector(self, q: str) -> list[float]:
        """The question's embedding, remembered for the last :data:`QUERY_CACHE_SIZE` questions.

        Staff ask the same questions again and again (and the widget re-asks in
        clauses mode); on 2 cores the query embedding is most of a search's cost.
        """
        with self._lock:
            vec = self._query_cache.get(q)
            if vec is not None:
                self._query_cache.move_to_end(q)
                return vec
        vec = self.embed_model.get_query_embedding(q)
        with self._lock:
            self._query_cache[q] = vec
            while len(self._query_cache) > QUERY_CACHE_SIZE:
                self._query_cache.popitem(last=False)
        return vec

    def clear_query_cache(self) -> None:
        with self._lock:
            self._query_cache.clear()

    def get_units(self, unit_ids: list[str], flt: QueryFilter | None) -> list[dict[str, Any]]:
        return self._handle().store.retrieve(unit_ids, flt)

    def iter_units(self, flt: QueryFilter | None):
        return self._handle().store.scroll(flt)


def _shown_under(payload: dict[str, Any], sections: list[str]) -> dict[str, Any]:
    """The unit as seen from the sections the question named.

    A merged unit carries the path of its first occurrence; when the question named
    職員内部業務 > 廃止, the citation should show (and link to) that occurrence, not the
    都民サービス one the same wording was first found under.
    """
    if not sections:
        return payload
    wanted = set(sections)
    for prov in payload.get("provenance") or []:
        if wanted <= {bare_section(seg) for seg in prov["section_path"][1:]}:
            if prov["section_path"] == payload["section_path"]:
                return payload
            return {**payload, **{k: prov[k] for k in ("section_path", "source_file", "line_start", "line_end") if k in prov}}
    return payload


def _unit_of(payload: dict[str, Any]) -> Unit:
    return Unit.model_validate(payload)


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)
