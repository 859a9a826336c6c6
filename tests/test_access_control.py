"""Access labels: a restricted document never reaches a caller outside its group.

The corpus here is the real (public) corpus plus a restricted test document
(access label ``soumu``) written by the test.
"""

from __future__ import annotations

import json
import shutil

import pytest
from fastapi.testclient import TestClient

from index.build import build_index
from index.embeddings import get_embedding_model
from index.tokenizer import get_tokenizer
from ingest.pipeline import ingest_corpus
from service.main import create_app
from tests.conftest import CORPUS

SECRET = "あおぞら計画"
RESTRICTED = f"""# 庁内限定 生成AI試行計画

## 試行の概要

{SECRET}では、令和8年度に庁内の問合せ対応へ生成AIを試行導入する。予算は非公開とする。

## 参加部署

{SECRET}の参加部署は情報政策課と総務課である。
"""
PUB, SOUMU, ADMIN = "public-user-01", "soumu-user-01", "admin-user-01"
KEYS = f"{PUB}:pub:user:public,{SOUMU}:soumu:user:public|soumu,{ADMIN}:ops:admin:public"


@pytest.fixture(scope="module")
def client(tmp_path_factory, settings):
    corpus = tmp_path_factory.mktemp("acl-corpus")
    shutil.copytree(CORPUS, corpus, dirs_exist_ok=True)
    (corpus / "restricted.md").write_text(RESTRICTED, encoding="utf-8")
    (corpus / "manifest.json").write_text(
        json.dumps([*json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8")), {"file": "restricted.md", "title": "庁内限定 試行計画", "issuer": "総務課", "access": "soumu"}]),
        encoding="utf-8",
    )
    s = settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("acl-data"), "llm_backend": "none", "api_keys": KEYS, "allow_anonymous": False, "rate_limit_per_minute": 100000})
    result = ingest_corpus(corpus)
    build_index(result.units, s, embed_model=get_embedding_model(s), tokenizer=get_tokenizer())
    with TestClient(create_app(s)) as c:
        c.restricted_ids = [u.id for u in result.units if u.access == "soumu"]
        yield c


def h(key):
    return {"X-API-Key": key}


def test_search_is_filtered_inside_the_query(client):
    q = {"query": f"{SECRET}の参加部署は？", "top_k": 20}
    public = client.post("/v1/search", json=q, headers=h(PUB)).json()["results"]
    soumu = client.post("/v1/search", json=q, headers=h(SOUMU)).json()["results"]
    assert public and not any(SECRET in r["text"] for r in public)
    assert soumu[0]["text"].find(SECRET) >= 0


def test_ask_never_cites_or_says_restricted_text(client):
    for mode in ("clauses", "answer"):
        body = client.post("/v1/ask", json={"question": f"{SECRET}の予算は？", "mode": mode, "top_k": 10}, headers=h(PUB)).json()
        assert "citations" in body, body
        dumped = json.dumps(body, ensure_ascii=False)
        # The caller's own question may come back (normalised: NFKC turns ？ into ?); nothing else may name it.
        assert SECRET not in dumped.replace(f"{SECRET}の予算は？", "").replace(f"{SECRET}の予算は?", "")
        assert not {c["unit_id"] for c in body["citations"]} & set(client.restricted_ids)


def test_units_and_documents_hide_restricted_ones(client):
    rid = client.restricted_ids[0]
    assert client.get(f"/v1/units/{rid}", headers=h(PUB)).status_code == 404
    assert client.get(f"/v1/units/{rid}", headers=h(SOUMU)).status_code == 200
    assert len(client.get("/v1/documents", headers=h(PUB)).json()) == 5
    assert len(client.get("/v1/documents", headers=h(SOUMU)).json()) == 6
    assert len(client.get("/v1/documents", headers=h(ADMIN)).json()) == 6


def test_audit_export_of_another_group_holds_no_restricted_text(client):
    client.post("/v1/ask", json={"question": f"{SECRET}の参加部署は？", "mode": "clauses"}, headers=h(SOUMU))
    client.post("/v1/ask", json={"question": "源内は自治体で使える？", "mode": "clauses"}, headers=h(PUB))
    public_only = client.get("/admin/audit.csv", params={"group": "public"}, headers=h(ADMIN))
    everything = client.get("/admin/audit.csv", headers=h(ADMIN))
    assert public_only.status_code == 200 and everything.status_code == 200
    # rows are grouped by the caller's groups: the soumu caller is also in "public",
    # so the per-group export must be by the most specific label the row's answer used
    assert "源内" in public_only.text
    assert SECRET in everything.text
    # A row may quote what its caller could see: the soumu caller's rows stay out of the public export
    # (the public caller may well have typed the name itself, but no restricted unit is in its rows).
    assert ",soumu," not in public_only.text and ",soumu," in everything.text
    assert not any(rid in public_only.text for rid in client.restricted_ids)
