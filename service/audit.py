"""The audit log: one row per API request, exported as CSV for the office's records.

Embedded SQLite by default (``Settings.audit_url``); any SQLAlchemy URL such as
``postgresql+psycopg://user@host/db`` selects a server. The schema uses portable
types only (JSON is kept as text), so the same code runs on both::

    audit = AuditLog("sqlite:////var/lib/guideqa/audit.sqlite3")
    answer_id = audit.record(key_id="k-01", endpoint="/ask", question_masked="〔氏名〕さんの件",
                             status="ok", groups=["public"], latency_ms={"search": 41.0})
    audit.add_feedback(answer_id, 1, "役に立った")
    with open("audit.csv", "w", encoding="utf-8", newline="") as f:
        audit.export_csv(f, groups=["public"])

Only masked text is stored: the caller passes ``question_masked`` (the guard's
``masked_for_log``) and feedback comments are masked here.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import threading
import time
import uuid
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
    or_,
    select,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from guideqa.errors import GuideQAError

__all__ = ["AuditLog", "AuditUnavailable", "AUDIT_COLUMNS", "STATUSES", "audit_table"]

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


class AuditUnavailable(GuideQAError):
    """The audit database cannot be read (export only; writes never raise)."""

    code = "internal_error"
    default_message = "監査ログを読み込めませんでした。管理者に連絡してください。"


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
    # WAL lets exports read while the API writes; busy_timeout absorbs other processes' writes.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
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
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class AuditLog:
    """Append-only request log with feedback and a filtered CSV export.

    Args:
        url: SQLAlchemy URL (``sqlite:////abs/path/audit.sqlite3``, ``postgresql+psycopg://…``).
            The parent directory of a SQLite file is created.
        masker: masks free text (feedback comments) before it is stored; defaults to
            the bundled input guard's ``mask_for_log``. The API passes its own guard's.

    Writes go through one lock in short transactions, so concurrent requests never
    contend inside the database; :meth:`record` logs failures instead of raising.
    """

    def __init__(self, url: str, *, masker: Callable[[str], str] | None = None):
        self.url = url
        try:
            self._engine = _make_engine(url)
        except ImportError as exc:
            # e.g. a postgresql+psycopg URL on a machine without the driver.
            raise AuditUnavailable(
                "監査ログ用のデータベースドライバーがありません。`pip install psycopg[binary]` などを実行してください。",
                detail=str(exc),
            ) from exc
        self._write_lock = threading.Lock()
        self._masker = masker
        self._schema_ready = False
        try:
            self._ensure_schema()
        except SQLAlchemyError:
            # A database that is down at start-up must not stop the API; record() retries.
            log.exception("audit database %s is not reachable yet", make_url(url).render_as_string(hide_password=True))

    # --- writing ---------------------------------------------------------------

    def _ensure_schema(self) -> None:
        if not self._schema_ready:
            metadata.create_all(self._engine, checkfirst=True)
            self._schema_ready = True

    def _write(self, stmt) -> int:
        """Run one write statement in its own short transaction; retries a locked database."""
        delays = (0.05, 0.2, 0.5)
        for attempt in range(len(delays) + 1):
            try:
                with self._write_lock:
                    self._ensure_schema()
                    with self._engine.begin() as conn:
                        return conn.execute(stmt).rowcount
            except OperationalError:
                # SQLite says "database is locked" when another *process* holds the writer slot.
                if attempt == len(delays):
                    raise
                time.sleep(delays[attempt])
        return 0  # pragma: no cover - the loop returns or raises

    def record(self, **fields: Any) -> str:
        """Store one request and return its ``answer_id``.

        Args:
            **fields: any of the columns (``key_id``, ``endpoint``, ``question_masked``,
                ``mode``, ``retrieved_ids``, ``answer``, ``citations``, ``abstained``,
                ``model``, ``index_version``, ``latency_ms``, ``status``, ``error_code``,
                ``groups``); ``answer_id`` (or ``id``) to reuse an id already sent to
                the caller; ``created_at`` to backdate (tests, imports). JSON columns
                take Python values (lists, dicts, pydantic models). Unknown fields are
                logged and dropped.

        Returns:
            The answer id (new uuid4 hex unless given). Returned even when the row
            could not be written: the failure is logged, never raised.
        """
        answer_id = str(fields.pop("answer_id", None) or fields.pop("id", None) or uuid.uuid4().hex)
        try:
            row = self._row(answer_id, fields)
            self._write(insert(audit_table).values(**row))
        except Exception:  # noqa: BLE001 - auditing must never fail a request
            log.exception("audit row %s could not be written", answer_id)
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

    def add_feedback(self, answer_id: str, rating: int, comment: str | None = None) -> bool:
        """Attach a rating and a (masked) comment to an earlier answer.

        Returns:
            True if the answer exists and was updated; False if it does not exist
            or the database could not be written (logged).
        """
        try:
            masked = self._mask(comment) if comment else comment
            stmt = (
                update(audit_table)
                .where(audit_table.c.id == answer_id)
                .values(feedback_rating=int(rating), feedback_comment=masked, feedback_at=_utc_iso())
            )
            return self._write(stmt) > 0
        except Exception:  # noqa: BLE001 - feedback is best effort, like record()
            log.exception("feedback for %s could not be written", answer_id)
            return False

    def _mask(self, text: str) -> str:
        if self._masker is None:
            # Imported late: the guard loads MeCab, which an export-only process never needs.
            from service.guard import InputGuard

            self._masker = InputGuard.default().mask_for_log
        return self._masker(text)

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
            # Coarse filter in SQL on the JSON text (portable LIKE); exact overlap in Python.
            cond.append(or_(*(t.groups.contains(json.dumps(g, ensure_ascii=False), autoescape=True) for g in groups)) if groups else t.id.is_(None))
        return cond

    def _iter_rows(self, *, since=None, until=None, key_id=None, groups: list[str] | None = None) -> Iterator[dict[str, Any]]:
        """Rows in (created_at, id) order, read page by page so no read holds the database long."""
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
                if wanted is not None and not (set(row["groups"] or []) & wanted):
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
            groups: only rows whose caller groups overlap these; ``None`` (admins) = all rows.

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

    def close(self) -> None:
        """Release pooled connections (the SQLite file stays)."""
        self._engine.dispose()


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
