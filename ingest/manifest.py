"""Read ``manifest.json``: one entry per document with title, issuer, date and access label."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from guideqa.errors import ManifestError
from ingest.models import DocumentMeta

__all__ = ["load_manifest"]


def load_manifest(path: Path) -> list[DocumentMeta]:
    """Parse a manifest file.

    Args:
        path: a JSON file holding a list of objects with at least ``file`` and ``title``.

    Returns:
        One :class:`DocumentMeta` per entry, in file order.

    Raises:
        ManifestError: missing file, invalid JSON, wrong shape, bad entries or duplicates.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"manifest.json を読み込めません: {path}", detail=str(exc)) from exc
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"manifest.json が正しい JSON ではありません: {exc}", detail=str(exc)) from exc
    if isinstance(data, dict) and isinstance(data.get("documents"), list):
        data = data["documents"]
    if not isinstance(data, list) or not data:
        raise ManifestError("manifest.json は文書の一覧（空でない JSON 配列）である必要があります。")
    metas: list[DocumentMeta] = []
    seen: set[str] = set()
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise ManifestError(f"manifest.json の {i + 1} 番目の項目がオブジェクトではありません。")
        try:
            meta = DocumentMeta.model_validate(entry)
        except ValidationError as exc:
            fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
            raise ManifestError(
                f"manifest.json の {i + 1} 番目の項目に誤りがあります（{fields}）。", detail=str(exc)
            ) from exc
        if meta.file in seen:
            raise ManifestError(f"manifest.json に同じファイルが重複しています: {meta.file}")
        seen.add(meta.file)
        metas.append(meta)
    return metas
