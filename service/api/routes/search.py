"""``POST /v1/search``: ranked units, no LLM."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from service.api.deps import CallerDep, StateDep
from service.models import ErrorResponse, SearchRequest, SearchResponse
from service.request import run_search

router = APIRouter(prefix="/v1", tags=["search"])


@router.post(
    "/search",
    response_model=SearchResponse,
    summary="Ranked clauses for a question",
    responses={401: {"model": ErrorResponse}, 422: {"model": ErrorResponse}, 429: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)
async def search(body: SearchRequest, caller: CallerDep, state: StateDep) -> SearchResponse:
    """Hybrid (dense + BM25, RRF) search over clause-level units the caller may see.

    The query passes the input guard like a question to `/v1/ask`, is audited, and
    is echoed normalised and masked.
    """
    return await run_in_threadpool(run_search, state, caller, body.query, top_k=body.top_k, filters=body.filters)
