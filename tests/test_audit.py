"""The audit log: one row per request, feedback on answers, CSV export for Excel.

Every test runs against embedded SQLite. Set ``GUIDEQA_TEST_PG_URL`` (for example
``postgresql+psycopg://guideqa@127.0.0.1:54329/guideqa_audit_test``) to run the
same tests against a PostgreSQL server as well (marker ``server``).
"""

from __future__ import annotations

import csv
import io
import os
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, delete

from guideqa.errors import AuditUnavailable
from service.audit import AUDIT_COLUMNS, AuditLog, audit_table

PG_URL = os.environ.get("GUIDEQA_TEST_PG_URL")


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=[
                pytest.mark.server,
                pytest.mark.skipif(not PG_URL, reason="GUIDEQA_TEST_PG_URL is not set"),
            ],
        ),
    ]
)
def audit_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        # A directory that does not exist yet: AuditLog creates it.
        return f"sqlite:///{tmp_path / 'nested' / 'audit.sqlite3'}"
    engine = create_engine(PG_URL)
    try:
        audit_table.create(engine, checkfirst=True)
        with engine.begin() as conn:
            conn.execute(delete(audit_table))
    finally:
        engine.dispose()
    return PG_URL


@pytest.fixture()
def audit(audit_url):
    # A simple masker keeps these tests independent of the guard's rules.
    log = AuditLog(audit_url, masker=lambda s: s.replace("090-1234-5678", "〔電話番号〕"))
    yield log
    log.close()


def a_request(**overrides):
    row = dict(
        key_id="k-city-01",
        endpoint="/ask",
        question_masked="〔氏名〕さんの件で生成AIを使ってよい？",
        mode="answer",
        retrieved_ids=["tokyo#3.2", "da#1"],
        answer="利用前に所属の承認を得てください。",
        citations=[{"unit_id": "tokyo#3.2", "quote": "承認を得る"}],
        abstained=False,
        model="qwen2.5-1.5b",
        index_version="2026-03-30",
        latency_ms={"search": 41.5, "llm": 812.0},
        status="ok",
        groups=["public", "city"],
    )
    row.update(overrides)
    return row


def test_record_and_read_back(audit, tmp_path):
    answer_id = audit.record(**a_request())
    assert len(answer_id) == 32 and int(answer_id, 16) >= 0
    (row,) = audit.rows()
    assert row["id"] == answer_id
    assert row["retrieved_ids"] == ["tokyo#3.2", "da#1"]
    assert row["citations"] == [{"unit_id": "tokyo#3.2", "quote": "承認を得る"}]
    assert row["latency_ms"] == {"search": 41.5, "llm": 812.0}
    assert row["groups"] == ["public", "city"]
    assert row["abstained"] is False
    assert row["status"] == "ok" and row["error_code"] is None
    created = datetime.fromisoformat(row["created_at"])
    assert created.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - created) < timedelta(minutes=1)


def test_sqlite_parent_directory_is_created(tmp_path):
    path = tmp_path / "a" / "b" / "audit.sqlite3"
    log = AuditLog(f"sqlite:///{path}")
    log.record(status="blocked", error_code="pii_detected")
    log.close()
    assert path.exists()


def test_caller_can_choose_the_answer_id(audit):
    assert audit.record(answer_id="a" * 32, **a_request()) == "a" * 32
    assert [r["id"] for r in audit.rows()] == ["a" * 32]


def test_record_never_raises(audit, caplog):
    first = audit.record(answer_id="dup", **a_request())
    # The same primary key again fails inside the database: logged, id still returned,
    # and the rows queued after it are still written (a bad row never blocks the queue).
    assert audit.record(answer_id="dup", **a_request()) == first
    # Unknown fields are dropped with a warning, not an exception.
    other = audit.record(no_such_column=1, **a_request())
    assert audit.flush(timeout=10)
    assert "could not be written" in caplog.text
    assert {r["id"] for r in audit.rows()} == {first, other}
    assert "no_such_column" in caplog.text


