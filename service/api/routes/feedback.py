"""``POST /v1/feedback``: 👍/👎 with a comment, tied to an answer ID."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from guideqa.errors import GuideQAError
from service.api.deps import CallerDep, StateDep
from service.models import ErrorResponse, FeedbackCreate, FeedbackPublic

router = APIRouter(prefix="/v1", tags=["feedback"])


class AnswerNotFound(GuideQAError):
    code = "not_found"
    default_message = "指定された回答が見つかりません。"


@router.post("/feedback", response_model=FeedbackPublic, responses={404: {"model": ErrorResponse}})
async def feedback(body: FeedbackCreate, caller: CallerDep, state: StateDep) -> FeedbackPublic:
    """Attach a rating (and an optional comment, PII-masked) to an earlier answer."""
    # The audit log masks PII in the comment before it is stored.
    rating = 1 if body.rating == "up" else -1
    ok = await run_in_threadpool(state.audit.add_feedback, body.answer_id, rating, body.comment or None)
    if not ok:
        raise AnswerNotFound()
    return FeedbackPublic(answer_id=body.answer_id, rating=body.rating, recorded=True)
