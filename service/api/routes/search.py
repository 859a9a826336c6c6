"""``POST /v1/search``: ranked units, no LLM."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import CallerDep, SearcherDep
from service.models import ErrorResponse, SearchRequest, SearchResponse
from service.search import search_units

router = APIRouter(prefix="/v1", tags=["search"])


@router.post(
    "/search",
    response_model=SearchResponse,
    summary="Ranked clauses for a question",
    responses={401: {"model": ErrorResponse}, 422: {"model": ErrorResponse}, 429: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)
def search(body: SearchRequest, caller: CallerDep, searcher: SearcherDep) -> SearchResponse:
    """Hybrid (dense + BM25, RRF) search over clause-level units the caller may see."""
    return search_units(searcher, body.query, top_k=body.top_k, filters=body.filters, groups=caller.access)
