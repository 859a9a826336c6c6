"""``POST /v1/compare``: one topic side by side across the documents (no LLM)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from service.api.deps import CallerDep, StateDep
from service.models import CompareRequest, CompareResponse, ErrorResponse
from service.request import run_compare

router = APIRouter(prefix="/v1", tags=["compare"])


@router.post(
    "/compare",
    response_model=CompareResponse,
    summary="Compare documents on a topic (national vs. Tokyo vs. MIC vs. the office's own rules)",
    responses={401: {"model": ErrorResponse}, 422: {"model": ErrorResponse}, 429: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)
async def compare(body: CompareRequest, caller: CallerDep, state: StateDep) -> CompareResponse:
    """For each document (the office's own binding rules first), its best verbatim sentences on the
    topic, cited — or a plain statement that it says nothing on it. Built from the documents alone;
    nothing here is generated. The topic passes the input guard and is audited like a question."""
    return await run_in_threadpool(run_compare, state, caller, body.topic, doc_ids=body.doc_ids)
