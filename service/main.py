"""FastAPI application: the composition root of the service.

``create_app(settings)`` wires settings, the searcher, keys, the answerer and the
audit log once; routes stay thin. Run with ``guideqa serve`` (or ``make run``).
"""

from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse

from guideqa.errors import IndexError_
from guideqa.settings import Settings, get_settings
from service.api.errors import ERROR_STATUS, install_error_handlers
from service.api.routes import admin, ask, check, compare, curated, feedback, health, search, units
from service.api.security import SecurityHeaders, install_docs
from service.limits import BodyGuard, RequestTimeout
from service.state import build_state

__all__ = ["create_app"]

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
MAX_BODY_BYTES = 64 * 1024

DESCRIPTION = """
Question answering over Japan's public-sector generative-AI guidelines (デジタル庁, 総務省, 東京都).

* Every answer cites the exact clause (document, section path, verbatim quote).
* `mode=clauses` returns ranked clauses without any LLM call.
* Answers are **AI-generated** and must be checked against the cited sources.

**Authentication**: send `X-API-Key: <key>` (or `Authorization: Bearer <key>`). Keys map to a role
(`admin`, `user`, `widget`) and access groups; units outside the caller's groups are never returned,
quoted or cited, by any endpoint (search, answers, the confidentiality check, units, documents).
Requests are rate-limited per key (anonymous callers: per client address); wrong keys too.

**Questions** are normalised (NFKC) before anything else; the length limits apply to that text,
in characters and in the embedding model's tokens. Personal data is blocked or masked, and only
the masked form is ever echoed or stored in the audit log.

**Errors** are JSON `{"error": {"code": "...", "message": "（日本語）"}}` with a fixed status per code:

| code | status |
|---|---|
""" + "\n".join(f"| `{c}` | {s} |" for c, s in sorted(ERROR_STATUS.items(), key=lambda kv: (kv[1], kv[0])))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # Built here rather than in the lifespan so the app is usable by any ASGI
    # client; the lifespan only warms the shard up and releases it at shutdown.
    state = build_state(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            state.searcher.index_version  # open the shard now, not on the first request
        except IndexError_ as exc:
            log.warning("index not ready at start-up: %s", exc.message)
        else:
            # A rules file that is malformed or cites a unit that is gone stops start-up here.
            state.check_engine
        yield
        state.close()

    title = "guideqa — 生成AIガイドライン QA"
    app = FastAPI(
        title=title,
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served by install_docs: local assets, and the API's access rule.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.guideqa = state
    install_error_handlers(app)
    install_docs(app, title=title, allow_anonymous=settings.allow_anonymous)

    app.add_middleware(BodyGuard, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(RequestTimeout, seconds=settings.request_timeout_s)

    if settings.cors_origins:
        # Only for pages on other intranet hosts; the demo page is same-origin.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-API-Key", "Authorization"],
            expose_headers=["Retry-After"],
        )
    # Outermost: every response gets the headers, the middlewares' own errors included.
    app.add_middleware(SecurityHeaders, settings=settings)

    app.include_router(health.router)
    app.include_router(search.router)
    app.include_router(units.router)
    app.include_router(ask.router)
    app.include_router(check.router)
    app.include_router(compare.router)
    app.include_router(feedback.router)
    app.include_router(admin.router)
    app.include_router(curated.router)

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    def demo_page() -> FileResponse:
        return FileResponse(STATIC / "demo.html", media_type="text/html; charset=utf-8")

    @app.get("/widget.js", include_in_schema=False)
    def widget_js() -> FileResponse:
        return FileResponse(STATIC / "widget.js", media_type="application/javascript; charset=utf-8")

    return app
