"""``POST /v1/check`` and ``GET /v1/check/classes``: the confidentiality verdict and its table."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from guideqa.errors import QueryRejected
from service.api.deps import CallerDep, StateDep
from service.api.protect import audit, protect
from service.models import CheckRequest, CheckResponse, ClassRow, ErrorResponse

router = APIRouter(prefix="/v1/check", tags=["check"])


@router.post(
    "",
    response_model=CheckResponse,
    response_model_by_alias=True,
    summary="「この情報を、このサービスに入れていい？」 as a cited verdict",
    responses={422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)
async def check(body: CheckRequest, caller: CallerDep, state: StateDep) -> CheckResponse:
    """Send either `question`, or `information` and `service`. The verdict comes from the rules file, not from generation."""
    if not body.question and not body.information:
        raise QueryRejected("question か information を指定してください。", code="query_empty")
    engine = await run_in_threadpool(lambda: state.check_engine)
    if body.question:
        q, masked = await run_in_threadpool(protect, state, caller, body.question, endpoint="/v1/check")
        result = engine.check(q)
    else:
        text = f"{body.information} / {body.service or ''}"
        _, masked = await run_in_threadpool(protect, state, caller, text, endpoint="/v1/check")
        result = engine.check(information=body.information, service=body.service or "")
    audit(state, caller, endpoint="/v1/check", question_masked=masked, mode="check", answer=result.verdict,
          citations=[c.unit_id for c in result.citations], abstained=result.verdict == "判断できない", model="rules")
    return result


@router.get("/classes", response_model=list[ClassRow], summary="The confidentiality class table")
async def classes(caller: CallerDep, state: StateDep) -> list[ClassRow]:
    engine = await run_in_threadpool(lambda: state.check_engine)
    return engine.table()
