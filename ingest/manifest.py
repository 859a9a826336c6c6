"""Read and edit ``manifest.json``: one entry per document with title, issuer, authority and access label.

Reading validates every entry and names the bad one (「manifest.json の 3 番目の項目（file: x.md）…」).
Editing (``guideqa ingest --add/--remove``) rewrites the file atomically and leaves
every other entry's bytes as they were: an entry is appended after the last one, or
cut out with its separating comma, never re-serialised.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from guideqa.errors import DocumentLoadError, ManifestError
from ingest.models import AUTHORITIES, ISSUER_KINDS, DocumentMeta

__all__ = ["LOCAL_DIR", "ManifestChange", "add_document", "load_manifest", "parse_manifest", "remove_document"]

# Documents added with ``--add`` live here, apart from the bundled ones: ``--remove``
# deletes files only from this folder, never a bundled document.
LOCAL_DIR = "local"
_WS = re.compile(r"\s*")


def load_manifest(path: Path) -> list[DocumentMeta]:
    """Parse a manifest file.

    Args:
        path: a JSON file holding a list of objects with at least ``file`` and ``title``
            (or an object whose ``documents`` is such a list).

    Returns:
        One :class:`DocumentMeta` per entry, in file order.

    Raises:
        ManifestError: missing file, invalid JSON, wrong shape, bad entries, duplicates,
            or a ``supersedes`` naming no listed document.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"manifest.json を読み込めません: {path}", detail=str(exc)) from exc
    return parse_manifest(raw)


def parse_manifest(raw: bytes) -> list[DocumentMeta]:
    """Validate manifest bytes (see :func:`load_manifest`)."""
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"manifest.json が正しい JSON ではありません: {exc}", detail=str(exc)) from exc
    if isinstance(data, dict) and isinstance(data.get("documents"), list):
        data = data["documents"]
    if not isinstance(data, list) or not data:
        raise ManifestError("manifest.json は文書の一覧（空でない JSON 配列）である必要があります。")
    metas: list[DocumentMeta] = []
    files: set[str] = set()
    doc_ids: dict[str, str] = {}
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise ManifestError(f"manifest.json の {i + 1} 番目の項目がオブジェクトではありません。")
        where = _entry_name(i, entry)
        try:
            meta = DocumentMeta.model_validate(entry)
        except ValidationError as exc:
            raise ManifestError(f"{where}に誤りがあります: {_problems(exc)}。", detail=str(exc)) from exc
        if meta.file in files:
            raise ManifestError(f"manifest.json に同じファイルが重複しています: {meta.file}")
        if meta.doc_id in doc_ids:
            raise ManifestError(f"{where}の文書 ID「{meta.doc_id}」が {doc_ids[meta.doc_id]} と重複しています（拡張子だけが違うファイルは置けません）。")
        files.add(meta.file)
        doc_ids[meta.doc_id] = meta.file
        metas.append(meta)
    for i, meta in enumerate(metas):
        if meta.supersedes and (meta.supersedes not in doc_ids or meta.supersedes == meta.doc_id):
            raise ManifestError(
                f"{_entry_name(i, {'file': meta.file})}の supersedes「{meta.supersedes}」は manifest.json にある他の文書の ID ではありません。"
            )
    return metas


def _entry_name(index: int, entry: dict[str, Any]) -> str:
    file = entry.get("file")
    return f"manifest.json の {index + 1} 番目の項目（file: {file}）" if isinstance(file, str) and file else f"manifest.json の {index + 1} 番目の項目"


def _problems(exc: ValidationError) -> str:
    """One Japanese phrase per invalid field, naming the allowed values where there is a list."""
    allowed = {"authority": AUTHORITIES, "issuer_kind": ISSUER_KINDS}
    out: list[str] = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]) or "(項目)"
        if name in allowed:
            out.append(f"{name} は {' / '.join(allowed[name])} のいずれかです（指定値: {err.get('input')}）")
        elif err["type"] == "missing":
            out.append(f"{name} がありません")
        elif name == "file":
            out.append("file は corpus ディレクトリの中の相対パスで指定してください")
        elif name == "access":
            out.append("access は英数字と _ . : - だけのラベルです")
        else:
            out.append(f"{name} の値が正しくありません")
    return "、".join(out)