def test_record_survives_an_unusable_database(tmp_path, caplog):
    # The database path is a directory: SQLite cannot open it. Construction and
    # record() never raise into the request; the row waits in memory, is retried,
    # and the store reports itself degraded.
    (tmp_path / "audit.sqlite3").mkdir()
    log = AuditLog(f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    answer_id = log.record(**a_request())
    assert len(answer_id) == 32
    assert not log.flush(timeout=1.0)
    health = log.health()
    assert health.status == "degraded" and health.pending == 1 and health.failures >= 1
    assert "could not be written yet" in caplog.text
    # Feedback on the fresh answer is accepted (the owner is known in memory) and queued too.
    assert log.add_feedback(answer_id, 1, "コメント", key_id="k-city-01") is True
    assert log.add_feedback(answer_id, 1, "コメント", key_id="someone-else") is False
    # An answer this process never gave cannot be looked up while the database is unreadable.
    with pytest.raises(AuditUnavailable):
        log.add_feedback("x" * 32, 1, "コメント")
    log.close(timeout=0.5)


def test_a_read_only_database_keeps_rows_queued_instead_of_dropping_them(tmp_path):
    path = tmp_path / "audit.sqlite3"
    writable = AuditLog(f"sqlite:///{path}")
    writable.record(**a_request())
    writable.close()
    read_only = AuditLog(f"sqlite:///file:{path}?mode=ro&uri=true")
    answer_id = read_only.record(**a_request())
    assert not read_only.flush(timeout=1.0)
    assert read_only.health().status == "degraded" and read_only.health().pending == 1
    assert "readonly" in (read_only.health().last_error or "")
    # Feedback on the answer just given is not a 404: its owner is known while the row waits.
    assert read_only.add_feedback(answer_id, 1, "ok", key_id="k-city-01") is True
    assert read_only.health().pending == 2
    read_only.close(timeout=0.2)


def test_writes_never_wait_for_a_locked_database(tmp_path):
    import sqlite3
    import time

    path = tmp_path / "audit.sqlite3"
    log = AuditLog(f"sqlite:///{path}")
    log.record(**a_request())
    assert log.flush(10)
    lock = sqlite3.connect(str(path), timeout=0, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    t0 = time.monotonic()
    ids = [log.record(**a_request()) for _ in range(20)]
    answer_ok = log.add_feedback(ids[0], 1, "x", key_id="k-city-01")
    queued_in = time.monotonic() - t0
    lock.execute("ROLLBACK")
    lock.close()
    assert answer_ok and queued_in < 1.0  # nothing waited for the lock (it lasts 2 s per attempt)
    assert log.flush(30)
    assert {r["id"] for r in log.rows()} >= set(ids)
    assert [r["feedback_rating"] for r in log.rows() if r["id"] == ids[0]] == [1]
    log.close()


def test_fifty_threads_lose_no_row(audit):
    n_threads, per_thread = 50, 4
    ids: list[str] = []
    ids_lock = threading.Lock()
    start = threading.Barrier(n_threads)

    def worker(i: int) -> None:
        start.wait()  # all threads hit the database at once
        for j in range(per_thread):
            answer_id = audit.record(**a_request(key_id=f"k-{i}", question_masked=f"質問 {i}-{j}"))
            with ids_lock:
                ids.append(answer_id)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = audit.rows()
    assert len(ids) == len(set(ids)) == n_threads * per_thread
    assert {r["id"] for r in rows} == set(ids)
    assert {r["question_masked"] for r in rows} == {f"質問 {i}-{j}" for i in range(n_threads) for j in range(per_thread)}


def test_feedback_is_masked_and_stamped(audit):
    answer_id = audit.record(**a_request())
    assert audit.add_feedback(answer_id, 1, "担当 090-1234-5678 に確認済み") is True
    (row,) = audit.rows()
    assert row["feedback_rating"] == 1
    assert row["feedback_comment"] == "担当 〔電話番号〕 に確認済み"
    assert datetime.fromisoformat(row["feedback_at"]) >= datetime.fromisoformat(row["created_at"])
    # A later rating replaces the earlier one.
    assert audit.add_feedback(answer_id, -1, None) is True
    assert audit.rows()[0]["feedback_rating"] == -1
    assert audit.add_feedback("no-such-answer", 1, "x") is False


def test_feedback_uses_the_guard_by_default(tmp_path):
    log = AuditLog(f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    answer_id = log.record(**a_request())
    log.add_feedback(answer_id, 0, "山田太郎さんに 03-1234-5678 で確認")
    assert log.rows()[0]["feedback_comment"] == "〔氏名〕さんに 〔電話番号〕 で確認"
    log.close()


def read_csv(text: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:], newline="")))


