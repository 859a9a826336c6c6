"""Loaders: one source file in, one llama-index ``Document`` out.

Every format is turned into the same light markdown the structure parser reads:
``#`` headings, ``- `` list items, ``|``-separated table rows and blank-line
paragraphs. Plain ``.md``/``.txt`` pass through unchanged, so line numbers in
provenance point at the real file.
"""

from __future__ import annotations

import io
from pathlib import Path

from llama_index.core.schema import Document

from guideqa.errors import DocumentLoadError
from ingest.models import DocumentMeta

__all__ = ["SUPPORTED_SUFFIXES", "read_text", "load_document"]

SUPPORTED_SUFFIXES = (".md", ".txt", ".pdf", ".docx", ".html", ".htm")
MAX_FILE_BYTES = 50 * 1024 * 1024


def _decode_text(raw: bytes, name: str) -> str:
    if b"\x00" in raw[:8192]:
        raise DocumentLoadError(f"{name}: バイナリファイルのため読み込めません。")
    for enc in ("utf-8-sig", "cp932"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise DocumentLoadError(f"{name}: 文字コードを判別できません（UTF-8 または Shift_JIS が必要です）。")


def _pdf_to_text(raw: bytes, name: str) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            raise DocumentLoadError(f"{name}: 暗号化された PDF は読み込めません。")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except DocumentLoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise DocumentLoadError(f"{name}: PDF を解析できません。", detail=str(exc)) from exc
    # A blank line between pages keeps a page's last line from running into the next page's first.
    return "\n\n".join(p for p in pages if p)


def _table_rows(rows: list[list[str]]) -> list[str]:
    out: list[str] = []
    for i, cells in enumerate(rows):
        cells = [c.replace("\n", "<br>").replace("|", "｜").strip() for c in cells]
        out.append("| " + " | ".join(cells) + " |")
        if i == 0:
            out.append("|" + "---|" * len(cells))
    return out


def _docx_to_text(raw: bytes, name: str) -> str:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(raw))
    except (PackageNotFoundError, zipfile.BadZipFile, ValueError, KeyError) as exc:
        raise DocumentLoadError(f"{name}: DOCX を解析できません。", detail=str(exc)) from exc
    blocks: list[str] = []
    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            para = Paragraph(child, document)
            text = para.text.strip()
            if not text:
                continue
            style = (para.style.name if para.style is not None else "") or ""
            if style.startswith("Heading") and style[-1:].isdigit():
                blocks.append("#" * int(style[-1]) + " " + text)
            elif style == "Title":
                blocks.append("# " + text)
            elif "List" in style:
                blocks.append("- " + text)
            else:
                blocks.append(text)
        elif tag == "tbl":
            table = Table(child, document)
            rows = [[cell.text for cell in row.cells] for row in table.rows]
            if rows:
                blocks.append("\n".join(_table_rows(rows)))
    return "\n\n".join(blocks)


def _html_to_text(raw: bytes, name: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(raw, "html.parser")
    for tag in soup(["script", "style", "nav", "footer", "header", "noscript", "template"]):
        tag.decompose()
    body = soup.body or soup
    blocks: list[str] = []
    for el in body.find_all(["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "table", "dt", "dd", "pre"]):
        if el.find_parent("table") is not None and el.name != "table":
            continue
        if el.name == "table":
            rows = [
                [c.get_text(" ", strip=True) for c in tr.find_all(["th", "td"])] for tr in el.find_all("tr")
            ]
            rows = [r for r in rows if any(r)]
            if rows:
                blocks.append("\n".join(_table_rows(rows)))
            continue
        if el.name == "li" and el.find_parent("li") is not None:
            prefix = "  - "
        else:
            prefix = {"li": "- ", "dt": "", "dd": ""}.get(el.name, "")
        if el.name in ("p", "li", "dd") and el.find(["p", "li", "table"]) is not None:
            continue  # its children are visited themselves
        text = el.get_text(" ", strip=True)
        if not text:
            continue
        if el.name[0] == "h" and el.name[1:].isdigit():
            blocks.append("#" * int(el.name[1:]) + " " + text)
        else:
            blocks.append(prefix + text)
    return "\n\n".join(blocks)


def read_text(path: Path) -> str:
    """Extract the text of one file as light markdown.

    Raises:
        DocumentLoadError: unsupported suffix, unreadable, binary, or no text at all.
    """
    name = path.name
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentLoadError(f"{name}: 対応していない形式です（対応形式: {', '.join(SUPPORTED_SUFFIXES)}）。")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DocumentLoadError(f"{name}: ファイルが大きすぎます（{size} バイト）。")
        raw = path.read_bytes()
    except OSError as exc:
        raise DocumentLoadError(f"{name}: ファイルを読み込めません。", detail=str(exc)) from exc
    if not raw.strip():
        raise DocumentLoadError(f"{name}: 空のファイルです。")
    if suffix == ".pdf":
        text = _pdf_to_text(raw, name)
    elif suffix == ".docx":
        text = _docx_to_text(raw, name)
    elif suffix in (".html", ".htm"):
        text = _html_to_text(_decode_text(raw, name).encode("utf-8"), name)
    else:
        text = _decode_text(raw, name)
    if not text.strip():
        raise DocumentLoadError(f"{name}: 本文を取り出せませんでした（画像のみの PDF などは OCR が必要です）。")
    return text


def load_document(path: Path, meta: DocumentMeta) -> Document:
    """Read one file into a llama-index Document whose metadata is the manifest entry."""
    text = read_text(path)
    return Document(
        id_=meta.doc_id,
        text=text,
        metadata={**meta.model_dump(), "doc_id": meta.doc_id},
        excluded_embed_metadata_keys=list(meta.model_dump().keys()) + ["doc_id"],
        excluded_llm_metadata_keys=list(meta.model_dump().keys()) + ["doc_id"],
    )
