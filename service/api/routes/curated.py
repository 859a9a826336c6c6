"""``/v1/admin/curated``: the office's registered answers (「登録済みの回答」), for admins only.

Every change goes through :mod:`service.curated`: the text is screened for personal
data, the registry file is written atomically, the index is rebuilt when what staff
see changes (a few seconds: run off the event loop), and the change is audited.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from starlette.concurrency import run_in_threadpool

from ingest.curated import ITEM_ID_PATTERN
from service.api.deps import AdminDep, StateDep
from service.curated import (
    create_curated,
    delete_curated,
    draft_from_answer,
    get_curated,
    list_curated,
    update_curated,
)
from service.models import (
    CuratedCreate,
    CuratedDraftCreate,
    CuratedList,
    CuratedPublic,
    CuratedUpdate,
    ErrorResponse,
)

router = APIRouter(prefix="/v1/admin/curated", tags=["admin"])

ItemId = Annotated[str, Path(pattern=ITEM_ID_PATTERN, description="The registered item's ID, e.g. cur-001.")]
_ERRORS = {401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}, 422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}}
_NOT_FOUND = {404: {"model": ErrorResponse}}


@router.get("", response_model=CuratedList, summary="List the registered answers (drafts included)", responses=_ERRORS)
async def list_items(caller: AdminDep, state: StateDep) -> CuratedList:
    return await run_in_threadpool(list_curated, state, caller)


@router.post("", response_model=CuratedPublic, status_code=201, summary="Register an answer", responses=_ERRORS)
async def create_item(body: CuratedCreate, caller: AdminDep, state: StateDep) -> CuratedPublic:
    """Register a question and its answer with the passages it rests on. A published item is
    shown from the next question on; each quote must be found in its document (422 otherwise)."""
    created = await run_in_threadpool(create_curated, state, caller, [body])
    return created[0]


@router.post("/draft", response_model=CuratedPublic, status_code=201, summary="Draft a registered answer from an earlier answer", responses={**_ERRORS, **_NOT_FOUND})
async def draft_item(body: CuratedDraftCreate, caller: AdminDep, state: StateDep) -> CuratedPublic:
    """Turn an answer from the audit log (e.g. one rated 👎) into a ``draft``: its masked question,
    its text and the units it cited. Correct it, then publish it with ``PUT`` (``status: published``)."""
    return await run_in_threadpool(draft_from_answer, state, caller, body.answer_id)


@router.get("/{item_id}", response_model=CuratedPublic, summary="One registered answer", responses={**_ERRORS, **_NOT_FOUND})
async def get_item(item_id: ItemId, caller: AdminDep, state: StateDep) -> CuratedPublic:
    return await run_in_threadpool(get_curated, state, caller, item_id)


@router.put("/{item_id}", response_model=CuratedPublic, summary="Change a registered answer (or publish a draft)", responses={**_ERRORS, **_NOT_FOUND})
async def update_item(item_id: ItemId, body: CuratedUpdate, caller: AdminDep, state: StateDep) -> CuratedPublic:
    """Fields left out stay as they are; ``{"status": "published"}`` publishes a draft."""
    return await run_in_threadpool(update_curated, state, caller, item_id, body)


@router.delete("/{item_id}", status_code=204, summary="Remove a registered answer", responses={**_ERRORS, **_NOT_FOUND})
async def delete_item(item_id: ItemId, caller: AdminDep, state: StateDep) -> Response:
    await run_in_threadpool(delete_curated, state, caller, item_id)
    return Response(status_code=204)
