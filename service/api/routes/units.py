"""``GET /v1/units/{id}`` and ``GET /v1/documents``."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

from guideqa.errors import NotFound
from service.api.deps import ReaderDep, SearcherDep
from service.models import DocumentPublic, ErrorResponse, UnitPublic

router = APIRouter(prefix="/v1", tags=["units"])


@router.get("/units/{unit_id}", response_model=UnitPublic, responses={404: {"model": ErrorResponse}})
async def get_unit(
    caller: ReaderDep,
    searcher: SearcherDep,
    unit_id: Annotated[str, Path(min_length=3, max_length=80, pattern=r"^[A-Za-z0-9_.:-]+$")],
) -> UnitPublic:
    """The full unit with its provenance. A unit outside the caller's groups is reported as not found."""
    found = await run_in_threadpool(searcher.get_units, [unit_id], flt=caller.query_filter())
    if not found:
        raise NotFound("指定された単位（条項）は見つかりません。")
    return UnitPublic.model_validate(found[0])


@router.get("/documents", response_model=list[DocumentPublic])
async def list_documents(caller: ReaderDep, searcher: SearcherDep) -> list[DocumentPublic]:
    """Documents the caller can see, with unit counts."""

    def documents() -> list[DocumentPublic]:
        counts: Counter = Counter()
        first: dict[str, dict] = {}
        for payload in searcher.iter_units(flt=caller.query_filter()):
            counts[payload["doc_id"]] += 1
            first.setdefault(payload["doc_id"], payload)
        return [
            DocumentPublic(
                doc_id=d,
                title=p["doc_title"],
                issuer=p.get("issuer", ""),
                date=p.get("doc_date", ""),
                source_file=p["source_file"],
                units=counts[d],
            )
            for d, p in sorted(first.items())
        ]

    return await run_in_threadpool(documents)
