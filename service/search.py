"""The ranked-clauses function behind ``guideqa search``, ``POST /v1/search`` and the clauses mode.

Call it through :mod:`service.request` (``run_search``), which validates, guards
and audits the question first; this module only searches what the caller may see.
"""

from __future__ import annotations

from index.search import SearchHit
from index.store import QueryFilter
from service.auth import Caller
from service.models import Filters, SearchHitPublic

__all__ = ["to_query_filter", "caller_filter", "hit_public"]


def caller_filter(caller: Caller, filters: Filters | None = None) -> QueryFilter:
    """The caller's access rule plus the API filters, always an explicit filter."""
    f = filters or Filters()
    return caller.query_filter(doc_ids=f.doc_ids, issuers=f.issuers, kinds=list(f.kinds), tags=f.tags)


def to_query_filter(filters: Filters | None, groups: list[str] | None) -> QueryFilter:
    """API filters plus access labels, for the answer pipeline's ``groups=``.

    Args:
        filters: the request's filters.
        groups: the labels the caller may see; ``None`` means every label (what
            ``Caller.access`` gives admins and the system caller — never a default).
    """
    f = filters or Filters()
    # The same shape Caller.query_filter builds; an empty list matches nothing.
    return QueryFilter(access=None if groups is None else list(groups), doc_ids=f.doc_ids, issuers=f.issuers, kinds=list(f.kinds), tags=f.tags)


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
