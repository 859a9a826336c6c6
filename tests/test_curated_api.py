"""Registered answers through the API: shown first on /v1/ask, kept out of everything else, administered by admins.

A copy of the real corpus with the 25 evaluation items as its registry, ingested into a
real Edge shard; the admin routes write that copy's registry and rebuild the index.
"""

from __future__ import annotations

import json
import shutil

import pytest
from fastapi.testclient import TestClient

from guideqa.settings import PROJECT_ROOT, Settings
from index.store import QueryFilter
from ingest.cleaning import nfkc
from ingest.curated import CURATED_FILE, read_curated
from service.main import create_app
from tests.conftest import SHARED_CACHE, SHARED_MODELS

ADMIN, USER, HR = "admin-key-0001", "user-key-00001", "hr-key-000001"
KEYS = f"{ADMIN}:ops:admin:public,{USER}:staff1:user:public,{HR}:hr1:user:hr"
MIC = "mic_local-gov-ai-wg_reference-materials_2025-07"


@pytest.fixture(scope="module")
def curated_settings(tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("curated")
    shutil.copytree(PROJECT_ROOT / "corpus", root / "corpus")
    shutil.copy(PROJECT_ROOT / "eval" / "data" / "curated" / "curated.yaml", root / "corpus" / CURATED_FILE)
    settings = Settings(
        data_dir=root / "data", corpus_dir=root / "corpus", cache_dir=SHARED_CACHE, models_path=SHARED_MODELS,
        qdrant_url=None, qdrant_api_key=None, qdrant_local_path=None, api_keys=KEYS, api_keys_file=None,
        allow_anonymous=False, llm_backend="none", rate_limit_per_minute=100000,
    )
    from index.build import build_index
    from index.embeddings import get_embedding_model
    from index.tokenizer import get_tokenizer
    from ingest.pipeline import ingest_corpus

    result = ingest_corpus(settings.corpus_dir)
    assert len(result.curated.units) == 25 and result.curated.skipped == []
    build_index(result.units, settings, embed_model=get_embedding_model(settings), tokenizer=get_tokenizer())
    return settings


@pytest.fixture(scope="module")
def client(curated_settings):
    with TestClient(create_app(curated_settings)) as c:
        yield c


def h(key=USER):
    return {"X-API-Key": key}


def ask(client, question, key=USER, **extra):
    r = client.post("/v1/ask", json={"question": question, "mode": "clauses", **extra}, headers=h(key))
    assert r.status_code == 200, r.text
    return r.json()


def registry(settings):
    entries, problems = read_curated(settings.corpus_dir / CURATED_FILE)
    assert problems == []
    return {e.item.id: e.item for e in entries}


def test_a_registered_question_gets_its_registered_answer_first_with_verbatim_citations(client):
    body = ask(client, "ハルシネーションってどういう意味？")
    shown = body["curated"]
    assert shown["id"] == "cur-003" and shown["author"] == "DX推進課" and shown["date"] == "2026-12-01"
    for cite in shown["citations"]:
        unit = client.get(f"/v1/units/{cite['unit_id']}", headers=h()).json()
        assert cite["quote"] in unit["text"]
    assert body["related"] and body["citations"]  # the composed side still follows


def test_an_unrelated_question_gets_no_registered_answer_and_no_suggestion(client):
    body = ask(client, "年次有給休暇の申請は何日前までに出せばいいですか？")
    assert body["curated"] is None and body["similar"] == []


def test_similar_questions_never_repeat_the_one_shown(client):
    body = ask(client, "生成AIに住民の個人情報を入力してもよいですか？")
    assert body["curated"]["id"] == "cur-001"
    assert len(body["similar"]) <= 3 and "cur-001" not in [s["id"] for s in body["similar"]]


def test_registered_items_never_appear_in_search_units_or_documents(client, curated_settings):
    from service.components import build_searcher

    searcher = build_searcher(curated_settings)
    question = "ハルシネーションとは何ですか？"  # the registered question word for word
    found = client.post("/v1/search", json={"query": question, "top_k": 20}, headers=h()).json()["results"]
    assert found and all(r["kind"] != "curated" for r in found)
    assert all(p["kind"] != "curated" for p in searcher.iter_units(flt=QueryFilter.everything()))
    assert searcher.get_units(["curated-cur-003"], flt=QueryFilter.everything()) == []
    assert client.get("/v1/units/curated-cur-003", headers=h(ADMIN)).status_code == 404
    assert len(client.get("/v1/documents", headers=h(ADMIN)).json()) == 5
    only = searcher.curated_candidates(question, flt=QueryFilter(access=["public"]))
    assert only and all(c.unit["kind"] == "curated" for c in only)


def test_a_caller_only_matches_items_of_groups_it_may_see(client):
    assert ask(client, "ハルシネーションってどういう意味？", key=HR)["curated"] is None


def test_the_stream_sends_the_registered_answer_right_after_the_clauses(client):
    with client.stream("POST", "/v1/ask", json={"question": "ハルシネーションってどういう意味？", "stream": True}, headers=h()) as resp:
        lines = list(resp.iter_lines())
    events = [line.split(":", 1)[1].strip() for line in lines if line.startswith("event:")]
    assert events[:2] == ["clauses", "curated"] and events[-1] == "done"
    data = json.loads(next(line.split(":", 1)[1] for line in lines[lines.index("event: curated"):] if line.startswith("data:")))
    assert data["curated"]["id"] == "cur-003"


def test_only_admins_administer(client):
    assert client.get("/v1/admin/curated", headers=h()).status_code == 403
    listed = client.get("/v1/admin/curated", headers=h(ADMIN)).json()["items"]
    assert len(listed) == 25 and all(i["indexed"] for i in listed)


def test_personal_data_and_missing_quotes_are_refused_and_change_nothing(client, curated_settings):
    before = (curated_settings.corpus_dir / CURATED_FILE).read_text(encoding="utf-8")
    item = {"question": "約款型サービスで要機密情報を扱える？", "answer": "原則として扱えません。",
            "citations": [{"doc_id": MIC, "quote": "約款型サービスに関し、原則として要機密情報を取り扱うことはできない。"}]}
    pii = client.post("/v1/admin/curated", json={**item, "answer": "担当は山田太郎さん（090-1234-5678）です。"}, headers=h(ADMIN))
    assert pii.status_code == 422 and pii.json()["error"]["code"] == "pii_detected"
    gone = client.post("/v1/admin/curated", json={**item, "citations": [{"doc_id": MIC, "quote": "どこにも書かれていない一文です。"}]}, headers=h(ADMIN))
    assert gone.status_code == 422 and gone.json()["error"]["code"] == "curated_invalid"
    none = client.post("/v1/admin/curated", json={**item, "citations": []}, headers=h(ADMIN))
    assert none.status_code == 422
    taken = client.post("/v1/admin/curated", json={**item, "id": "cur-001"}, headers=h(ADMIN))
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "conflict"
    assert (curated_settings.corpus_dir / CURATED_FILE).read_text(encoding="utf-8") == before


def test_register_draft_publish_and_remove(client, curated_settings):
    question = "約款型のクラウドサービスで、要機密情報を扱うことはできますか？"
    item = {"id": "t-yakkan", "question": question, "answer": "申合せでは、約款型サービスでは原則として要機密情報を取り扱うことはできないとされています。",
            "citations": [{"doc_id": MIC, "quote": "約款型サービスに関し、原則として要機密情報を取り扱うことはできない。"}],
            "author": "情報政策課", "status": "draft"}
    created = client.post("/v1/admin/curated", json=item, headers=h(ADMIN))
    assert created.status_code == 201 and created.json()["status"] == "draft" and created.json()["indexed"] is False
    assert registry(curated_settings)["t-yakkan"].status == "draft"
    shown = ask(client, question)["curated"]
    assert shown is None or shown["id"] != "t-yakkan"  # drafts are never served

    published = client.put("/v1/admin/curated/t-yakkan", json={"status": "published"}, headers=h(ADMIN))
    assert published.status_code == 200 and published.json()["indexed"] is True
    assert published.json()["citations"][0]["unit_id"]
    assert ask(client, question)["curated"]["id"] == "t-yakkan"

    assert client.delete("/v1/admin/curated/t-yakkan", headers=h(ADMIN)).status_code == 204
    assert "t-yakkan" not in registry(curated_settings)
    assert client.get("/v1/admin/curated/t-yakkan", headers=h(ADMIN)).status_code == 404
    shown = ask(client, question)["curated"]
    assert shown is None or shown["id"] != "t-yakkan"
    modes = [r["mode"] for r in client.app.state.guideqa.audit.rows() if (r["mode"] or "").startswith("curated_")]
    assert {"curated_create", "curated_update", "curated_delete"} <= set(modes)


def test_an_answer_becomes_a_draft_that_is_not_served(client, curated_settings):
    answered = ask(client, "源内のモデルは何を使っていますか？")
    draft = client.post("/v1/admin/curated/draft", json={"answer_id": answered["answer_id"]}, headers=h(ADMIN))
    assert draft.status_code == 201, draft.text
    body = draft.json()
    assert body["status"] == "draft" and body["question"] == nfkc("源内のモデルは何を使っていますか？")  # as the audit log keeps it
    assert [c["doc_id"] for c in body["citations"]] == [c["doc_id"] for c in answered["citations"]][:10]
    assert registry(curated_settings)[body["id"]].status == "draft"
    assert client.post("/v1/admin/curated/draft", json={"answer_id": answered["answer_id"]}, headers=h(ADMIN)).status_code == 409
    assert client.post("/v1/admin/curated/draft", json={"answer_id": "0" * 32}, headers=h(ADMIN)).status_code == 404
    assert client.delete(f"/v1/admin/curated/{body['id']}", headers=h(ADMIN)).status_code == 204


@pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")
def test_qdrant_client_stores_keep_registered_items_apart_the_same_way(curated_settings, tmp_path):
    """The same exclusion on the qdrant-client backend (its local mode stands in for a server)."""
    from index.build import build_index
    from index.embeddings import get_embedding_model
    from index.search import Searcher
    from index.tokenizer import get_tokenizer
    from ingest.pipeline import ingest_corpus

    local = curated_settings.model_copy(update={"data_dir": tmp_path / "data", "qdrant_local_path": tmp_path / "qdrant"})
    units = ingest_corpus(local.corpus_dir).units
    build_index(units, local, embed_model=get_embedding_model(local), tokenizer=get_tokenizer())
    searcher = Searcher(local, embed_model=get_embedding_model(local), tokenizer=get_tokenizer())
    try:
        question = "ハルシネーションとは何ですか？"
        hits = searcher.search(question, top_k=20, flt=QueryFilter(access=["public"])).hits
        assert hits and all(h.unit["kind"] != "curated" for h in hits)
        assert all(p["kind"] != "curated" for p in searcher.iter_units(flt=QueryFilter.everything()))
        found = searcher.curated_candidates(question, flt=QueryFilter(access=["public"]))
        assert found[0].unit["curated"]["item_id"] == "cur-003" and found[0].overlap == 1.0
        assert searcher.curated_candidates(question, flt=QueryFilter(access=["hr"])) == []
    finally:
        searcher.close()
