"""The HTTP API end to end on a real Qdrant server or cluster (``GUIDEQA_QDRANT_URL``).

    GUIDEQA_QDRANT_URL=http://127.0.0.1:6333 .venv/bin/python -m pytest -m server tests/test_server_suite.py

The real corpus is built there with ``build_index`` under an alias of its own
(``guideqa_suite_<random>``, so a deployment's alias is never touched; it is
dropped at the end). The app is created with ``create_app(Settings(qdrant_url=...))``
and called through ``TestClient``. The LLM is off: search, the clauses mode of
``/v1/ask``, units and documents need none. Every test skips when the variable is
unset. ``GUIDEQA_QDRANT_API_KEY`` is passed on when set.
"""

from __future__ import annotations

import os
import time
import uuid
import warnings

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from guideqa.settings import PROJECT_ROOT, Settings
from index.build import build_index
from qdrant_server import drop_server_collections  # tests/ is on sys.path (rootdir-relative conftest)

SERVER_URL = os.environ.get("GUIDEQA_QDRANT_URL")
SERVER_KEY = os.environ.get("GUIDEQA_QDRANT_API_KEY")

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(not SERVER_URL, reason="GUIDEQA_QDRANT_URL is not set"),
]

ADMIN, USER = "suite-admin-key-01", "suite-user-key-001"
KEYS = f"{ADMIN}:suite-ops:admin:public,{USER}:suite-staff:user:public"


# The embedding cache and model files are shared with the project (read-mostly); the index is not.
SHARED_CACHE = PROJECT_ROOT / ".guideqa" / "cache"
SHARED_MODELS = PROJECT_ROOT / ".guideqa" / "models"


def h(key: str = USER) -> dict[str, str]:
    return {"X-API-Key": key}


@pytest.fixture(scope="module")
def server_settings(tmp_path_factory):
    settings = Settings(
        qdrant_url=SERVER_URL,
        qdrant_api_key=SecretStr(SERVER_KEY) if SERVER_KEY else None,
        qdrant_collection=f"guideqa_suite_{uuid.uuid4().hex[:8]}",
        qdrant_replication_factor=int(os.environ.get("GUIDEQA_QDRANT_REPLICATION_FACTOR", "1")),
        qdrant_shard_number=int(os.environ.get("GUIDEQA_QDRANT_SHARD_NUMBER", "1")),
        data_dir=tmp_path_factory.mktemp("server-suite"),
        cache_dir=SHARED_CACHE,
        models_path=SHARED_MODELS,
        llm_backend="none",
        api_keys=KEYS,
        allow_anonymous=False,
        rate_limit_per_minute=100_000,
    )
    try:
        yield settings
    finally:
        try:
            drop_server_collections(settings)
        except Exception as exc:  # noqa: BLE001 - a server that went away must not hide the tests' own errors
            warnings.warn(f"could not drop the test collections {settings.qdrant_collection}_*: {exc}", RuntimeWarning)


def _build(units, settings: Settings, *, force: bool = False):
    from index.embeddings import get_embedding_model
    from index.tokenizer import get_tokenizer

    return build_index(units, settings, embed_model=get_embedding_model(settings), tokenizer=get_tokenizer(), force=force)


@pytest.fixture(scope="module")
def server_index(server_settings, units):
    report = _build(units, server_settings)
    assert report.meta.backend == "qdrant-server" and report.meta.units == len(units)
    return report


@pytest.fixture(scope="module")
def api(server_settings, server_index):
    from service.main import create_app

    with TestClient(create_app(server_settings)) as c:
        yield c


def test_ready_on_the_aliased_collection(api, server_index):
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["index_version"] == server_index.meta.collection


def test_search_ranks_units_with_provenance(api, server_index):
    r = api.post("/v1/search", json={"query": "入札予定価格は機密性いくつ？", "top_k": 5}, headers=h())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["index_version"] == server_index.meta.collection
    assert [x["rank"] for x in body["results"]] == list(range(1, len(body["results"]) + 1))
    assert any("入札予定価格" in x["text"] for x in body["results"])
    assert all(x["source_file"] and x["line_start"] >= 1 for x in body["results"])


def test_search_filters_apply_on_the_server(api):
    doc = "tokyo_ai-guideline_2026-03-30"
    r = api.post("/v1/search", json={"query": "要件定義で確認すべきことは？", "top_k": 10, "filters": {"doc_ids": [doc], "kinds": ["clause"]}}, headers=h())
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results and all(x["doc_id"] == doc and x["kind"] == "clause" for x in results)


def test_ask_clauses_mode_cites_verbatim_quotes(api, server_index):
    r = api.post("/v1/ask", json={"question": "オプトアウトとは何ですか？", "mode": "clauses"}, headers=h())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["mode"] == "clauses" and body["model"] is None and body["ai_generated"] is False
    assert body["index_version"] == server_index.meta.collection
    assert body["citations"] and body["related"]
    for c in body["citations"]:
        unit = api.get(f"/v1/units/{c['unit_id']}", headers=h()).json()
        assert c["quote"] in unit["text"]


def test_units_and_documents(api, units):
    unit = units[0]
    r = api.get(f"/v1/units/{unit.id}", headers=h())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == unit.id and body["text"] == unit.text and body["provenance"]
    assert api.get("/v1/units/no-such-unit", headers=h()).json()["error"]["code"] == "not_found"

    docs = api.get("/v1/documents", headers=h())
    assert docs.status_code == 200, docs.text
    by_doc = {d["doc_id"]: d["units"] for d in docs.json()}
    assert len(by_doc) == len({u.doc_id for u in units})
    assert sum(by_doc.values()) == len(units)


def test_rebuild_swaps_the_alias_while_serving(api, server_settings, server_index, units):
    """A rebuild goes to a new collection; the running app moves to it within its re-check interval."""
    # Forced: the same units would otherwise be recognised as already live and skipped.
    report = _build(units, server_settings, force=True)
    assert report.meta.collection != server_index.meta.collection
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        r = api.post("/v1/search", json={"query": "ハルシネーションとは？", "top_k": 3}, headers=h())
        assert r.status_code == 200, r.text  # no gap while the alias moves
        if r.json()["index_version"] == report.meta.collection:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the app did not move to the rebuilt collection within 15 s")
    assert api.get("/readyz").json()["index_version"] == report.meta.collection