# ----------------------------------------------------------------------------- editing
@dataclass
class ManifestChange:
    """One applied edit of the corpus, undoable until the index is rebuilt.

    ``rollback`` restores the manifest bytes and removes a copied-in file;
    ``commit`` deletes the file a removal left behind (only once the rebuild succeeded).
    """

    meta: DocumentMeta
    manifest_path: Path
    previous: bytes
    copied: Path | None = None
    obsolete: Path | None = None

    def rollback(self) -> None:
        _write_atomic(self.manifest_path, self.previous)
        if self.copied is not None:
            self.copied.unlink(missing_ok=True)

    def commit(self) -> None:
        if self.obsolete is not None:
            self.obsolete.unlink(missing_ok=True)


def add_document(corpus_dir: Path, source: Path, entry: dict[str, str], *, manifest_path: Path | None = None) -> ManifestChange:
    """Copy ``source`` into ``<corpus>/local/`` and append its manifest entry.

    Args:
        corpus_dir: the corpus directory.
        source: the document to add (any supported format).
        entry: manifest fields other than ``file`` (``title``, ``issuer``, ``authority`` …);
            empty values are left out so the defaults apply.
        manifest_path: default ``<corpus>/manifest.json``.

    Returns:
        The applied change (its ``meta`` is the new entry).

    Raises:
        DocumentLoadError: the file is missing or of an unsupported format.
        ManifestError: invalid fields, or the document (or the same bytes) is already in the corpus.
    """
    from ingest.loaders import SUPPORTED_SUFFIXES

    manifest_path = manifest_path or corpus_dir / "manifest.json"
    if not source.is_file():
        raise DocumentLoadError(f"追加するファイルが見つかりません: {source}")
    if source.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise DocumentLoadError(f"{source.name}: 対応していない形式です（対応形式: {', '.join(SUPPORTED_SUFFIXES)}）。")
    rel = f"{LOCAL_DIR}/{source.name}"
    fields = {"file": rel, **{k: v for k, v in entry.items() if v}}
    try:
        meta = DocumentMeta.model_validate(fields)
    except ValidationError as exc:
        raise ManifestError(f"追加する文書の指定に誤りがあります: {_problems(exc)}。", detail=str(exc)) from exc
    previous = manifest_path.read_bytes() if manifest_path.is_file() else b""
    existing = load_manifest(manifest_path)
    for other in existing:
        if other.file == meta.file or other.doc_id == meta.doc_id:
            raise ManifestError(f"既に登録されています: {other.file}（文書 ID: {other.doc_id}）。置き換えるには先に --remove {other.doc_id} を実行してください。")
    digest = _sha256(source)
    for other in existing:
        path = corpus_dir / other.file
        if path.is_file() and path.stat().st_size == source.stat().st_size and _sha256(path) == digest:
            raise ManifestError(f"同じ内容の文書が既に登録されています: {other.file}（文書 ID: {other.doc_id}）。")
    target = corpus_dir / rel
    in_place = target.exists() and target.resolve() == source.resolve()  # already put in local/ by hand
    if target.exists() and not in_place:
        raise ManifestError(f"既に同じ名前のファイルがあります: {target}（manifest.json には載っていません）。")
    updated = _append_entry(previous, meta.model_dump(include=set(fields)))
    parse_manifest(updated)
    if not in_place:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    copied = None if in_place else target
    try:
        _write_atomic(manifest_path, updated)
    except OSError as exc:
        if copied is not None:
            copied.unlink(missing_ok=True)
        raise ManifestError(f"manifest.json を書き込めません: {manifest_path}", detail=str(exc)) from exc
    return ManifestChange(meta=meta, manifest_path=manifest_path, previous=previous, copied=copied)


