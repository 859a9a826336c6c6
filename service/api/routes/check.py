"""``POST /v1/check`` and ``GET /v1/check/classes``: the confidentiality verdict and its table."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from service.api.deps import CallerDep, StateDep
from service.models import CheckRequest, CheckResponse, ClassRow, ErrorResponse
from service.request import check_table, run_check

router = APIRouter(prefix="/v1/check", tags=["check"])

ACCESS_DOC = """
The verdict is computed only from rules whose cited unit the caller may see: a class or
service wording whose source is outside the caller's access groups is treated as unknown,
so such a caller gets 判断できない with no quote rather than text they may not read.
"""


@router.post(
    "",
    response_model=CheckResponse,
    response_model_by_alias=True,
    summary="「この情報を、このサービスに入れていい？」 as a cited verdict",
    description="Send either `question`, or `information` and `service`. The verdict comes from the rules file, not from generation.\n" + ACCESS_DOC,
    responses={401: {"model": ErrorResponse}, 422: {"model": ErrorResponse}, 429: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)
async def check(body: CheckRequest, caller: CallerDep, state: StateDep) -> CheckResponse:
    return await run_in_threadpool(run_check, state, caller, question=body.question, information=body.information, service=body.service)


@router.get("/classes", response_model=list[ClassRow], summary="The confidentiality class table (rows the caller may see)")
async def classes(caller: CallerDep, state: StateDep) -> list[ClassRow]:
    return await run_in_threadpool(check_table, state, caller)
