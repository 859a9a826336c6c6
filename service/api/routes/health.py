"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from guideqa.errors import GuideQAError
from service.api.deps import StateDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the index (and, in answer mode, the LLM) is loaded")
def readyz(state: StateDep) -> JSONResponse:
    checks: dict[str, object] = {}
    ready = True
    try:
        checks["index_version"] = state.searcher.index_version
    except GuideQAError as exc:
        checks["index"] = exc.code
        ready = False
    llm = state.extras.get("llm_status")
    if llm is not None:
        checks["llm"] = llm
    return JSONResponse({"status": "ready" if ready else "not_ready", **checks}, status_code=200 if ready else 503)
