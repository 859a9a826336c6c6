"""Browser-facing hardening: CSP, nosniff, frame-ancestors, and API docs without the internet.

``/docs`` serves Swagger UI from a local package (no CDN) with no inline script, so
it works under the same Content-Security-Policy as the demo page and the widget;
``/docs`` and ``/openapi.json`` are closed like the API when anonymous access is off.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from tests.live_server import LiveServer

KEY = "headers-user-001"
PORTAL = "https://portal.example.lg.jp"
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def client(settings, built_index):
    s = settings.model_copy(update={"llm_backend": "none", "api_keys": f"{KEY}:h:user:public", "allow_anonymous": True})
    with TestClient(create_app(s)) as c:
        yield c


def csp_of(response) -> dict[str, str]:
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] if " " in d else "" for d in (p.strip() for p in response.headers["content-security-policy"].split(";")) if d}


def test_every_response_carries_the_policy(client):
    responses = [
        client.get("/"),
        client.get("/widget.js"),
        client.get("/docs"),
        client.get("/healthz"),
        client.post("/v1/search", json={"query": "源内"}),
        client.post("/v1/search", json={"query": ""}),  # an error
        client.get("/no-such-page"),
        client.post("/v1/search", content=b"x", headers={"content-type": "text/plain"}),  # refused by a middleware
    ]
    for r in responses:
        policy = csp_of(r)
        assert policy["script-src"] == "'self'" and "unsafe" not in policy["script-src"], r.url
        assert policy["frame-ancestors"] == "'self'" and policy["object-src"] == "'none'"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "SAMEORIGIN"


def test_frame_ancestors_are_configurable(settings, built_index):
    s = settings.model_copy(update={"llm_backend": "none", "frame_ancestors": [PORTAL]})
    r = TestClient(create_app(s)).get("/")
    assert csp_of(r)["frame-ancestors"] == f"'self' {PORTAL}"
    assert "x-frame-options" not in r.headers  # it cannot name another origin


def test_pages_have_no_inline_script_and_no_outside_url(client):
    for path in ("/", "/docs"):
        html = client.get(path).text
        scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
        assert scripts and all('src="/' in attrs and not body.strip() for attrs, body in scripts), path
        assert not re.search(r"(?:src|href)=\"https?://", html), path
    for asset in re.findall(r'(?:src|href)="(/docs/[^"]+)"', client.get("/docs").text):
        r = client.get(asset)
        assert r.status_code == 200 and len(r.content) > 100, asset
        assert r.headers["x-content-type-options"] == "nosniff"
    assert client.get("/redoc").status_code == 404  # it would load from a CDN


def test_docs_follow_the_access_rule(settings, built_index):
    s = settings.model_copy(update={"llm_backend": "none", "api_keys": f"{KEY}:h:user:public", "allow_anonymous": False})
    c = TestClient(create_app(s))
    for path in ("/docs", "/openapi.json", "/docs/init.js"):
        assert c.get(path).status_code == 401, path
        assert c.get(path, headers={"X-API-Key": KEY}).status_code == 200, path
    assert c.get("/openapi.json", headers={"X-API-Key": "wrong-key-0000"}).status_code == 401


@pytest.mark.browser
def test_swagger_ui_renders_under_the_policy(settings, built_index):
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (run `make browser-deps`)")
    from playwright.sync_api import sync_playwright

    s = settings.model_copy(update={"llm_backend": "none", "allow_anonymous": True})
    server = LiveServer(create_app(s)).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"], timeout=60_000)
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            outside: list[str] = []
            page.on("request", lambda req: outside.append(req.url) if not req.url.startswith((server.url, "data:")) else None)
            page.goto(f"{server.url}/docs", wait_until="load")
            page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
            assert "guideqa" in page.inner_text(".swagger-ui .info .title")
            page.wait_for_selector('[data-path="/v1/ask"]', timeout=30_000)
            browser.close()
    finally:
        server.stop()
    assert errors == [] and outside == [], (errors, outside)
