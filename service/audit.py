"""The audit log: one row per API request, exported as CSV for the office's records.

Embedded SQLite by default (``Settings.audit_url``); any SQLAlchemy URL such as
``postgresql+psycopg://user@host/db`` selects a server. The schema uses portable
types only (JSON is kept as text), so the same code runs on both::

    audit = AuditLog("sqlite:////var/lib/guideqa/audit.sqlite3")
    answer_id = audit.record(key_id="k-01", endpoint="/ask", question_masked="〔氏名〕さんの件",
                             status="ok", groups=["public"], latency_ms={"search": 41.0})
    audit.add_feedback(answer_id, 1, "役に立った", key_id="k-01")
    with open("audit.csv", "w", encoding="utf-8", newline="") as f:
        audit.export_csv(f, groups=["public"])

Writes never wait for the database. :meth:`AuditLog.record` and
:meth:`AuditLog.add_feedback` put the write on an in-process queue and return;
one writer thread applies the queue in order, in short transactions. When the
database is locked, read-only or down, the writer keeps the rows and retries
with back-off, and :meth:`AuditLog.health` says ``degraded`` (``/readyz`` and
``/metrics`` show it). No row is dropped while the process lives; the queue is
bounded by admission — :meth:`AuditLog.ensure_accepting` refuses new requests
(503 ``audit_backlog_full``) once ``queue_size`` rows are waiting — and what is
left at exit is written before the interpreter stops if the database allows it.

Only masked text is stored: the caller passes ``question_masked`` (the guard's
``masked_for_log``) and feedback comments are masked here.
"""

from __future__ import annotations

import atexit
import csv
import dataclasses
from dataclasses import dataclass
import io
import json
import logging
import threading
import time
import uuid
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO, overload

from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    event,
    insert,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from guideqa.errors import AuditBacklogFull, AuditUnavailable

__all__ = ["AuditLog", "AuditHealth", "AuditUnavailable", "AUDIT_COLUMNS", "STATUSES", "audit_table"]

log = logging.getLogger(__name__)

STATUSES = ("ok", "blocked", "error", "fallback")

metadata = MetaData()

audit_table = Table(
    "audit_log",
    metadata,
    Column("id", String(32), primary_key=True),  # answer_id, uuid4 hex
    Column("created_at", String(32), nullable=False, index=True),  # UTC ISO 8601, fixed width so it sorts
    Column("key_id", String(128), index=True),  # never the key itself
    Column("endpoint", String(64)),
    Column("question_masked", Text),
    Column("mode", String(32)),
    Column("retrieved_ids", Text),  # JSON list
    Column("answer", Text),
    Column("citations", Text),  # JSON
    Column("abstained", Boolean),
    Column("model", String(200)),
    Column("index_version", String(200)),
    Column("latency_ms", Text),  # JSON {stage: ms}
    Column("status", String(16), nullable=False),
    Column("error_code", String(64)),
    Column("feedback_rating", Integer),
    Column("feedback_comment", Text),  # masked
    Column("feedback_at", String(32)),
    # GROUPS is a keyword in SQLite's and PostgreSQL's window syntax: always quote it.
    Column("groups", Text, quote=True),  # JSON list of the caller's groups
)

AUDIT_COLUMNS: tuple[str, ...] = tuple(c.name for c in audit_table.columns)
_JSON_COLUMNS = {"retrieved_ids", "citations", "latency_ms", "groups"}
_WRITABLE = set(AUDIT_COLUMNS) - {"id", "feedback_rating", "feedback_comment", "feedback_at"}
# Excel runs cells that start with these as formulas (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PAGE = 500


# Writer back-off while the database refuses writes, and rows per transaction.
_RETRY_DELAYS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
_BATCH = 200
# Answer owners remembered for feedback (an answer asked about later is read from the database).
_OWNERS_KEPT = 50_000


@dataclass(frozen=True)
class AuditHealth:
    """What ``/readyz`` and ``/metrics`` show about the audit store.

    Attributes:
        status: ``ok`` or ``degraded`` (writes are failing and being retried).
        pending: writes waiting in memory.
        written: writes applied since start.
        failures: failed write attempts since start (each retry counts).
        last_error: the last failure, class and first line only (no row content).
    """

    status: str
    pending: int
    written: int
    failures: int
    last_error: str | None = None


