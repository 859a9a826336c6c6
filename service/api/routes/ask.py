"""``POST /v1/ask``: a cited answer (JSON, or server-sent events with ``stream: true``)."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from guideqa.errors import GuideQAError
from service.api.deps import CallerDep, StateDep
from service.models import AskRequest, AskResponse, ErrorResponse
from service.request import open_ask_stream, run_ask

router = APIRouter(prefix="/v1", tags=["ask"])
log = logging.getLogger(__name__)

STREAM_DOC = """
With `"stream": true` the response is `text/event-stream` with these events, in order:

| event | data |
|---|---|
| `clauses` | ranked clauses (list of search hits), sent at once |
| `curated` | `{"curated", "similar"}`: the office's registered answer (「登録済みの回答」, written by the office, never AI-generated) when the question closely matches a registered question, else `null`; and up to 3 similar registered questions `[{id, question, score}]` (「よく似た質問」). Only items of the caller's groups. The composed answer still follows. |
| `check` | the confidentiality verdict card (only for 「この情報を入れていい？」 questions) |
| `answer` | `{"answer", "parts", "citations", "ai_generated"}`: the composed answer — verbatim pieces of the documents with their citations, built without the model; sent again when the model's lead sentence passed the gate. The model's raw words are never sent. |
| `status` | `{"state": "writing"}` while the model writes a lead sentence (may-I questions) |
| `citations` | `{"citations": [...], "removed": [...]}`: the final citations and the model's sentences the gate removed |
| `done` | the final response object |
| `error` | `{"code", "message", "fatal"}`: `fatal: false` — the model failed and the composed answer stands; `fatal: true` — the stream ends |

A request that is refused (input guard, rate limit, no index) is
refused before the stream starts, with the same status, JSON error and `Retry-After` as
without streaming; it is audited either way.
"""


@router.post(
    "/ask",
    response_model=AskResponse,
    summary="Answer a question with verified citations (or ranked clauses only)",
    description=(
        "The answer is composed from verbatim, cited pieces of the documents; at most one sentence per part "
        "(`parts[].lead`) is written by the AI model, after a gate checks it against those pieces. "
        "Check the cited sources.\n" + STREAM_DOC
    ),
    responses={
        200: {"content": {"text/event-stream": {}}},
        401: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
        429: {"model": ErrorResponse},
        503: {"model": ErrorResponse},
    },
)
async def ask(body: AskRequest, caller: CallerDep, state: StateDep) -> Any:
    kwargs = dict(mode=body.mode, filters=body.filters, top_k=body.top_k)
    if not body.stream:
        return await run_in_threadpool(lambda: run_ask(state, caller, body.question, **kwargs))

    # Everything that can refuse the request happens here, before the response starts.
    stream = await run_in_threadpool(lambda: open_ask_stream(state, caller, body.question, **kwargs))

    async def events():
        try:
            while (ev := await run_in_threadpool(stream.next_event)) is not None:
                data = jsonable_encoder(ev.data, by_alias=True)
                if ev.event == "error":
                    data = {**data, "fatal": False}  # generation failed; a clauses answer follows
                yield {"event": ev.event, "data": json.dumps(data, ensure_ascii=False)}
        except GuideQAError as exc:
            yield {"event": "error", "data": json.dumps({"code": exc.code, "message": exc.message, "fatal": True}, ensure_ascii=False)}
        except Exception:  # noqa: BLE001 - the stream must end with an error event, not a trace
            log.exception("stream failed")
            yield {"event": "error", "data": json.dumps({"code": "internal_error", "message": "内部エラーが発生しました。", "fatal": True}, ensure_ascii=False)}
        finally:
            # Closing releases the model even if the client went away, and audits an unfinished stream.
            await run_in_threadpool(stream.close)

    return EventSourceResponse(events(), ping=15)
