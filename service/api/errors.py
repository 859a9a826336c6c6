"""One place that turns every failure into ``{"error": {"code", "message"}}`` with a fixed status.

The status of each code comes from the error tree (:mod:`guideqa.errors`: the
class carries ``code`` and ``status``); :data:`ERROR_STATUS` is that table, and
the OpenAPI description shows it. No handler ever returns a stack trace.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from guideqa.errors import (
    BodyTooLarge,
    Forbidden,
    GuideQAError,
    InvalidJSON,
    MethodNotAllowed,
    NotFound,
    Overloaded,
    RateLimited,
    RequestError,
    Unauthorized,
    UnsupportedMediaType,
    error_statuses,
)

__all__ = ["ERROR_STATUS", "install_error_handlers", "error_json", "error_response"]

log = logging.getLogger(__name__)

ERROR_STATUS: dict[str, int] = error_statuses()

_HTTP_ERRORS: dict[int, type[GuideQAError]] = {
    cls.status: cls for cls in (InvalidJSON, Unauthorized, Forbidden, NotFound, MethodNotAllowed, BodyTooLarge, UnsupportedMediaType, RateLimited)
}


def error_json(code: str, message: str, *, status: int | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}},
        status_code=status or ERROR_STATUS.get(code, 500),
        headers=headers,
    )


def error_response(exc: GuideQAError) -> JSONResponse:
    """The JSON error for ``exc``: its code's status from the tree, Retry-After when overloaded."""
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Overloaded) else None
    return error_json(exc.code, exc.message, status=ERROR_STATUS.get(exc.code, exc.status), headers=headers)


def _describe_validation(exc: RequestValidationError) -> GuideQAError:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return InvalidJSON("リクエスト本文が正しい JSON ではありません。")
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(p) for p in e.get("loc", []) if p != "body")
        kind = e.get("type", "")
        if kind == "extra_forbidden":
            parts.append(f"{loc}: 不明な項目です")
        elif kind == "missing":
            parts.append(f"{loc}: 必須項目です")
        elif kind.startswith("string_too_long") or kind == "too_long":
            parts.append(f"{loc}: 長すぎます")
        elif kind.startswith("string_too_short") or kind == "too_short":
            parts.append(f"{loc}: 空にはできません")
        else:
            parts.append(f"{loc}: 値が正しくありません")
    return RequestError("リクエストの内容に誤りがあります（" + "、".join(parts) + "）。")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GuideQAError)
    async def _guideqa(request: Request, exc: GuideQAError) -> JSONResponse:
        if exc.detail:
            log.warning("%s %s: %s (%s)", request.method, request.url.path, exc.code, exc.detail)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(_describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        cls = _HTTP_ERRORS.get(exc.status_code, RequestError)
        message = exc.detail if isinstance(exc.detail, str) and not exc.detail.isascii() else cls.default_message
        return error_json(cls.code, message, status=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(GuideQAError())
