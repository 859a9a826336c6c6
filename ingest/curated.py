"""Curated answers (「登録済みの回答」): the office's own Q&A, read from a reviewable YAML file.

An administrator registers a question, its answer and the passages of the documents
the answer rests on. The file (``corpus/curated/curated.yaml`` by default,
:data:`CURATED_FILE`) is a YAML list; each item::

    - id: cur-001                      # letters, digits, ``-``, ``_``, ``.``; unique
      question: 生成AIに住民の個人情報を入力してもよいですか？
      answer: "…（2〜4文。引用した箇所が述べることだけ）"
      citations:                       # at least one
        - doc_id: mic_local-gov-ai-wg_reference-materials_2025-07
          quote: "…文書の一節（空白・全角半角の違いは問わない）…"
      author: 情報政策課
      date: "2026-11-30"
      group: public                    # the access label of who may be shown it
      status: published                # or draft: kept in the file, never indexed nor shown

Ingest turns each published item into one unit of kind ``curated``
(:func:`load_curated`): its text is the question, and each citation is resolved to a
corpus unit of that document whose text holds the quote (NFKC- and
whitespace-insensitively, as :func:`ingest.cleaning.squash` compares). An item that
does not resolve — a quote no longer in its document, a document gone, a cited unit
the item's group may not see — is left out with a warning naming it; it never stops
the ingest. Only a file that is not a YAML list of mappings does (:class:`IngestError`).

    >>> verbatim_span("生成AIを　導入している団体", "生成ＡＩを導入")
    '生成AIを\u3000導入'
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from guideqa.errors import IngestError
from ingest.cleaning import nfkc, squash
from ingest.models import CURATED_KIND, CuratedCitation, CuratedRecord, Unit

__all__ = [
    "CURATED_FILE",
    "CURATED_DOC_ID",
    "CURATED_TITLE",
    "ITEM_ID_PATTERN",
    "GROUP_PATTERN",
    "DATE_PATTERN",
    "CuratedQuote",
    "CuratedItem",
    "CuratedEntry",
    "CuratedLoad",
    "curated_unit_id",
    "verbatim_span",
    "resolve_item",
    "curated_unit",
    "read_curated",
    "render_curated",
    "write_curated",
    "restore_curated",
    "load_curated",
]

log = logging.getLogger(__name__)

#: Where the registry lives, relative to the corpus directory.
CURATED_FILE = Path("curated") / "curated.yaml"
#: The pseudo document every curated unit belongs to (never a manifest entry: its file is YAML).
CURATED_DOC_ID = "curated"
CURATED_TITLE = "登録済みの回答"
_PUBLIC = "public"
ITEM_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
GROUP_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"  # an access label, as the manifest spells them
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
_HEADER = (
    "# 登録済みの回答（curated answers）。質問によく一致した場合に「登録済みの回答」として最初に表示します。\n"
    "# 各項目: id, question, answer, citations[{doc_id, quote}], author, date, group, status(published|draft)\n"
)


class CuratedQuote(BaseModel):
    """One citation as registered: a document and a passage of it."""

    model_config = ConfigDict(extra="forbid")

    doc_id: str = Field(min_length=1, max_length=200)
    quote: str = Field(min_length=1, max_length=2000)


class CuratedItem(BaseModel):
    """One registered Q&A as written in the file (and as the admin API takes it)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ITEM_ID_PATTERN)
    question: str = Field(min_length=1, max_length=500)
    answer: str = Field(min_length=1, max_length=4000)
    citations: list[CuratedQuote] = Field(min_length=1, max_length=10, description="The answer must cite at least one passage.")
    author: str = Field("", max_length=100)
    date: str = Field(pattern=DATE_PATTERN)
    group: str = Field("public", pattern=GROUP_PATTERN)
    status: Literal["published", "draft"] = "published"

    @field_validator("date", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        # An unquoted 2026-11-30 in YAML arrives as a date.
        return value.isoformat() if isinstance(value, _dt.date) else value

    @field_validator("date")
    @classmethod
    def _real_date(cls, value: str) -> str:
        _dt.date.fromisoformat(value)
        return value

    @field_validator("question", "answer", "author")
    @classmethod
    def _stripped(cls, value: str) -> str:
        return value.strip()

    @field_validator("question", "answer")
    @classmethod
    def _has_text(cls, value: str) -> str:
        if not value:
            raise ValueError("empty")
        return value


@dataclass(frozen=True)
class CuratedEntry:
    """An item read from the file, with the lines it spans there (1-based, inclusive)."""

    item: CuratedItem
    line_start: int
    line_end: int


@dataclass
class CuratedLoad:
    """What ingest made of the registry: units for the published items that resolved, and why others did not.

    ``skipped`` holds ``(item id or position, reason)``; drafts are counted, not skipped.
    """

    units: list[Unit] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    drafts: int = 0


def curated_unit_id(item_id: str) -> str:
    """The unit ID of a curated item (URL-safe, apart from every corpus unit's ``<doc>-<hash>``)."""
    return f"{CURATED_KIND}-{item_id}"


def verbatim_span(text: str, quote: str) -> str | None:
    """The exact span of ``text`` that ``quote`` matches after NFKC and whitespace removal, or ``None``.

    A quote that matches only when the whole text is normalised at once (a combining
    mark split from its letter) gets the whole text: still verbatim, never invented.
    """
    target = squash(quote)
    if not target:
        return None
    flat: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        for c in nfkc(ch):
            if not c.isspace():
                flat.append(c)
                where.append(i)
    at = "".join(flat).find(target)
    if at < 0:
        return text if target in squash(text) else None
    return text[where[at] : where[at + len(target) - 1] + 1]


def resolve_item(item: CuratedItem, units_by_doc: dict[str, Sequence[Unit]]) -> tuple[list[CuratedCitation], list[str]]:
    """Resolve each citation of ``item`` to the corpus unit that holds its quote.

    The shortest unit of the document whose text holds the quote is taken (the most
    specific place). A unit whose access label is neither ``public`` nor the item's
    group cannot be cited: everyone shown the answer must be able to open its sources.

    Returns:
        The resolved citations, and one Japanese problem per citation that did not
        resolve (the item may only be indexed when there is none).
    """
    cited: list[CuratedCitation] = []
    problems: list[str] = []
    for n, cite in enumerate(item.citations, start=1):
        units = units_by_doc.get(cite.doc_id)
        if not units:
            problems.append(f"引用{n}: 文書 {cite.doc_id} がありません")
            continue
        found = sorted(((u, span) for u in units if (span := verbatim_span(u.text, cite.quote))), key=lambda us: len(us[0].text))
        if not found:
            problems.append(f"引用{n}: 「{_short(cite.quote)}」が文書 {cite.doc_id} に見つかりません")
            continue
        visible = [(u, span) for u, span in found if u.access in (_PUBLIC, item.group)]
        if not visible:
            problems.append(f"引用{n}: 引用先の区分（{found[0][0].access}）は group {item.group} の利用者には見えません")
            continue
        unit, span = visible[0]
        cited.append(CuratedCitation(unit_id=unit.id, doc_id=unit.doc_id, quote=span))
    return cited, problems


def curated_unit(entry: CuratedEntry, citations: list[CuratedCitation], *, source_file: str) -> Unit:
    """The index unit of a published, resolved item: the question as its text, the answer in ``curated``."""
    item = entry.item
    record = CuratedRecord(item_id=item.id, answer=item.answer, citations=citations, author=item.author, date=item.date)
    digest = hashlib.sha256(f"{item.model_dump_json()}\x1f{record.model_dump_json()}".encode()).hexdigest()[:16]
    return Unit(
        id=curated_unit_id(item.id),
        doc_id=CURATED_DOC_ID,
        doc_title=CURATED_TITLE,
        access=item.group,
        section_path=[CURATED_TITLE],
        kind=CURATED_KIND,
        text=item.question,
        norm_text=nfkc(item.question),
        source_file=source_file,
        line_start=entry.line_start,
        line_end=entry.line_end,
        content_hash=digest,
        curated=record,
    )


def read_curated(path: Path) -> tuple[list[CuratedEntry], list[tuple[str, str]]]:
    """Every item of the file that is well formed, and ``(id or position, reason)`` for the others.

    A missing or empty file is an empty registry. A second item with an ID already
    seen is reported and left out.

    Raises:
        IngestError: the file cannot be read, is not YAML, or is not a list of mappings.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], []
    except (OSError, UnicodeDecodeError) as exc:
        raise IngestError(f"登録済みの回答のファイル {path} を読み込めません: {exc}") from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise IngestError(f"登録済みの回答のファイル {path} は YAML として読めません: {exc}") from exc
    if data is None:
        return [], []
    if not isinstance(data, list) or not isinstance(root, yaml.SequenceNode):
        raise IngestError(f"登録済みの回答のファイル {path} は項目のリスト（- id: …）でなければなりません。")
    entries: list[CuratedEntry] = []
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for pos, (raw, node) in enumerate(zip(data, root.value), start=1):
        name = str(raw.get("id")) if isinstance(raw, dict) and raw.get("id") else f"{pos} 番目の項目"
        if not isinstance(raw, dict):
            problems.append((name, "項目が key: value の形ではありません"))
            continue
        try:
            item = CuratedItem.model_validate(raw)
        except ValidationError as exc:
            problems.append((name, _describe(exc)))
            continue
        if item.id in seen:
            problems.append((name, "同じ id の項目が先にあります"))
            continue
        seen.add(item.id)
        # Marks are 0-based; a block item ends where the next begins.
        entries.append(CuratedEntry(item, node.start_mark.line + 1, max(node.start_mark.line + 1, node.end_mark.line)))
    return entries, problems


def write_curated(path: Path, items: Iterable[CuratedItem]) -> str | None:
    """Write the registry atomically and return what the file held before (``None``: no file).

    The comment lines at the top of the existing file are kept (the header that explains
    the format). The text goes to a temporary file in the same folder and is renamed over
    the old one, so a reader sees the old registry or the new one, never half of one; pass
    the returned text to :func:`restore_curated` to undo.

    Raises:
        OSError: the folder cannot be written.
    """
    try:
        previous: str | None = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        previous = None
    _write_atomic(path, render_curated(items, header=_header_of(previous)))
    return previous


def render_curated(items: Iterable[CuratedItem], *, header: str = _HEADER) -> str:
    """The registry file's text: ``header`` (comment lines), then the items, a blank line between them."""
    rows = [item.model_dump(mode="json") for item in items]
    body = yaml.safe_dump(rows, allow_unicode=True, sort_keys=False, default_flow_style=False, width=10_000) if rows else "[]\n"
    # width=10_000: no scalar is folded onto a line of its own that could start with "- id:".
    return header + body.replace("\n- id:", "\n\n- id:")


def restore_curated(path: Path, previous: str | None) -> None:
    """Put back what :func:`write_curated` returned (remove the file if there was none).

    Raises:
        OSError: the folder cannot be written.
    """
    if previous is None:
        path.unlink(missing_ok=True)
    else:
        _write_atomic(path, previous)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_curated(path: Path, corpus_units: Sequence[Unit], *, source_file: str | None = None) -> CuratedLoad:
    """The ``curated`` units of the registry at ``path``, resolved against ``corpus_units``.

    Each item left out is logged as a warning naming it (``guideqa ingest`` shows it).

    Args:
        path: the YAML registry (missing: no curated units).
        corpus_units: the corpus's units (curated ones are ignored).
        source_file: what the units name as their file (default: the file's name).

    Raises:
        IngestError: the file is not a YAML list of mappings.
    """
    entries, problems = read_curated(path)
    load = CuratedLoad(skipped=list(problems))
    by_doc: dict[str, list[Unit]] = defaultdict(list)
    for unit in corpus_units:
        if unit.kind != CURATED_KIND:
            by_doc[unit.doc_id].append(unit)
    for entry in entries:
        if entry.item.status == "draft":
            load.drafts += 1
            continue
        citations, unresolved = resolve_item(entry.item, by_doc)
        if unresolved:
            load.skipped.append((entry.item.id, "; ".join(unresolved)))
            continue
        load.units.append(curated_unit(entry, citations, source_file=source_file or path.name))
    for name, reason in load.skipped:
        log.warning("登録済みの回答 %s を索引に入れませんでした（%s）: %s", name, path, reason)
    return load


def _header_of(text: str | None) -> str:
    """The comment lines that open ``text`` (the format explained), or the default header."""
    head = []
    for line in (text or "").splitlines(keepends=True):
        if not line.startswith("#"):
            break
        head.append(line if line.endswith("\n") else line + "\n")
    return "".join(head) or _HEADER


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        if err.get("type") == "missing":
            parts.append(f"{loc} がありません")
        elif loc == "citations" and err.get("type") == "too_short":
            parts.append("citations がありません（回答は少なくとも一つの箇所を引用してください）")
        else:
            parts.append(f"{loc} の値が正しくありません")
    return "、".join(parts)


def _short(text: str, n: int = 30) -> str:
    return text if len(text) <= n else text[:n] + "…"
