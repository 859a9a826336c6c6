"""``POST /v1/feedback``: 👍/👎 with a comment, tied to an answer ID."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from guideqa.errors import NotFound
from service.api.deps import CallerDep, StateDep
from service.models import ErrorResponse, FeedbackCreate, FeedbackPublic

router = APIRouter(prefix="/v1", tags=["feedback"])


@router.post("/feedback", response_model=FeedbackPublic, responses={404: {"model": ErrorResponse}, 503: {"model": ErrorResponse}})
async def feedback(body: FeedbackCreate, caller: CallerDep, state: StateDep) -> FeedbackPublic:
    """Attach a rating (and an optional comment, PII-masked) to an earlier answer.

    Only the key that got the answer may rate it; another key's answer is reported
    as not found, like one that does not exist.
    """
    rating = 1 if body.rating == "up" else -1
    ok = await run_in_threadpool(lambda: state.audit.add_feedback(body.answer_id, rating, body.comment or None, key_id=caller.key_id))
    if not ok:
        raise NotFound("指定された回答が見つかりません。")
    return FeedbackPublic(answer_id=body.answer_id, rating=body.rating, recorded=True)
