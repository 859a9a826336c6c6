"""One access rule on every endpoint: a document labelled ``internal`` never reaches a public caller.

The corpus is the real one with the 総務省 (MIC) reference materials relabelled
``internal`` in the manifest — the document the confidentiality check's rules cite.
A public key and an anonymous caller walk every endpoint with questions about that
document; no response may carry any of its text, its unit IDs or its title. A key in
the ``internal`` group asking the same things gets the quotes (so the walk would
notice a filter that hid everything, or nothing).
"""

from __future__ import annotations

import json
import shutil
import unicodedata

import pytest
from fastapi.testclient import TestClient

from index.build import build_index
from index.embeddings import get_embedding_model
from index.tokenizer import get_tokenizer
from ingest.pipeline import ingest_corpus
from service.main import create_app
from tests.conftest import CORPUS

MIC_FILE = "mic_local-gov-ai-wg_reference-materials_2025-07.txt"
PUB, INTERNAL, ADMIN = "public-user-001", "internal-user-01", "admin-user-0001"
KEYS = f"{PUB}:pub:user:public,{INTERNAL}:inside:user:public|internal,{ADMIN}:ops:admin:public"
WINDOW = 24

QUESTIONS = [
    "入札予定価格を規約に同意するだけの無料AIに入れていい？",
    "3C情報をISMAP登録のクラウドの生成AIで扱っていい？",
    "住民記録のデータを無料のチャットAIに貼っていい？",
    "自治体の機密性3Bの情報はパブリッククラウドで扱える？",
    "香川県のCatBotの事例を教えて",
]


def _norm(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


@pytest.fixture(scope="module")
def restricted(tmp_path_factory, settings):
    corpus = tmp_path_factory.mktemp("internal-corpus")
    shutil.copytree(CORPUS, corpus, dirs_exist_ok=True)
    manifest = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest:
        if entry["file"] == MIC_FILE:
            entry["access"] = "internal"
    (corpus / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    s = settings.model_copy(update={
        "data_dir": tmp_path_factory.mktemp("internal-data"), "llm_backend": "none", "api_keys": KEYS,
        "allow_anonymous": True, "rate_limit_per_minute": 100000, "auth_failures_per_minute": 100000,
    })
    result = ingest_corpus(corpus)
    build_index(result.units, s, embed_model=get_embedding_model(s), tokenizer=get_tokenizer())
    hidden = [u for u in result.units if u.access == "internal"]
    visible = [u for u in result.units if u.access != "internal"]
    assert hidden and visible
    public_text = "\n".join(_norm(u.text) for u in visible)
    # Fingerprints: windows of the hidden units' text that no visible unit contains.
    prints = set()
    for u in hidden:
        t = _norm(u.text)
        for i in range(0, max(1, len(t) - WINDOW + 1), 8):
            w = t[i:i + WINDOW]
            if len(w) == WINDOW and w not in public_text:
                prints.add(w)
    with TestClient(create_app(s)) as client:
        yield {
            "client": client,
            "prints": prints,
            "ids": {u.id for u in hidden},
            "title": hidden[0].doc_title,
            "doc_id": hidden[0].doc_id,
        }


def leaks(restricted, text: str) -> list[str]:
    flat = _norm(text)
    found = [p for p in restricted["prints"] if p in flat]
    found += [i for i in restricted["ids"] if i in text]
    found += [x for x in (restricted["title"], restricted["doc_id"], MIC_FILE) if _norm(x) in flat]
    return found


def walk(client, headers: dict[str, str]) -> dict[str, str]:
    """Every endpoint, with questions about the hidden document; returns {request: response text}."""
    seen: dict[str, str] = {}

    def call(label: str, method: str, url: str, **kw) -> None:
        r = client.request(method, url, headers=headers, **kw)
        assert r.status_code < 500, (label, r.status_code, r.text[:300])
        seen[label] = r.text

    for q in QUESTIONS:
        call(f"search {q}", "POST", "/v1/search", json={"query": q, "top_k": 20})
        for mode in ("clauses", "answer"):
            call(f"ask {mode} {q}", "POST", "/v1/ask", json={"question": q, "mode": mode, "top_k": 20})
            with client.stream("POST", "/v1/ask", json={"question": q, "mode": mode, "stream": True}, headers=headers) as resp:
                seen[f"ask stream {mode} {q}"] = "".join(resp.iter_text())
        call(f"check {q}", "POST", "/v1/check", json={"question": q})
    call("check fields", "POST", "/v1/check", json={"information": "入札予定価格", "service": "約款型の生成AIサービス"})
    call("check table", "GET", "/v1/check/classes")
    call("documents", "GET", "/v1/documents")
    for label, url in (("docs", "/docs"), ("openapi", "/openapi.json"), ("readyz", "/readyz"), ("metrics", "/metrics"), ("demo", "/"), ("widget", "/widget.js")):
        call(label, "GET", url)
    return seen


def test_a_public_key_and_an_anonymous_caller_never_see_the_internal_document(restricted):
    client = restricted["client"]
    unit_id = sorted(restricted["ids"])[0]
    for headers in ({"X-API-Key": PUB}, {}):
        seen = walk(client, headers)
        r = client.get(f"/v1/units/{unit_id}", headers=headers)
        seen["unit"] = r.text
        assert r.status_code in (404, 403)
        problems = {label: leaks(restricted, text)[:3] for label, text in seen.items() if leaks(restricted, text)}
        assert not problems, problems


def test_the_check_answers_a_public_caller_without_the_hidden_rules(restricted):
    client = restricted["client"]
    body = client.post("/v1/check", json={"question": QUESTIONS[0]}, headers={"X-API-Key": PUB}).json()
    # The documented behaviour: nothing from a hidden unit, so no class, quote or condition.
    assert body["verdict"] == "判断できない"
    assert body["citations"] == [] and body["class"] is None and body["table_row"] is None and body["conditions"] == []
    assert client.get("/v1/check/classes", headers={"X-API-Key": PUB}).json() == []


def test_the_internal_group_and_admins_get_the_cited_verdict(restricted):
    client = restricted["client"]
    for key in (INTERNAL, ADMIN):
        body = client.post("/v1/check", json={"question": QUESTIONS[0]}, headers={"X-API-Key": key}).json()
        assert body["verdict"] == "不可" and body["class"] == "3C"
        assert body["citations"] and all(c["unit_id"] in restricted["ids"] for c in body["citations"])
        assert [r["class_id"] for r in client.get("/v1/check/classes", headers={"X-API-Key": key}).json()] == ["3A", "3B", "3C", "2", "1"]
    seen = walk(client, {"X-API-Key": INTERNAL})
    assert sum(bool(leaks(restricted, t)) for t in seen.values()) >= len(QUESTIONS)  # the walk does reach the text


def test_the_audit_export_for_public_readers_holds_no_internal_row(restricted):
    client = restricted["client"]
    client.post("/v1/check", json={"question": QUESTIONS[0]}, headers={"X-API-Key": INTERNAL})
    public_rows = client.get("/admin/audit.csv", params={"group": "public"}, headers={"X-API-Key": ADMIN})
    everything = client.get("/admin/audit.csv", headers={"X-API-Key": ADMIN})
    assert public_rows.status_code == everything.status_code == 200
    assert not leaks(restricted, public_rows.text)
    assert "inside" not in public_rows.text and "inside" in everything.text  # the internal key's rows
    assert client.get("/admin/audit.csv", headers={"X-API-Key": INTERNAL}).status_code == 403