@dataclass
class _Write:
    answer_id: str
    stmt: Any
    kind: str  # "row" | "feedback"


def _utc_iso(value: datetime | str | None = None) -> str:
    """UTC ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``; naive datetimes are taken as UTC."""
    if value is None:
        value = datetime.now(timezone.utc)
    elif isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _to_jsonable(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


def _dumps(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, default=_to_jsonable)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets exports read while the API writes; busy_timeout absorbs other processes'
    # short writes. A longer lock is the writer thread's business (it retries), so the
    # timeout stays short enough for close() and exports to notice.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=2000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    if database in ("", ":memory:"):
        # One shared connection, or every checkout would see a new empty database.
        engine = create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool)
    else:
        if not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 2})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class AuditLog:
    """Append-only request log with feedback and a filtered CSV export.

    Args:
        url: SQLAlchemy URL (``sqlite:////abs/path/audit.sqlite3``, ``postgresql+psycopg://…``).
            The parent directory of a SQLite file is created.
        masker: masks free text (feedback comments) before it is stored; defaults to
            the bundled input guard's ``mask_for_log``. The API passes its own guard's.
        queue_size: writes held in memory before :meth:`ensure_accepting` refuses requests.

    Nothing here runs a database write on the caller's thread: see the module docstring.
    """

    def __init__(self, url: str, *, masker: Callable[[str], str] | None = None, queue_size: int = 10_000):
        self.url = url
        try:
            self._engine = _make_engine(url)
        except ImportError as exc:
            # e.g. a postgresql+psycopg URL on a machine without the driver.
            raise AuditUnavailable(
                "監査ログ用のデータベースドライバーがありません。`pip install psycopg[binary]` などを実行してください。",
                detail=str(exc),
            ) from exc
        self.queue_size = queue_size
        self._masker = masker
        self._schema_lock = threading.Lock()
        self._schema_ready = False
        self._cond = threading.Condition()
        self._queue: deque[_Write] = deque()
        self._busy = 0  # writes taken off the queue and not yet committed
        self._owners: OrderedDict[str, str | None] = OrderedDict()  # answer_id -> key_id
        self._written = 0
        self._failures = 0
        self._last_error: str | None = None
        self._degraded = False
        self._closing = False
        self._thread: threading.Thread | None = None
        # Rows still queued when the interpreter exits are written then, if the database lets us.
        atexit.register(_flush_at_exit, weakref.ref(self))

    # --- writing ---------------------------------------------------------------

    def _ensure_schema(self) -> None:
        with self._schema_lock:
            if not self._schema_ready:
                try:
                    metadata.create_all(self._engine, checkfirst=True)
                except SQLAlchemyError:
                    # Another process (or another AuditLog on the same file) created it between
                    # the check and the CREATE: fine. Anything else is a real failure.
                    if not inspect(self._engine).has_table(audit_table.name):
                        raise
                self._schema_ready = True

    def _start_writer(self) -> None:
        # Called with self._cond held.
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run_writer, name="audit-writer", daemon=True)
            self._thread.start()

    def _enqueue(self, write: _Write) -> None:
        with self._cond:
            if self._closing:
                # After close(): write on this thread rather than lose the row.
                self._apply_now(write)
                return
            self._queue.append(write)
            self._start_writer()
            self._cond.notify_all()

    def _apply_now(self, write: _Write) -> None:
        try:
            self._commit([write])
        except Exception:  # noqa: BLE001 - logged; the process is shutting down
            log.exception("audit row %s could not be written", write.answer_id)

    def _commit(self, batch: list[_Write]) -> None:
        self._ensure_schema()
        with self._engine.begin() as conn:
            for write in batch:
                if conn.execute(write.stmt).rowcount == 0 and write.kind == "feedback":
                    log.warning("feedback for %s found no audit row", write.answer_id)

    def _run_writer(self) -> None:
        attempt = 0
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                batch = [self._queue.popleft() for _ in range(min(_BATCH, len(self._queue)))]
                self._busy = len(batch)
            try:
                self._commit(batch)
                done, rest, error = len(batch), [], None
            except Exception as exc:  # noqa: BLE001 - sorted here: retry, or isolate the bad row
                if _is_transient(exc):
                    done, rest, error = 0, batch, exc
                else:
                    # A row the database rejects for what it is (duplicate id, bad value) will
                    # never be written: write the others one by one, log that one.
                    done, rest, error = self._isolate(batch)
            with self._cond:
                self._busy = 0
                self._written += done
                if rest:
                    self._queue.extendleft(reversed(rest))
                elif self._degraded:
                    log.warning("audit database writable again; %d queued writes remain", len(self._queue))
                    self._degraded = False
                self._cond.notify_all()
            if rest:
                attempt = self._back_off(error, attempt)
            else:
                attempt = 0

    def _back_off(self, exc: Exception | None, attempt: int) -> int:
        """Note the failure (``/readyz``, ``/metrics``) and wait before the next attempt."""
        text = str(getattr(exc, "orig", exc) or "").strip()
        with self._cond:
            self._failures += 1
            self._last_error = f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"[:300]
            if not self._degraded:
                log.error("audit rows could not be written yet (%s); %d queued, retrying", self._last_error, len(self._queue))
            self._degraded = True
        # A plain sleep: new requests must not hurry the retry (a down server would be hammered).
        time.sleep(_RETRY_DELAYS[min(attempt, len(_RETRY_DELAYS) - 1)])
        return attempt + 1

    def _isolate(self, batch: list[_Write]) -> tuple[int, list[_Write], Exception | None]:
        """Write ``batch`` one by one. Returns (writes done or dropped, writes left, the failure that stopped it)."""
        for k, write in enumerate(batch):
            try:
                self._commit([write])
            except Exception as exc:  # noqa: BLE001
                if _is_transient(exc):
                    return k, batch[k:], exc  # the database went away mid-way
                log.exception("audit row %s could not be written", write.answer_id)
        return len(batch), [], None

    def ensure_accepting(self) -> None:
        """Refuse a new request while the queue is full (the store has been down that long).

        Raises:
            AuditBacklogFull: ``queue_size`` writes are waiting (503, Retry-After).
        """
        with self._cond:
            if len(self._queue) + self._busy >= self.queue_size:
                raise AuditBacklogFull(retry_after=30, detail=f"{len(self._queue)} audit writes queued")

    def record(self, **fields: Any) -> str:
        """Queue one request's row and return its ``answer_id`` at once.

        Args:
            **fields: any of the columns (``key_id``, ``endpoint``, ``question_masked``,
                ``mode``, ``retrieved_ids``, ``answer``, ``citations``, ``abstained``,
                ``model``, ``index_version``, ``latency_ms``, ``status``, ``error_code``,
                ``groups``); ``answer_id`` (or ``id``) to reuse an id already sent to
                the caller; ``created_at`` to backdate (tests, imports). JSON columns
                take Python values (lists, dicts, pydantic models). Unknown fields are
                logged and dropped.

        Returns:
            The answer id (new uuid4 hex unless given). The row is written by the
            writer thread; a database that refuses it is retried, never skipped.
        """
        answer_id = str(fields.pop("answer_id", None) or fields.pop("id", None) or uuid.uuid4().hex)
        try:
            row = self._row(answer_id, fields)
        except Exception:  # noqa: BLE001 - auditing must never fail a request
            log.exception("audit row %s could not be built", answer_id)
            return answer_id
        with self._cond:
            self._owners[answer_id] = row.get("key_id")
            while len(self._owners) > _OWNERS_KEPT:
                self._owners.popitem(last=False)
        self._enqueue(_Write(answer_id, insert(audit_table).values(**row), "row"))
        return answer_id

    def _row(self, answer_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        unknown = set(fields) - _WRITABLE
        if unknown:
            log.warning("audit row %s: ignoring unknown fields %s", answer_id, sorted(unknown))
        row: dict[str, Any] = {"id": answer_id, "status": "ok"}
        for name in _WRITABLE & set(fields):
            value = fields[name]
            if name in _JSON_COLUMNS:
                value = _dumps(value)
            elif name == "created_at":
                value = _utc_iso(value)
            elif name == "abstained":
                value = None if value is None else bool(value)
            elif value is not None:
                value = str(value)
            row[name] = value
        row.setdefault("created_at", _utc_iso())
        if row["status"] not in STATUSES:
            log.warning("audit row %s: unexpected status %r", answer_id, row["status"])
        return row

    def owner_of(self, answer_id: str) -> tuple[bool, str | None]:
        """Whether ``answer_id`` was recorded, and the key that got it.

        Answers of this process are known from memory (even while the database is
        down); older ones are read from the database.

        Raises:
            AuditUnavailable: the answer is not in memory and the database cannot be read.
        """
        with self._cond:
            if answer_id in self._owners:
                return True, self._owners[answer_id]
        stmt = select(audit_table.c.key_id).where(audit_table.c.id == answer_id)
        try:
            self._ensure_schema()
            with self._engine.connect() as conn:
                found = conn.execute(stmt).first()
        except SQLAlchemyError as exc:
            raise AuditUnavailable(detail=str(exc).splitlines()[0]) from exc
        return (found is not None), (found[0] if found is not None else None)

    def add_feedback(self, answer_id: str, rating: int, comment: str | None = None, *, key_id: str | None = None) -> bool:
        """Queue a rating and a (masked) comment for an earlier answer.

        Args:
            answer_id: the answer being rated.
            rating: 1 (up), -1 (down) or 0.
            comment: free text, masked before it is stored.
            key_id: the caller's key; only the key that got the answer may rate it.
                ``None`` skips the ownership check (local tools).

        Returns:
            True if the answer exists (and belongs to ``key_id``) and the rating was
            queued; False otherwise — an answer of another key looks like no answer.

        Raises:
            AuditUnavailable: the answer is not in memory and the database cannot be read.
        """
        known, owner = self.owner_of(answer_id)
        if not known or (key_id is not None and owner != key_id):
            return False
        masked = self._mask(comment) if comment else comment
        stmt = (
            update(audit_table)
            .where(audit_table.c.id == answer_id)
            .values(feedback_rating=int(rating), feedback_comment=masked, feedback_at=_utc_iso())
        )
        self._enqueue(_Write(answer_id, stmt, "feedback"))
        return True

    def _mask(self, text: str) -> str:
        if self._masker is None:
            # Imported late: the guard loads MeCab, which an export-only process never needs.
            from service.guard import InputGuard

            self._masker = InputGuard.default().mask_for_log
        return self._masker(text)

    def health(self) -> AuditHealth:
        """The writer's state, for ``/readyz`` and ``/metrics``."""
        with self._cond:
            return AuditHealth(
                status="degraded" if self._degraded else "ok",
                pending=len(self._queue) + self._busy,
                written=self._written,
                failures=self._failures,
                last_error=self._last_error,
            )

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued write is in the database, at most ``timeout`` seconds.

        Returns:
            True if nothing is left to write.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    # --- reading ---------------------------------------------------------------

    def _where(self, since, until, key_id, groups):
        t = audit_table.c
        cond = []
        if since is not None:
            cond.append(t.created_at >= _utc_iso(since))
        if until is not None:
            cond.append(t.created_at < _utc_iso(until))
        if key_id is not None:
            cond.append(t.key_id == key_id)
        if groups is not None:
            # Coarse filter in SQL on the JSON text (portable LIKE); the exact subset test in Python.
            cond.append(or_(*(t.groups.contains(json.dumps(g, ensure_ascii=False), autoescape=True) for g in groups)) if groups else t.id.is_(None))
        return cond

    def _iter_rows(self, *, since=None, until=None, key_id=None, groups: list[str] | None = None) -> Iterator[dict[str, Any]]:
        """Rows in (created_at, id) order, read page by page so no read holds the database long.

        Waits briefly for queued writes first, so a row recorded just before is read back.
        """
        self.flush(timeout=2.0)
        wanted = set(groups) if groups is not None else None
        cond = self._where(since, until, key_id, groups)
        after: tuple[str, str] | None = None
        while True:
            page_cond = list(cond)
            if after is not None:
                ca, rid = after
                page_cond.append(
                    or_(audit_table.c.created_at > ca, and_(audit_table.c.created_at == ca, audit_table.c.id > rid))
                )
            stmt = select(audit_table).where(*page_cond).order_by(audit_table.c.created_at, audit_table.c.id).limit(_PAGE)
            try:
                self._ensure_schema()
                with self._engine.connect() as conn:
                    page = [dict(r._mapping) for r in conn.execute(stmt)]
            except SQLAlchemyError as exc:
                raise AuditUnavailable(detail=str(exc)) from exc
            for raw in page:
                row = _decode(raw)
                if wanted is not None and not (row["groups"] and set(row["groups"]) <= wanted):
                    continue
                yield row
            if len(page) < _PAGE:
                return
            after = (page[-1]["created_at"], page[-1]["id"])

    def rows(self, *, since: datetime | str | None = None, until: datetime | str | None = None, key_id: str | None = None, groups: list[str] | None = None) -> list[dict[str, Any]]:
        """Matching rows as dicts with JSON columns decoded, oldest first.

        Args:
            since: inclusive lower bound on ``created_at`` (datetime or ISO string; naive = UTC).
            until: exclusive upper bound.
            key_id: only this API key's requests.
            groups: only rows that a reader with these access labels may read, i.e. whose
                caller had no label outside them (a row can quote any unit its caller
                could see); ``None`` (admins) = all rows.

        Raises:
            AuditUnavailable: the database cannot be read.
        """
        return list(self._iter_rows(since=since, until=until, key_id=key_id, groups=groups))

    @overload
    def export_csv(self, fileobj: None = None, *, since=..., until=..., key_id=..., groups=...) -> Iterator[str]: ...
    @overload
    def export_csv(self, fileobj: TextIO, *, since=..., until=..., key_id=..., groups=...) -> int: ...

    def export_csv(
        self,
        fileobj: TextIO | None = None,
        *,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        key_id: str | None = None,
        groups: list[str] | None = None,
    ) -> Iterator[str] | int:
        """CSV for Excel: UTF-8 with a BOM, a header row, CRLF line ends.

        JSON columns are written as JSON text, booleans as ``true``/``false``. A
        cell that starts with ``= + - @`` gets a leading ``'`` so Excel shows it as
        text instead of running it as a formula.

        Args:
            fileobj: a text file opened with ``newline=""``; when omitted, an
                iterator of CSV lines is returned instead (for a streaming response).
            since, until, key_id, groups: as in :meth:`rows`.

        Returns:
            The number of data rows written, or the line iterator.
        """
        lines = self._csv_lines(self._iter_rows(since=since, until=until, key_id=key_id, groups=groups))
        if fileobj is None:
            return lines
        count = -1  # the header is not a row
        for line in lines:
            fileobj.write(line)
            count += 1
        return count

    def iter_csv(self, **filters: Any) -> Iterator[str]:
        """Same as ``export_csv(None, **filters)``: CSV lines, the first one with the BOM."""
        return self._csv_lines(self._iter_rows(**filters))

    @staticmethod
    def _csv_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")

        def take() -> str:
            out = buf.getvalue()
            buf.seek(0)
            buf.truncate()
            return out

        writer.writerow(AUDIT_COLUMNS)
        yield "\ufeff" + take()
        for row in rows:
            writer.writerow([_csv_cell(name, row[name]) for name in AUDIT_COLUMNS])
            yield take()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (at most ``timeout`` seconds), stop the writer, release connections.

        Rows still unwritten after that are logged by count; a write queued after
        close() is applied on the caller's thread.
        """
        flushed = self.flush(timeout)
        with self._cond:
            self._closing = True
            left = len(self._queue) + self._busy
            self._cond.notify_all()
        if not flushed:
            log.error("audit store still unwritable at close: %d queued writes are retried until exit", left)
            return  # the writer keeps trying; the at-exit flush is the last attempt
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._engine.dispose()


def _is_transient(exc: Exception) -> bool:
    """A failure of the database (locked, read-only, down), not of the row: worth retrying."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def _flush_at_exit(ref: "weakref.ReferenceType[AuditLog]") -> None:
    audit = ref()
    if audit is None:
        return
    if not audit.flush(timeout=5.0):
        log.error("audit store unwritable at exit: %d writes lost", audit.health().pending)


def _decode(raw: dict[str, Any]) -> dict[str, Any]:
    row = dict(raw)
    for name in _JSON_COLUMNS:
        if row.get(name) is not None:
            try:
                row[name] = json.loads(row[name])
            except ValueError:
                pass  # written by hand or by an older version: keep the text
    if row.get("abstained") is not None:
        row["abstained"] = bool(row["abstained"])
    return row


def _csv_cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if name in _JSON_COLUMNS:
        return json.dumps(value, ensure_ascii=False)
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text
    return text
