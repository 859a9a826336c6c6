"""One place that turns every failure into ``{"error": {"code", "message"}}`` with a fixed status.

Codes are stable and listed in :data:`ERROR_STATUS`; the OpenAPI description
shows the same table. No handler ever returns a stack trace.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from guideqa.errors import GuideQAError, Overloaded

__all__ = ["ERROR_STATUS", "install_error_handlers", "error_json"]

log = logging.getLogger(__name__)

ERROR_STATUS: dict[str, int] = {
    "invalid_json": 400,
    "invalid_request": 422,
    "query_invalid": 422,
    "query_empty": 422,
    "query_too_long": 422,
    "query_binary": 422,
    "query_rejected": 422,
    "pii_detected": 422,
    "deny_word": 422,
    "injection_detected": 422,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "body_too_large": 413,
    "unsupported_media_type": 415,
    "rate_limited": 429,
    "overloaded": 503,
    "index_not_ready": 503,
    "index_locked": 503,
    "index_corrupt": 503,
    "index_unavailable": 503,
    "index_error": 503,
    "model_unavailable": 503,
    "llm_unavailable": 503,
    "rules_invalid": 500,
    "timeout": 504,
    "internal_error": 500,
}

_HTTP_CODES = {400: "invalid_json", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type", 429: "rate_limited"}
_HTTP_MESSAGES = {
    "not_found": "指定されたものが見つかりません。",
    "method_not_allowed": "このメソッドは使用できません。",
    "invalid_request": "リクエストの形式が正しくありません。",
    "invalid_json": "リクエスト本文を解析できません。正しい JSON（UTF-8）を送ってください。",
}


def error_json(code: str, message: str, *, status: int | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}},
        status_code=status or ERROR_STATUS.get(code, 400),
        headers=headers,
    )


def _describe_validation(exc: RequestValidationError) -> tuple[str, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return "invalid_json", "リクエスト本文が正しい JSON ではありません。"
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
    return "invalid_request", "リクエストの内容に誤りがあります（" + "、".join(parts) + "）。"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GuideQAError)
    async def _guideqa(request: Request, exc: GuideQAError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Overloaded) else None
        if exc.detail:
            log.warning("%s %s: %s (%s)", request.method, request.url.path, exc.code, exc.detail)
        return error_json(exc.code, exc.message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        code, message = _describe_validation(exc)
        return error_json(code, message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "invalid_request")
        message = exc.detail if isinstance(exc.detail, str) and not exc.detail.isascii() else _HTTP_MESSAGES.get(code, "リクエストを処理できませんでした。")
        return error_json(code, message, status=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_json("internal_error", "内部エラーが発生しました。時間をおいて再度お試しください。", status=500)
