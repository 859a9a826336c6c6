"""Feedback belongs to the key that got the answer; a streamed refusal is refused like a JSON one."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from service.audit import AuditLog
from service.main import create_app

ALICE, BOB = "alice-key-00001", "bob-key-0000001"
KEYS = f"{ALICE}:alice:user:public,{BOB}:bob:user:public"


@pytest.fixture(scope="module")
def app_settings(settings, built_index, tmp_path_factory):
    audit = tmp_path_factory.mktemp("requests-audit") / "audit.sqlite3"
    return settings.model_copy(update={
        "llm_backend": "none", "api_keys": KEYS, "allow_anonymous": True, "rate_limit_per_minute": 100000,
        "llm_queue_size": 1, "audit_db_url": f"sqlite:///{audit}",
    })


@pytest.fixture(scope="module")
def client(app_settings):
    with TestClient(create_app(app_settings)) as c:
        yield c


def rows(app_settings, client=None) -> list[dict]:
    """The audit rows as another process would read them, once the app's queue is written."""
    if client is not None:
        assert client.app.state.guideqa.audit.flush(10)
    log = AuditLog(app_settings.audit_url)
    try:
        return log.rows()
    finally:
        log.close()


def test_only_the_key_that_got_an_answer_may_rate_it(client, app_settings):
    answer_id = client.post("/v1/ask", json={"question": "オプトアウトとは？", "mode": "clauses"}, headers={"X-API-Key": ALICE}).json()["answer_id"]
    for other in ({"X-API-Key": BOB}, {}):  # another key of the same group, and an anonymous caller
        r = client.post("/v1/feedback", json={"answer_id": answer_id, "rating": "down", "comment": "悪い"}, headers=other)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    ok = client.post("/v1/feedback", json={"answer_id": answer_id, "rating": "up", "comment": "助かった"}, headers={"X-API-Key": ALICE})
    assert ok.status_code == 200
    (row,) = [r for r in rows(app_settings, client) if r["id"] == answer_id]
    assert row["feedback_rating"] == 1 and row["feedback_comment"] == "助かった"


class _NeverCalled:
    """Stands in for the LLM: the requests below must be refused before any generation."""

    name = "never-called"

    def chat(self, *args, **kwargs):
        raise AssertionError("generation must not start")

    stream_chat = chat


def _fill_queue(state) -> tuple[threading.Event, list[threading.Thread]]:
    """One generation running and one waiting: a queue of size 1 is full."""
    release = threading.Event()
    entered = threading.Event()

    def hold():
        with state.queue.slot(timeout=60):
            entered.set()
            release.wait(60)

    def wait_behind():
        with state.queue.slot(timeout=60):
            pass

    threads = [threading.Thread(target=hold)]
    threads[0].start()
    assert entered.wait(10)
    threads.append(threading.Thread(target=wait_behind))
    threads[1].start()
    deadline = time.monotonic() + 10
    while state.queue.waiting < state.queue.size and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state.queue.waiting >= state.queue.size
    return release, threads


def test_overload_skips_the_model_and_keeps_the_composed_answer(client, app_settings):
    """A full generation queue does not refuse: the verbatim pieces need no model; only its choice
    and lead are skipped, the answer says so, and the request is audited as a fallback."""
    from service.answer.pipeline import BUSY_NOTICE

    state = client.app.state.guideqa
    state.backend = _NeverCalled()
    release, threads = _fill_queue(state)
    try:
        question = "生成AIの回答をそのまま使っていい？"  # a may-I question: its answer would get the model's lead
        with client.stream("POST", "/v1/ask", json={"question": question, "stream": True}, headers={"X-API-Key": ALICE}) as streamed:
            body = streamed.read().decode()
        plain = client.post("/v1/ask", json={"question": question}, headers={"X-API-Key": ALICE})
    finally:
        release.set()
        for t in threads:
            t.join(10)
        state.backend = None
    assert streamed.status_code == 200 and "event: done" in body and BUSY_NOTICE in body
    assert plain.status_code == 200 and plain.json()["notice"] == BUSY_NOTICE and plain.json()["citations"]
    assert not plain.json()["ai_generated"]
    fallbacks = [r for r in rows(app_settings, client) if r["endpoint"] == "/v1/ask" and r["status"] == "fallback" and r["key_id"] == "alice"]
    assert len(fallbacks) == 2


def test_a_stream_the_client_leaves_early_is_audited(client, app_settings):
    before = len(rows(app_settings, client))
    with client.stream("POST", "/v1/ask", json={"question": "オプトアウトとは？", "mode": "clauses", "stream": True}, headers={"X-API-Key": BOB}) as r:
        assert r.status_code == 200
        next(r.iter_lines())  # read the first line only, then hang up
    deadline = time.monotonic() + 10
    while len(rows(app_settings, client)) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    new = rows(app_settings, client)[before:]
    assert len(new) == 1 and new[0]["key_id"] == "bob" and new[0]["endpoint"] == "/v1/ask"