def remove_document(corpus_dir: Path, doc_id: str, *, manifest_path: Path | None = None) -> ManifestChange:
    """Remove the entry of ``doc_id`` from the manifest.

    The file itself is deleted by :meth:`ManifestChange.commit`, and only when it lies
    under ``<corpus>/local/``: a bundled document keeps its file.

    Raises:
        ManifestError: no entry has this doc ID, it is the last entry, or another
            entry's ``supersedes`` names it.
    """
    manifest_path = manifest_path or corpus_dir / "manifest.json"
    previous = manifest_path.read_bytes() if manifest_path.is_file() else b""
    metas = load_manifest(manifest_path)
    index = next((i for i, m in enumerate(metas) if m.doc_id == doc_id), None)
    if index is None:
        known = "、".join(m.doc_id for m in metas[:8]) + ("…" if len(metas) > 8 else "")
        raise ManifestError(f"文書 ID「{doc_id}」は manifest.json にありません（登録済み: {known}）。")
    if len(metas) == 1:
        raise ManifestError(f"「{doc_id}」は最後の文書のため削除できません（manifest.json は空にできません）。")
    successors = [m.doc_id for m in metas if m.supersedes == doc_id]
    if successors:
        raise ManifestError(f"「{doc_id}」は {'、'.join(successors)} の supersedes から参照されているため削除できません。")
    updated = _cut_entry(previous, index)
    parse_manifest(updated)
    try:
        _write_atomic(manifest_path, updated)
    except OSError as exc:
        raise ManifestError(f"manifest.json を書き込めません: {manifest_path}", detail=str(exc)) from exc
    meta = metas[index]
    local = (corpus_dir / LOCAL_DIR).resolve()
    path = (corpus_dir / meta.file).resolve()
    obsolete = path if path.is_relative_to(local) else None
    return ManifestChange(meta=meta, manifest_path=manifest_path, previous=previous, obsolete=obsolete)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` in one rename, so a reader sees the old or the new manifest, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _split(raw: bytes) -> tuple[str, str]:
    """(BOM, text): the byte-order mark is put back as it was."""
    text = raw.decode("utf-8-sig")
    return ("\ufeff" if raw.startswith(b"\xef\xbb\xbf") else ""), text


def _entry_spans(text: str) -> tuple[int, list[tuple[int, int]], int]:
    """Where the document list stands in the manifest text.

    Returns:
        The index just after its ``[``, the (start, end) of each entry, and the index of its ``]``.
    """
    decoder = json.JSONDecoder()

    def skip(i: int) -> int:
        return _WS.match(text, i).end()  # type: ignore[union-attr]

    i = skip(0)
    if text.startswith("{", i):
        i = skip(i + 1)
        while not text.startswith("[", i):
            key, i = decoder.raw_decode(text, i)
            i = skip(skip(i) + 1)  # the colon
            if key == "documents" and text.startswith("[", i):
                break
            _, i = decoder.raw_decode(text, i)
            i = skip(i)
            if text.startswith(",", i):
                i = skip(i + 1)
    start = i + 1
    spans: list[tuple[int, int]] = []
    j = skip(start)
    while not text.startswith("]", j):
        _, end = decoder.raw_decode(text, j)
        spans.append((j, end))
        j = skip(end)
        if text.startswith(",", j):
            j = skip(j + 1)
    return start, spans, j


def _append_entry(raw: bytes, entry: dict[str, Any]) -> bytes:
    bom, text = _split(raw)
    start, spans, end = _entry_spans(text)
    body = json.dumps(entry, ensure_ascii=False)
    if spans:
        last_start, last_end = spans[-1]
        line_start = text.rfind("\n", 0, last_start) + 1
        indent = text[line_start:last_start] if not text[line_start:last_start].strip() else "  "
        text = f"{text[:last_end]},\n{indent}{body}{text[last_end:]}"
    else:
        text = f"{text[:start]}\n  {body}\n{text[end:]}"
    return (bom + text).encode("utf-8")


def _cut_entry(raw: bytes, index: int) -> bytes:
    bom, text = _split(raw)
    _, spans, _ = _entry_spans(text)
    if index > 0:
        cut = (spans[index - 1][1], spans[index][1])  # the comma before it, and the entry
    else:
        cut = (spans[0][0], spans[1][0])  # the entry, and the comma and space after it
    return (bom + text[: cut[0]] + text[cut[1] :]).encode("utf-8")
