"""``GET /admin/audit.csv``: the usage history, for admins only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from service.api.deps import AdminDep, StateDep

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/audit.csv", summary="Usage history as CSV (admin role only)", response_class=StreamingResponse)
def audit_csv(
    caller: AdminDep,
    state: StateDep,
    since: Annotated[datetime | None, Query(description="ISO 8601, inclusive")] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601, exclusive")] = None,
    key_id: Annotated[str | None, Query(max_length=64)] = None,
    group: Annotated[
        list[str] | None,
        Query(max_length=20, description="Only rows a reader with these access labels may read (repeatable): rows whose caller had no other label"),
    ] = None,
) -> StreamingResponse:
    # Admins see every label (Caller.sees_every_label); `group` narrows the export for handing it on.
    rows = state.audit.export_csv(since=since, until=until, key_id=key_id, groups=list(group) if group else None)
    return StreamingResponse(rows, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": 'attachment; filename="audit.csv"'})