def test_csv_export_round_trip(audit, tmp_path):
    tricky = 'カンマ,引用符"改行\n入り、=SUM(A1)は式ではない'
    first = audit.record(**a_request(answer=tricky, abstained=True, status="fallback", error_code="llm_unavailable"))
    second = audit.record(**a_request(question_masked="=HYPERLINK(\"http://x\")", groups=["public"]))

    path = tmp_path / "audit.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        assert audit.export_csv(f) == 2
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    assert b"\r\n" in raw

    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [dict(zip(header, r)) for r in reader]
    assert tuple(header) == AUDIT_COLUMNS
    by_id = {r["id"]: r for r in rows}
    assert by_id[first]["answer"] == tricky
    assert by_id[first]["abstained"] == "true"
    assert by_id[first]["status"] == "fallback"
    assert by_id[first]["error_code"] == "llm_unavailable"
    assert by_id[first]["retrieved_ids"] == '["tokyo#3.2", "da#1"]'
    assert by_id[first]["feedback_rating"] == ""
    # Excel would run this as a formula; the export neutralises it.
    assert by_id[second]["question_masked"] == "'=HYPERLINK(\"http://x\")"

    # Without a file: an iterator of lines for a streaming response, same content.
    assert "".join(audit.export_csv()) == raw.decode("utf-8")


def test_export_filters_by_time_and_key(audit):
    t0 = datetime(2026, 4, 1, 9, 0, tzinfo=timezone.utc)
    for hours in range(5):
        audit.record(**a_request(created_at=t0 + timedelta(hours=hours), key_id="even" if hours % 2 == 0 else "odd"))
    window = audit.rows(since=t0 + timedelta(hours=1), until=t0 + timedelta(hours=4))
    assert [datetime.fromisoformat(r["created_at"]).hour for r in window] == [10, 11, 12]
    # JST strings work too: 18:00+09:00 is 09:00 UTC.
    assert len(audit.rows(since="2026-04-01T18:00:00+09:00", until="2026-04-01T19:00:00+09:00")) == 1
    assert {r["key_id"] for r in audit.rows(key_id="odd")} == {"odd"}
    assert len(read_csv("".join(audit.export_csv(key_id="even")))) == 3


def test_export_filters_by_group(audit):
    audit.record(**a_request(key_id="a", groups=["public"]))
    audit.record(**a_request(key_id="b", groups=["city", "hr"]))
    audit.record(**a_request(key_id="c", groups=["hr"]))
    audit.record(**a_request(key_id="d", groups=["city_hall"]))  # not "city"
    audit.record(**a_request(key_id="e", groups=None))

    def keys(groups):
        return sorted(r["key_id"] for r in audit.rows(groups=groups))

    # A row may quote anything its caller could see, so an export for some labels holds
    # only the rows of callers who had no other label.
    assert keys(None) == ["a", "b", "c", "d", "e"]  # admins see every row
    assert keys(["city"]) == []
    assert keys(["hr"]) == ["c"]
    assert keys(["city", "hr"]) == ["b", "c"]
    assert keys(["public", "city_hall"]) == ["a", "d"]
    assert keys([]) == []
    exported = read_csv("".join(audit.export_csv(groups=["hr", "city"])))
    assert sorted(r["key_id"] for r in exported) == ["b", "c"]


def test_export_pages_through_many_rows(audit):
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    # Equal timestamps across a page boundary (500 rows) must be neither lost nor repeated.
    for i in range(1203):
        audit.record(**a_request(created_at=t0 + timedelta(seconds=i // 3), key_id=f"k{i}"))
    rows = read_csv("".join(audit.export_csv()))
    assert len(rows) == 1203
    assert len({r["id"] for r in rows}) == 1203
