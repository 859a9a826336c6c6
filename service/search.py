"""The ranked-clauses function behind ``guideqa search``, ``POST /v1/search`` and the clauses mode."""

from __future__ import annotations

from pathlib import Path

from index.search import SearchHit, Searcher
from index.store import QueryFilter
from service.batch import run_batch
from service.models import Filters, SearchHitPublic, SearchResponse

__all__ = ["to_query_filter", "hit_public", "search_units", "batch_search"]


def to_query_filter(filters: Filters | None, groups: list[str] | None) -> QueryFilter:
    """API filters plus the caller's access groups (``None`` = admin, sees everything)."""
    f = filters or Filters()
    return QueryFilter(access=groups, doc_ids=f.doc_ids, issuers=f.issuers, kinds=list(f.kinds), tags=f.tags)


def hit_public(h: SearchHit) -> SearchHitPublic:
    u = h.unit
    return SearchHitPublic(
        rank=h.rank,
        id=u["id"],
        score=round(h.score, 5),
        dense_score=h.dense_score,
        lexical=h.lexical,
        doc_id=u["doc_id"],
        doc_title=u["doc_title"],
        section_path=u["section_path"],
        kind=u["kind"],
        tags=u.get("tags") or [],
        text=u["text"],
        matched_terms=h.matched_terms,
        source_file=u["source_file"],
        line_start=u["line_start"],
        line_end=u["line_end"],
    )


def search_units(
    searcher: Searcher, query: str, *, top_k: int = 5, filters: Filters | None = None, groups: list[str] | None = ("public",)  # type: ignore[assignment]
) -> SearchResponse:
    """Ranked units for ``query``; the caller's groups restrict what can be returned."""
    res = searcher.search(query, top_k=top_k, flt=to_query_filter(filters, list(groups) if groups is not None else None))
    return SearchResponse(
        query=res.query,
        results=[hit_public(h) for h in res.hits],
        index_version=res.index_version,
        sections=res.sections,
        timings=res.timings,
    )


def batch_search(searcher: Searcher, questions: Path, out: Path, *, top_k: int = 5) -> int:
    """Read ``{"id", "question"}`` lines, write ``{"id", "results": [...]}`` lines, best first."""

    def results(question: str) -> dict:
        res = search_units(searcher, question, top_k=top_k)
        return {
            "results": [
                {"id": r.id, "text": r.text, "score": r.score, "doc_title": r.doc_title, "section_path": r.section_path, "kind": r.kind}
                for r in res.results
            ]
        }

    return run_batch(questions, out, results)
