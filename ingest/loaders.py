"""Loaders: one source file in, one llama-index ``Document`` out.

Every format is turned into the same light markdown the structure parser reads:
``#`` headings, ``- `` list items, ``|``-separated table rows and blank-line
paragraphs. Plain ``.md``/``.txt`` pass through unchanged, so line numbers in
provenance point at the real file.
"""

from __future__ import annotations

import io
import re
from collections import Counter
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
        pages = [(page.extract_text() or "").splitlines() for page in reader.pages]
    except DocumentLoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise DocumentLoadError(f"{name}: PDF を解析できません。", detail=str(exc)) from exc
    pages = _without_page_furniture(pages)
    # A blank line between pages keeps a page's last line from running into the next page's first.
    return "\n\n".join(text for text in ("\n".join(lines).strip() for lines in pages) if text)


_PDF_PAGE_NUMBER = re.compile(
    r"^(?:[-‐－―—–ー~〜]?\s*\d{1,4}\s*[-‐－―—–ー~〜]?|\d{1,4}\s*/\s*\d{1,4}|(?:p\.?|page)\s*\d{1,4}|第?\s*\d{1,4}\s*頁)$", re.I
)
_PDF_EDGE_LINES = 2


def _without_page_furniture(pages: list[list[str]]) -> list[list[str]]:
    """Drop page numbers (「- 3 -」「3/10」) and running headers and footers from each page.

    Only the first and last :data:`_PDF_EDGE_LINES` lines of a page are candidates. A
    header or footer is a line that recurs (numbers ignored) at the edge of at least half
    of the pages.
    """
    from ingest.cleaning import nfkc

    def key(line: str) -> str:
        return re.sub(r"\d+", "#", nfkc(line)).strip()

    def edges(lines: list[str]) -> set[int]:
        filled = [i for i, line in enumerate(lines) if line.strip()]
        return set(filled[:_PDF_EDGE_LINES] + filled[-_PDF_EDGE_LINES:])

    counts: Counter = Counter()
    for lines in pages:
        counts.update({key(lines[i]) for i in edges(lines)})
    running = {k for k, c in counts.items() if len(pages) >= 2 and c >= max(2, (len(pages) + 1) // 2)}
    out: list[list[str]] = []
    for lines in pages:
        drop = {i for i in edges(lines) if _PDF_PAGE_NUMBER.match(nfkc(lines[i]).strip()) or key(lines[i]) in running}
        out.append([line for i, line in enumerate(lines) if i not in drop])
    return out


def _table_rows(rows: list[list[str]]) -> list[str]:
    out: list[str] = []
    for i, cells in enumerate(rows):
        cells = [c.replace("\n", "<br>").replace("|", "｜").strip() for c in cells]
        out.append("| " + " | ".join(cells) + " |")
        if i == 0:
            out.append("|" + "---|" * len(cells))
    return out


_IROHA = "イロハニホヘトチリヌルヲワカヨタレソツネナラムウヰノオクヤマケフコエテアサキユメミシヱヒモセス"
_AIUEO = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲン"
_KANJI_DIGITS = "〇一二三四五六七八九"


def _kanji_counting(n: int) -> str:
    """12 → 十二, 105 → 百五 (Word's japaneseCounting)."""
    if n <= 0:
        return str(n)
    out = ""
    for value, unit in ((1000, "千"), (100, "百"), (10, "十")):
        q, n = divmod(n, value)
        if q:
            out += ("" if q == 1 else _KANJI_DIGITS[q]) + unit
    return out + (_KANJI_DIGITS[n] if n else "")


def _roman(n: int) -> str:
    out = ""
    for value, numeral in ((1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"), (50, "l"), (40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i")):
        while n >= value:
            out, n = out + numeral, n - value
    return out


def _format_number(n: int, fmt: str) -> str:
    """A list counter in one of Word's ``w:numFmt`` formats (unknown formats as decimal)."""
    if fmt in ("decimalFullWidth", "decimalFullWidth2"):
        return str(n).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    if fmt in ("japaneseCounting", "japaneseLegal", "chineseCounting", "chineseCountingThousand"):
        return _kanji_counting(n)
    if fmt in ("ideographDigital", "japaneseDigitalTenThousand"):
        return "".join(_KANJI_DIGITS[int(d)] for d in str(n))
    if fmt in ("iroha", "irohaFullWidth", "aiueo", "aiueoFullWidth"):
        series = _IROHA if fmt.startswith("iroha") else _AIUEO
        kana = series[(n - 1) % len(series)]
        # The plain formats are the half-width kana (ｲ, ｱ); NFKC maps them back to full width.
        return kana if fmt.endswith("FullWidth") else kana.translate(_HALF_KANA)
    if fmt == "decimalEnclosedCircle" and 1 <= n <= 20:
        return chr(0x2460 + n - 1)
    if fmt == "decimalEnclosedParen" and 1 <= n <= 20:
        return chr(0x2474 + n - 1)
    if fmt in ("lowerLetter", "upperLetter"):
        letter = chr(ord("a") + (n - 1) % 26) * ((n - 1) // 26 + 1)
        return letter.upper() if fmt == "upperLetter" else letter
    if fmt in ("lowerRoman", "upperRoman"):
        return _roman(n).upper() if fmt == "upperRoman" else _roman(n)
    if fmt == "decimalZero":
        return f"{n:02d}"
    return str(n)


_HALF_KANA = str.maketrans(
    dict(zip("アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲンヰヱ",
             "ｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜｦﾝｲｴ"))
)


class _DocxNumbering:
    """Renders Word's automatic list numbers (``w:numPr``), which are not in the paragraph text.

    A 例規 written in Word numbers 条 as 「第%1条」, 項 as 「%2」, 号 as 「(%3)」 and イロハ as
    「%4」; the structure parser needs those numbers in the text. Counters follow Word:
    per abstract numbering, a deeper level restarts when a shallower one advances, and
    a ``w:num`` with a ``startOverride`` restarts its level on first use.
    """

    def __init__(self, document) -> None:  # noqa: ANN001 - docx.Document
        from docx.opc.constants import RELATIONSHIP_TYPE as RT
        from docx.oxml.ns import qn

        self._qn = qn
        self.levels: dict[str, dict[int, dict[str, str | int]]] = {}
        self.nums: dict[str, tuple[str, dict[int, int]]] = {}
        self.counters: dict[str, dict[int, int]] = {}
        self.started: set[str] = set()
        try:
            root = document.part.part_related_by(RT.NUMBERING).element
        except KeyError:
            return
        for abstract in root.findall(qn("w:abstractNum")):
            levels: dict[int, dict[str, str | int]] = {}
            for lvl in abstract.findall(qn("w:lvl")):
                levels[int(lvl.get(qn("w:ilvl"), "0"))] = {
                    "start": int(self._val(lvl, "w:start") or 1),
                    "fmt": self._val(lvl, "w:numFmt") or "decimal",
                    "text": self._val(lvl, "w:lvlText") or "",
                }
            self.levels[abstract.get(qn("w:abstractNumId"))] = levels
        for num in root.findall(qn("w:num")):
            overrides = {
                int(o.get(qn("w:ilvl"), "0")): int(self._val(o, "w:startOverride"))
                for o in num.findall(qn("w:lvlOverride"))
                if self._val(o, "w:startOverride")
            }
            self.nums[num.get(qn("w:numId"))] = (self._val(num, "w:abstractNumId") or "", overrides)

    def _val(self, element, tag: str) -> str | None:  # noqa: ANN001
        child = element.find(self._qn(tag))
        return child.get(self._qn("w:val")) if child is not None else None

    def _num_pr(self, paragraph) -> tuple[str, int] | None:  # noqa: ANN001 - docx Paragraph
        """(numId, level) from the paragraph, else from its style chain."""
        qn = self._qn
        candidates = [paragraph._p.pPr]
        style = paragraph.style
        while style is not None:
            candidates.append(style.element.pPr)
            style = style.base_style
        num_id, ilvl = None, None
        for ppr in candidates:
            numpr = ppr.find(qn("w:numPr")) if ppr is not None else None
            if numpr is None:
                continue
            num_id = num_id or self._val(numpr, "w:numId")
            ilvl = ilvl if ilvl is not None else self._val(numpr, "w:ilvl")
            if num_id is not None:
                break
        if not num_id or num_id == "0" or num_id not in self.nums:
            return None
        return num_id, int(ilvl or 0)

    def label(self, paragraph) -> tuple[str, str] | None:  # noqa: ANN001
        """Advance the paragraph's list counter; return (number text, format) or None."""
        found = self._num_pr(paragraph)
        if found is None:
            return None
        num_id, ilvl = found
        abstract_id, overrides = self.nums[num_id]
        levels = self.levels.get(abstract_id, {})
        if ilvl not in levels:
            return None
        counters = self.counters.setdefault(abstract_id, {})
        if num_id not in self.started:
            self.started.add(num_id)
            for level, start in overrides.items():
                counters[level] = start - 1
        counters[ilvl] = counters[ilvl] + 1 if ilvl in counters else int(levels[ilvl]["start"])
        for deeper in [k for k in counters if k > ilvl]:
            del counters[deeper]

        def render(m: re.Match) -> str:
            k = int(m.group(1)) - 1
            spec = levels.get(k, {"start": 1, "fmt": "decimal"})
            return _format_number(counters.get(k, int(spec["start"])), str(spec["fmt"]))

        fmt = str(levels[ilvl]["fmt"])
        return re.sub(r"%([1-9])", render, str(levels[ilvl]["text"])), fmt


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
    numbering = _DocxNumbering(document)
    blocks: list[str] = []
    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            para = Paragraph(child, document)
            number = numbering.label(para)  # advances the counter even for an empty paragraph
            text = para.text.strip()
            if not text:
                continue
            style = (para.style.name if para.style is not None else "") or ""
            listed = "List" in style
            if number is not None and number[1] != "bullet":
                text = f"{number[0]} {text}" if number[0].strip() and number[1] != "none" else text
                listed = False  # the number is the list marker
            if style.startswith("Heading") and style[-1:].isdigit():
                blocks.append("#" * int(style[-1]) + " " + text)
            elif style == "Title":
                blocks.append("# " + text)
            elif listed or (number is not None and number[1] == "bullet"):
                blocks.append("- " + text)
            else:
                blocks.append(text)
        elif tag == "tbl":
            table = Table(child, document)
            rows = [[cell.text for cell in row.cells] for row in table.rows]
            if rows:
                blocks.append("\n".join(_table_rows(rows)))
    return "\n\n".join(blocks)


_HTML_DROPPED = ["script", "style", "nav", "footer", "header", "noscript", "template", "rt", "rp", "button", "select", "textarea", "iframe", "svg"]
_HTML_BLOCKS = frozenset(
    "address article aside blockquote caption center dd details dialog div dl dt fieldset figcaption figure "
    "form hr li main ol p pre section summary ul".split()
)
# A number standing in its own inline element (「<span>第1条</span><span>この…」 in a 例規集
# page): it gets a space after it, as the page shows it, so the text keeps 「第1条 この…」.
_NUMBER_ONLY = re.compile(
    r"^(?:第\s*[0-9０-９〇一二三四五六七八九十百]{1,6}\s*条(?:\s*の\s*[0-9０-９一二三四五六七八九十]{1,4})*"
    r"|[0-9０-９]{1,2}|[(（][0-9０-９一二三四五六七八九十]{1,3}[)）]|[\u2474-\u2487\u2460-\u2473]"
    r"|[一二三四五六七八九十]{1,3}|[ア-ンｱ-ﾝ]|[(（][ア-ンｱ-ﾝ][)）])$"
)
_BREAK = "\x00"
_CJK = "\u3000-\u30ff\u4e00-\u9fff\uff00-\uffef"


def _squeeze(text: str) -> str:
    """HTML whitespace as a browser shows it: a source line break inside Japanese text is
    no space at all, other runs are one space; the ideographic space (U+3000) is text."""
    text = text.replace("\xa0", " ")
    text = re.sub(rf"(?<=[{_CJK}])[ \t\r\n]*\n[ \t\r\n]*(?=[{_CJK}])", "", text)
    text = re.sub(r"[ \t\r\n\f\v]+", " ", text)
    text = re.sub(r" ?\u3000 ?", "\u3000", text)
    return text.strip(" ")


class _HtmlText:
    """Block elements become lines (a 例規集 page puts each article, 項 and 見出し in its own
    ``div``/``p``); inline elements run together; tables become ``|`` rows."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self._buf: list[str] = []
        self._prefix = ""

    def flush(self) -> None:
        text, self._buf = "".join(self._buf), []
        for part in text.split(_BREAK):
            part = _squeeze(part)
            if part:
                self.blocks.append(self._prefix + part)
                self._prefix = ""

    def walk(self, element, li_depth: int = 0) -> None:  # noqa: ANN001 - bs4 Tag
        from bs4 import NavigableString
        from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction

        for child in element.children:
            if isinstance(child, (Comment, Declaration, Doctype, ProcessingInstruction)):
                continue
            if isinstance(child, NavigableString):
                self._buf.append(str(child))
                continue
            name = child.name
            if "display:none" in (child.get("style") or "").replace(" ", ""):
                continue
            if name == "br":
                self._buf.append(_BREAK)
            elif name == "table":
                self.flush()
                rows = [[c.get_text(" ", strip=True) for c in tr.find_all(["th", "td"])] for tr in child.find_all("tr")]
                rows = [r for r in rows if any(r)]
                if rows:
                    self.blocks.append("\n".join(_table_rows(rows)))
            elif len(name) == 2 and name[0] == "h" and name[1].isdigit():
                self.flush()
                text = _squeeze(child.get_text("").replace(_BREAK, " "))
                if text:
                    self.blocks.append("#" * int(name[1]) + " " + text)
            elif name in _HTML_BLOCKS:
                self.flush()
                if name == "li":
                    self._prefix = "  - " if li_depth else "- "
                self.walk(child, li_depth + (name == "li"))
                self.flush()
            else:
                before = len(self._buf)
                self.walk(child, li_depth)
                piece = "".join(self._buf[before:]).strip()
                if _NUMBER_ONLY.match(piece) and not "".join(self._buf[:before]).strip():
                    self._buf.append(" ")


def _html_to_text(raw: bytes, name: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(raw, "html.parser")
    for tag in soup(_HTML_DROPPED):
        tag.decompose()
    reader = _HtmlText()
    reader.walk(soup.body or soup)
    reader.flush()
    return "\n\n".join(reader.blocks)


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
