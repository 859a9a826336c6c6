"""Liveness, readiness and metrics.

``/healthz`` never touches the index, the model or the audit store, so it answers
at once whatever they are doing. ``/readyz`` says ``degraded`` (still 200: the API
serves, audit rows wait in memory) while audit writes are failing, and 503 while
there is no index. ``/metrics`` is the Prometheus text format.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from guideqa.errors import GuideQAError
from service.api.deps import StateDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the index (and, in answer mode, the LLM) is loaded; the audit store's state")
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
    audit = state.audit.health()
    checks["audit"] = {"status": audit.status, "pending": audit.pending}
    status = "not_ready" if not ready else ("degraded" if audit.status != "ok" else "ready")
    return JSONResponse({"status": status, **checks}, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics (audit queue, write failures)", response_class=PlainTextResponse)
def metrics(state: StateDep) -> PlainTextResponse:
    audit = state.audit.health()
    lines = [
        "# HELP guideqa_audit_pending_rows Audit writes waiting in memory for the audit store.",
        "# TYPE guideqa_audit_pending_rows gauge",
        f"guideqa_audit_pending_rows {audit.pending}",
        "# HELP guideqa_audit_degraded 1 while audit writes are failing and being retried.",
        "# TYPE guideqa_audit_degraded gauge",
        f"guideqa_audit_degraded {int(audit.status != 'ok')}",
        "# HELP guideqa_audit_written_total Audit writes applied since start.",
        "# TYPE guideqa_audit_written_total counter",
        f"guideqa_audit_written_total {audit.written}",
        "# HELP guideqa_audit_write_failures_total Failed audit write attempts since start (each retry counts).",
        "# TYPE guideqa_audit_write_failures_total counter",
        f"guideqa_audit_write_failures_total {audit.failures}",
    ]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4; charset=utf-8")
