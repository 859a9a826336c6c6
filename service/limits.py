"""ASGI middleware: refuse oversize or non-JSON bodies before any parsing, and bound request time.

:class:`BodyGuard` counts bytes as they arrive, so a chunked upload without
Content-Length is cut off at the limit too. :class:`RequestTimeout` answers 504
when no response has started within the limit (a stream that has started is
bounded by the LLM timeouts instead).
"""

from __future__ import annotations

import asyncio
import json

__all__ = ["BodyGuard", "RequestTimeout"]


def _error(code: str, message: str, status: int) -> tuple[dict, dict]:
    body = json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False).encode()
    start = {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    return start, {"type": "http.response.body", "body": body}


class _TooLarge(Exception):
    pass


class BodyGuard:
    def __init__(self, app, *, max_bytes: int = 64 * 1024):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._reply(send, "body_too_large", f"リクエスト本文が大きすぎます（上限 {self.max_bytes // 1024} KB）。", 413)
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return await self._reply(send, "unsupported_media_type", "Content-Type は application/json を指定してください。", 415)
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge()
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reply(send, "body_too_large", f"リクエスト本文が大きすぎます（上限 {self.max_bytes // 1024} KB）。", 413)

    @staticmethod
    async def _reply(send, code: str, message: str, status: int) -> None:
        start, body = _error(code, message, status)
        await send(start)
        await send(body)


class RequestTimeout:
    def __init__(self, app, *, seconds: float):
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = asyncio.Event()

        async def tracking_send(message):
            if message["type"] == "http.response.start":
                started.set()
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, tracking_send))
        waiter = asyncio.ensure_future(started.wait())
        done, _ = await asyncio.wait({task, waiter}, timeout=self.seconds, return_when=asyncio.FIRST_COMPLETED)
        if not done:
            task.cancel()
            waiter.cancel()
            start, body = _error("timeout", "処理に時間がかかりすぎたため中断しました。質問を短くするか、時間をおいて再度お試しください。", 504)
            await send(start)
            await send(body)
            return
        waiter.cancel()
        await task
