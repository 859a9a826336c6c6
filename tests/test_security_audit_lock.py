"""A locked audit database never stalls the server and never loses a row.

A real uvicorn server on 127.0.0.1; another SQLite connection holds the audit
database's write lock (``BEGIN EXCLUSIVE``) for 20 s while clients keep asking.
Every request must succeed, ``/healthz`` must keep answering, ``/readyz`` must say
``degraded`` meanwhile, and once the lock is released every row must be written.
The ``/healthz`` latencies are printed for the benchmark notes, not asserted.
"""

from __future__ import annotations

import sqlite3
import statistics
import threading
import time

import httpx
import pytest

from service.audit import AuditLog
from service.main import create_app
from tests.live_server import LiveServer

KEY = "lock-user-00001"
LOCK_SECONDS = 20.0
QUESTIONS = [
    ("/v1/check", {"question": "入札予定価格を規約に同意するだけの無料AIに入れていい？"}),
    ("/v1/search", {"query": "生成AIの利用申請の手順は？", "top_k": 3}),
    ("/v1/ask", {"question": "オプトアウトとは？", "mode": "clauses"}),
]


@pytest.fixture()
def server(settings, built_index, tmp_path):
    s = settings.model_copy(update={
        "llm_backend": "none", "api_keys": f"{KEY}:lock:user:public", "allow_anonymous": False,
        "rate_limit_per_minute": 100000, "audit_db_url": f"sqlite:///{tmp_path / 'audit.sqlite3'}",
    })
    live = LiveServer(create_app(s)).start()
    try:
        yield live, s
    finally:
        live.stop()


def test_a_locked_audit_store_stalls_nothing_and_loses_nothing(server):
    live, s = server
    headers = {"X-API-Key": KEY}
    with httpx.Client(base_url=live.url, timeout=30) as c:
        assert c.post("/v1/search", json={"query": "源内"}, headers=headers).status_code == 200  # creates the schema
        deadline = time.monotonic() + 10
        while c.get("/readyz").json()["audit"]["pending"] and time.monotonic() < deadline:
            time.sleep(0.05)

    lock = sqlite3.connect(str(s.audit_url.removeprefix("sqlite:///")), timeout=0, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    started = time.monotonic()
    health_ms: list[float] = []
    failures: list[str] = []
    sent: dict[str, int] = {"/v1/check": 0, "/v1/search": 0, "/v1/ask": 0}
    answer_ids: list[str] = []
    feedback_ok = 0
    readyz_seen: set[str] = set()
    stop = threading.Event()

    def poll_health() -> None:
        with httpx.Client(base_url=live.url, timeout=30) as c:
            while not stop.is_set():
                t0 = time.perf_counter()
                r = c.get("/healthz")
                health_ms.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    failures.append(f"healthz {r.status_code}")
                time.sleep(0.02)

    def ask() -> None:
        nonlocal feedback_ok
        with httpx.Client(base_url=live.url, timeout=60) as c:
            i = 0
            while not stop.is_set():
                url, body = QUESTIONS[i % len(QUESTIONS)]
                i += 1
                r = c.post(url, json=body, headers=headers)
                if r.status_code != 200:
                    failures.append(f"{url} {r.status_code} {r.text[:100]}")
                    continue
                sent[url] += 1
                if url == "/v1/ask":
                    answer_ids.append(r.json()["answer_id"])
                    fb = c.post("/v1/feedback", json={"answer_id": answer_ids[-1], "rating": "up"}, headers=headers)
                    feedback_ok += fb.status_code == 200
                    if fb.status_code != 200:
                        failures.append(f"feedback {fb.status_code} {fb.text[:100]}")
                readyz_seen.add(c.get("/readyz").json()["status"])

    threads = [threading.Thread(target=poll_health), threading.Thread(target=ask), threading.Thread(target=ask)]
    for t in threads:
        t.start()
    time.sleep(LOCK_SECONDS)
    lock.execute("ROLLBACK")
    lock.close()
    held = time.monotonic() - started
    stop.set()
    for t in threads:
        t.join(60)

    with httpx.Client(base_url=live.url, timeout=30) as c:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready = c.get("/readyz").json()
            if ready["audit"]["pending"] == 0:
                break
            time.sleep(0.1)
        metrics = c.get("/metrics").text

    ordered = sorted(health_ms)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    print(f"\naudit locked {held:.1f} s: /healthz n={len(ordered)} p50={statistics.median(ordered):.1f} ms "
          f"p99={p99:.1f} ms max={ordered[-1]:.1f} ms; requests {sent}; feedback {feedback_ok}")

    assert not failures, failures[:5]
    assert sum(sent.values()) >= 10 and answer_ids and len(ordered) >= 50
    assert "degraded" in readyz_seen  # the lock was noticed and reported
    assert ready["audit"]["pending"] == 0 and ready["status"] == "ready"
    assert "guideqa_audit_write_failures_total" in metrics and "guideqa_audit_write_failures_total 0" not in metrics

    log = AuditLog(s.audit_url)
    try:
        rows = log.rows()
    finally:
        log.close()
    written = {url: sum(1 for r in rows if r["endpoint"] == url and r["status"] == "ok") for url in sent}
    assert written["/v1/check"] == sent["/v1/check"]
    assert written["/v1/search"] == sent["/v1/search"] + 1  # + the warm-up search
    assert written["/v1/ask"] == sent["/v1/ask"]
    rated = {r["id"] for r in rows if r["feedback_rating"] == 1}
    assert set(answer_ids) <= rated  # feedback sent during the lock landed too
