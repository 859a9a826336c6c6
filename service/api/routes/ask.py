"""``POST /v1/ask``: a cited answer (JSON, or server-sent events with ``stream: true``)."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from guideqa.errors import GuideQAError, Overloaded
from service.answer.pipeline import AskEvent
from service.api.deps import CallerDep, StateDep
from service.api.protect import audit, protect
from service.models import AskRequest, AskResponse, ErrorResponse

router = APIRouter(prefix="/v1", tags=["ask"])
log = logging.getLogger(__name__)
_END = object()

STREAM_DOC = """
With `"stream": true` the response is `text/event-stream` with these events, in order:

| event | data |
|---|---|
| `clauses` | ranked clauses (list of search hits), sent before any generation |
| `check` | the confidentiality verdict card (only for 「この情報を入れていい？」 questions) |
| `token` | a piece of the model's text as it is generated |
| `citations` | `{"citations": [...], "removed": [...]}` after the citation gate |
| `done` | the final response object (its `answer` is the verified text) |
| `error` | `{"code", "message", "fatal"}`: `fatal: false` — generation failed and a clauses answer follows; `fatal: true` — the stream ends |
"""


def _record(state, caller, masked: str, final: AskResponse, status: str = "ok") -> None:
    audit(
        state,
        caller,
        answer_id=final.answer_id,
        endpoint="/v1/ask",
        question_masked=masked,
        mode=final.mode,
        retrieved_ids=[r.id for r in final.related],
        answer=final.answer,
        citations=[c.unit_id for c in final.citations],
        abstained=final.abstained,
        model=final.model,
        index_version=final.index_version,
        latency_ms=final.timings,
        status="fallback" if final.notice else status,
    )


@router.post(
    "/ask",
    response_model=AskResponse,
    summary="Answer a question with verified citations (or ranked clauses only)",
    description="Answers are AI-generated and must be checked against the cited sources.\n" + STREAM_DOC,
    responses={
        200: {"content": {"text/event-stream": {}}},
        401: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
        429: {"model": ErrorResponse},
        503: {"model": ErrorResponse},
    },
)
async def ask(body: AskRequest, caller: CallerDep, state: StateDep) -> Any:
    question, masked = await run_in_threadpool(protect, state, caller, body.question, endpoint="/v1/ask", mode=body.mode)
    answerer = await run_in_threadpool(state.answerer)
    kwargs = dict(mode=body.mode, groups=caller.access, filters=body.filters, top_k=body.top_k)
    if not body.stream:
        try:
            final = await run_in_threadpool(lambda: answerer.ask(question, **kwargs))
        except Overloaded:
            # A refused request is part of the usage history too.
            await run_in_threadpool(lambda: audit(state, caller, endpoint="/v1/ask", question_masked=masked, mode=body.mode, status="error", error_code=Overloaded.code))
            raise
        await run_in_threadpool(_record, state, caller, masked, final)
        return final

    # Errors before the first event (bad index, queue full) are ordinary JSON errors.
    gen = answerer.stream(question, **kwargs)
    first: AskEvent = await run_in_threadpool(next, gen)

    async def events():
        ev: Any = first
        try:
            while ev is not _END:
                if ev.event == "done":
                    final = ev.data
                    # Recorded before `done` leaves, so feedback sent right after it finds the answer.
                    await run_in_threadpool(_record, state, caller, masked, final)
                data = jsonable_encoder(ev.data, by_alias=True)
                if ev.event == "error":
                    data = {**data, "fatal": False}  # generation failed; a clauses answer follows
                yield {"event": ev.event, "data": json.dumps(data, ensure_ascii=False)}
                ev = await run_in_threadpool(next, gen, _END)
        except GuideQAError as exc:
            yield {"event": "error", "data": json.dumps({"code": exc.code, "message": exc.message, "fatal": True}, ensure_ascii=False)}
        except Exception:  # noqa: BLE001 - the stream must end with an error event, not a trace
            log.exception("stream failed")
            yield {"event": "error", "data": json.dumps({"code": "internal_error", "message": "内部エラーが発生しました。", "fatal": True}, ensure_ascii=False)}
        finally:
            # Closing the generator releases the model lock even if the client went away.
            await run_in_threadpool(gen.close)

    return EventSourceResponse(events(), ping=15)
