"""Japanese rules (例規: 条例・規則・訓令・要綱・規程) read as 条・項・号.

An office's own rules follow the conventions of legislative drafting, not the
slide and markdown shapes :mod:`ingest.structure` reads::

    ○〇〇市生成AI利用規程              title line  → document metadata
    令和5年6月21日                     制定日      → document metadata
    訓令第6号                          番号        → document metadata
    第1章 総則                         章・節・款  → sections
    (定義)                             見出し      → names the article(s) below it
    第2条 この規程において、…          条 (its first 項 carries no number)
    (1) 生成AI 文章等を…をいう。       号 (under it イ・ロ・ハ, then (ｲ)/(i))
    2 前項の…                          項 (the 2nd and later paragraphs)
    附則（令和6年3月29日訓令第3号）    附則 blocks, then 別表・様式

A unit is one 項 with its 号 listed inside; a 項 whose 号 list is long, or whose
号 define terms, gives one unit per 号. Every unit carries a citation label
(「第3条第2項」「第2条第1号」「附則第1項」「別表第1」).

Matching uses the NFKC form (``３`` → ``3``, ``（`` → ``(``, ``⑴`` → ``(1)``) while unit
text keeps the source's characters. Lines a PDF broke mid-sentence are joined back
(without a newline) inside their 項 or 号, and lines the slide-oriented cleaning
blanked (a bare 「2」, 「第1条(目的)」) are restored from ``Line.raw``.

    >>> kanji_number("二十五"), kanji_number("一〇五"), kanji_number("12")
    (25, 105, 12)
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from ingest.cleaning import (
    Line,
    arabic_counts,
    clean_inline,
    kanji_number,
    nfkc,
    squash,
)
from ingest.models import DocumentMeta
from ingest.structure import RawUnit
from ingest.units import MIN_UNIT_CHARS

__all__ = ["ITEM_SPLIT_CHARS", "LegalInfo", "LegalParse", "LegalUnit", "detect_legal", "kanji_number", "parse_legal"]

log = logging.getLogger(__name__)

# A 項 whose text with its 号 exceeds this many characters (NFKC, no spaces) gives one
# unit per 号. The dense model reads at most 480 characters of a unit, section path
# included (index.text.MAX_EMBED_CHARS); 400 leaves room for a path such as
# 「第3章 利用/第8条(入力の制限)/第2項」, so no 号 of an unsplit 項 falls past what is embedded.
# A shorter list stays whole: 「次に掲げる情報を入力してはならない。(1)…(2)…」 answers best in one piece.
ITEM_SPLIT_CHARS = 400

_N = r"(?:\d{1,4}|[〇一二三四五六七八九十百千]{1,7})"
_BRANCH = rf"(?:\s*の\s*{_N})*"
_CAP = r"[^()。]{1,30}"
_PARTICLE = re.compile(r"^(?:の|に|を|は|が|で|と|へ|も|や|及|又|並|中|から|まで|より|若)")
_ERA = r"(?:明治|大正|昭和|平成|令和)"
_DATE = rf"(?:{_ERA}\s*(?:元|{_N})\s*年\s*{_N}\s*月\s*{_N}\s*日|\d{{4}}\s*年\s*\d{{1,2}}\s*月\s*\d{{1,2}}\s*日)"
_KIND = r"(?:条例|規則|訓令|告示|要綱|規程|要領|内規|規約|公告|達|訓)"
_DOCNUM = rf"(?:(?:[明大昭平令]\s*\d{{1,2}}\s+)?[^\s()、。]{{0,16}}?{_KIND}[甲乙]?\s*第\s*{_N}\s*号)"
_META = re.compile(
    rf"^\(?\s*(?:制定|施行|公布|決裁)?\s*(?P<date>{_DATE})?\s*(?:制定|施行|公布|決裁)?\s*(?P<num>{_DOCNUM})?\s*\)?$"
)
_AMENDED = re.compile(r"^(?:最終)?改\s*正(?:\s*[:：])?$")
_TOC = re.compile(r"^目\s*次$")
_SECTION = re.compile(rf"^第\s*({_N})\s*(編|章|節|款|目)({_BRANCH})(?:\s*(.*))?$")
_SECTION_LEVEL = {"編": 0, "章": 1, "節": 2, "款": 3, "目": 4}
_TOC_RANGE = re.compile(r"\s*\(第[^()]*条[^()]*\)$")
_SUPPL = re.compile(r"^(?:附|付)\s*則(?:\s*\(([^()]+)\))?(?:\s*抄)?$")
_APPENDIX = re.compile(rf"^(別表|別記|別紙|様式)(?:\s*(第?\s*{_N}(?:\s*号)?(?:\s*の\s*{_N})?))?\s*(\([^()]*\))?\s*(.*)$")
_ARTICLE = re.compile(rf"^(?:\(({_CAP})\)\s*)?第\s*({_N})\s*条({_BRANCH})")
_CAPTION = re.compile(rf"^\(({_CAP})\)$")
_HEADING_ARTICLE = re.compile(rf"^第\s*({_N})({_BRANCH})\s+([^\s()。、]{{1,20}})$")
_NOTE = re.compile(r"^\([^()]*(?:改正|追加|削除|繰上|繰下|全改|旧第|新設)[^()]*\)$")
_PARA = re.compile(r"^(\d{1,2})(?:\s+|\.(?!\d)\s*)(\S.*)$")
_PARA_ALONE = re.compile(r"^(\d{1,2})$")
_ITEM_PAREN = re.compile(r"^\((\d{1,3})\)\s*(.*)$")
_ITEM_KANJI = re.compile(r"^([一二三四五六七八九十]{1,3})\s+(\S.*)$")
_IROHA = "イロハニホヘトチリヌルヲワカヨタレソツネナラムウヰノオクヤマケフコエテアサキユメミシヱヒモセス"
_SUB = re.compile(rf"^(?:[{_IROHA}](?:\s+\S|$)|\((?:[ア-ン]|[ivxlc]{{1,6}}|[a-z])\)|[a-z]\s+\S)")
_CIRCLED = re.compile(r"^[\u2460-\u2473\u3251-\u325f]")
_PAGE_FURNITURE = re.compile(r"^(?:[-‐－―—–ー~〜]\s*\d{1,4}\s*[-‐－―—–ー~〜]|\d{1,4}\s*/\s*\d{1,4}|(?:p\.?|page)\s*\d{1,4})$", re.I)
_MD_PREFIX = re.compile(r"^(?:#{1,6}\s+|[-*+]\s+(?=\S)|>\s*)")
_TITLE_MARK = re.compile(r"^[○◯]\s*(?=[^○◯])")
_SENTENCE_END = ("。", ".")
# A line that breaks off mid-sentence is glued to the next only when it is at least this
# long: a PDF wraps at the full line width (30-40 characters on A4), while a short
# unfinished line (宛先 「庁中一般」, a 別表 cell) ended where its author ended it.
_WRAP_MIN_CHARS = 16
_DEFINITION_LEAD = re.compile(r"用語の(?:意義|定義)|次の各号に掲げる用語|用語は、次")
_QUOTED_TERM = re.compile(r"^「([^」]{1,30})」")
_LEADING_TERM = re.compile(r"^([^\s、。「」()]{1,30}?)(?:\s+|[:：]\s*)\S")
_DEFINES = re.compile(r"をいう|をいい|を指す")
_PARA_TERM = re.compile(r"「([^」]{1,30})」とは")
_TABLE_SEPARATOR = re.compile(r"^\|?[\s:|-]*-[\s:|-]*\|?$")
# Line reasons of :func:`ingest.cleaning.clean_lines` that are structure in a rule.
_RESTORED = ("page_number", "chart_label")

def _branch_suffix(branch: str) -> str:
    return "".join(f"の{kanji_number(b)}" for b in re.findall(_N, branch or ""))


@dataclass
class LegalUnit(RawUnit):
    """A raw unit whose lines may continue one another without a line break.

    ``seps`` maps a line number to the text put before that line ("" for a
    mid-sentence PDF break, " " after a number standing alone on its line);
    lines not in it start on a new line, as in :class:`RawUnit`.
    """

    seps: dict[int, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        parts: list[str] = []
        for i, line in enumerate(self.lines):
            if i:
                parts.append(self.seps.get(line.no, "\n"))
            parts.append(line.text.strip())
        return "".join(parts)


@dataclass
class LegalInfo:
    """What a rule prints above its first article (its 題名, 制定日 and 番号)."""

    title_line: str = ""
    enacted: str = ""
    number: str = ""
    amendments: int = 0
    articles: int = 0


@dataclass
class LegalParse:
    """The units of a rule in document order, the lines dropped as structure, and its metadata."""

    units: list[RawUnit]
    dropped: Counter
    info: LegalInfo


@dataclass
class _Row:
    no: int
    text: str  # source characters, markdown markers removed
    norm: str  # NFKC, whitespace runs as one space
    raw: str  # the line as cleaned (tables keep their tabs and pipes)
    furniture: bool = False  # a page number such as 「- 3 -」, blanked


@dataclass
class _Item:
    number: int
    lines: list[Line]


@dataclass
class _Para:
    number: int
    numbered: bool
    lines: list[Line] = field(default_factory=list)
    items: list[_Item] = field(default_factory=list)
    style: str = ""  # how its 号 are numbered: paren (1) | kanji 一 | bare 1
    caption: str = ""
    has_body: bool = True


@dataclass
class _Block:
    """An article (``label`` 第3条), or a region's unnumbered text (``label`` "")."""

    label: str
    caption: str = ""
    paras: list[_Para] = field(default_factory=list)
    tables: list[LegalUnit] = field(default_factory=list)

    @property
    def segment(self) -> str:
        return f"{self.label}（{self.caption}）" if self.label and self.caption else self.label


def _rows(lines: list[Line]) -> list[_Row]:
    rows = []
    for line in lines:
        text = line.text
        if not text and line.dropped in _RESTORED:
            text = clean_inline(line.raw)
        stripped = text.strip()
        furniture = bool(_PAGE_FURNITURE.match(nfkc(stripped)))
        body = "" if furniture else _MD_PREFIX.sub("", stripped).strip()
        rows.append(_Row(line.no, body, re.sub(r"\s+", " ", nfkc(body)).strip(), text, furniture))
    return rows


def _heading_article(norm: str) -> tuple[str, str, str, tuple[int, ...]] | None:
    """(label 第3, caption, "", sort key) for a 「第3 利用の手続」 line: the articles of a 要綱・要領
    numbered 第1, 第2, … with the 見出し beside the number and the text below it."""
    m = _HEADING_ARTICLE.match(norm)
    if not m or "。" in m.group(3) or _PARTICLE.match(m.group(3)):
        return None
    main = kanji_number(m.group(1))
    if main is None:
        return None
    branches = tuple(kanji_number(b) or 0 for b in re.findall(_N, m.group(2) or ""))
    return f"第{main}{_branch_suffix(m.group(2))}", m.group(3).strip(), "", (main, *branches)


def _article(norm: str, *, headings: bool = False) -> tuple[str, str, str, tuple[int, ...]] | None:
    """(label 第3条の2, caption, body, sort key) when ``norm`` opens an article; with ``headings``
    (a rule numbered 第1, 第2, …), a 「第3 利用の手続」 line opens one too."""
    if headings:
        return _heading_article(norm)
    m = _ARTICLE.match(norm)
    if not m:
        return None
    caption = m.group(1) or ""
    rest = norm[m.end():]
    if rest and not rest[0].isspace():
        c = re.match(rf"\(({_CAP})\)\s*", rest)
        if caption or not c or _PARTICLE.match(rest[c.end():]):
            return None  # 「第3条の規定により」「第3条(…)の規定」: a reference, not an article
        caption, rest = c.group(1), rest[c.end():]
    main = kanji_number(m.group(2))
    if main is None:
        return None
    branches = tuple(kanji_number(b) or 0 for b in re.findall(_N, m.group(3) or ""))
    return f"第{main}条{_branch_suffix(m.group(3))}", caption.strip(), rest.strip(), (main, *branches)


def _section(norm: str) -> tuple[int, str] | None:
    m = _SECTION.match(norm)
    if not m:
        return None
    title = _TOC_RANGE.sub("", m.group(4) or "")
    if "。" in title or len(title) > 40 or _PARTICLE.match(title):
        return None
    return _SECTION_LEVEL[m.group(2)], title


def _appendix(norm: str) -> tuple[str, str] | None:
    """(label 別表第1, path segment 別表第1（第5条関係）) for a 別表・様式 heading."""
    m = _APPENDIX.match(norm)
    if not m:
        return None
    rest = m.group(4)
    if "。" in rest or len(rest) > 40 or _PARTICLE.match(rest):
        return None
    label = m.group(1) + re.sub(r"\s+", "", m.group(2) or "")
    segment = label + (f"（{m.group(3)[1:-1]}）" if m.group(3) else "") + (f" {rest}" if rest else "")
    return label, segment


def _is_table(raw: str) -> bool:
    s = raw.strip()
    if s.startswith("|") and s.endswith("|") and len(s) > 1:
        return True
    if "\t" not in s:
        return False
    # Word's text export puts a tab after an automatic number (「第1条\tこの規程は…」).
    lead = nfkc(s.split("\t", 1)[0]).strip()
    return not (_article(lead) or _PARA_ALONE.match(lead) or _ITEM_PAREN.match(lead) or _ITEM_KANJI.match(lead + " x") or _SUB.match(lead))


def detect_legal(lines: list[Line]) -> Literal["legal", "weak", "none"]:
    """Whether the lines are a rule.

    ``legal``: at least two articles (「第N条」 opening a line, with or without 見出し)
    with different numbers, mostly ascending (附則 may restart at 第1条); or, for a rule
    without articles, a 番号 line (「訓令第6号」) near the top together with a 附則.
    ``weak``: a 番号 line or a 附則 heading without the rest: something rule-like whose
    structure cannot be read. ``none`` otherwise (guidelines, slides, minutes).
    """
    return _detect(_rows(lines))[0]


def _ascending(keys: list[tuple[int, ...]]) -> bool:
    steps = list(zip(keys, keys[1:]))
    return sum(1 for a, b in steps if b > a or b[0] == 1) >= 0.7 * len(steps)


def _detect(rows: list[_Row]) -> tuple[Literal["legal", "weak", "none"], int, bool]:
    """(verdict, how many articles, whether they are numbered 第1, 第2, … rather than 第1条)."""
    keys = [a[3] for r in rows if r.norm and (a := _article(r.norm))]
    head = [r for r in rows if r.norm][:12]
    number_line = any(_META.match(r.norm) and _META.match(r.norm).group("num") for r in head)  # type: ignore[union-attr]
    suppl = any(_SUPPL.match(r.norm) for r in rows if r.norm)
    if len(set(keys)) >= 2 and _ascending(keys):
        return "legal", len(keys), False
    # A 要綱・要領 numbers its articles 第1, 第2, …: three or more in order from 第1, none with 条,
    # and a sign of a rule (a 附則 or a 番号 line), so a report's 「第1 はじめに」 chapters are not one.
    heads = [a[3] for r in rows if r.norm and (a := _heading_article(r.norm))]
    if not keys and len(set(heads)) >= 3 and _ascending(heads) and heads[0] == (1,) and (suppl or number_line):
        return "legal", len(heads), True
    if number_line and suppl:
        return "legal", 0, False
    if number_line or suppl:
        return "weak", 0, False
    return "none", 0, False


class _LegalParser:
    """One pass over a rule's rows: a prelude (title, 制定日, 番号, 改正 history), then the
    body, where each row is classified (``_kind``) and handled by ``_on_<kind>``. An
    article is collected whole (its 項 and 号) and emitted as units when the next one,
    a 章, a 附則 or a 別表 begins."""

    def __init__(self, meta: DocumentMeta, rows: list[_Row], *, has_articles: bool, headings: bool = False):
        self.meta = meta
        self.rows = rows
        self.has_articles = has_articles
        self.headings = headings
        self.info = LegalInfo()
        self.dropped: Counter = Counter()
        self.units: list[RawUnit] = []
        self.seps: dict[int, str] = {}
        self.bare_markers: set[int] = set()
        self.sections: list[tuple[int, str]] = []
        self.region = "main"  # main | suppl (附則) | appendix (別表・様式)
        self.top_label = ""
        self.top_segment = ""
        self.block: _Block | None = None
        self.caption = ""  # a 見出し waiting for its article
        self.shared_caption = ""  # the last article's 見出し, shared by the captionless articles after it
        self.dropped["page_number"] += sum(1 for r in rows if r.furniture)
        # One 見出し may head several articles (共通見出し) only in a rule that captions its
        # articles; in one that captions a few, a captionless article has no caption.
        articles = [i for i, r in enumerate(rows) if r.norm and self._article(r.norm)]
        captioned = sum(1 for i in articles if self._article(rows[i].norm)[1] or self._caption_before(i))  # type: ignore[index]
        self.share_captions = captioned * 2 >= len(articles) > 0

    # ------------------------------------------------------------------ helpers
    def _article(self, norm: str) -> tuple[str, str, str, tuple[int, ...]] | None:
        return _article(norm, headings=self.headings)

    def _caption_before(self, i: int) -> bool:
        for j in range(i - 1, max(i - 4, -1), -1):
            if self.rows[j].norm:
                return bool(_CAPTION.match(self.rows[j].norm)) and self._shape(self.rows[j]) == "text"
        return False

    def _after_sentence(self, i: int) -> bool:
        """Whether row ``i`` starts a new block: the text before it ended (a PDF line that
        begins 「別表第1に定める…」 mid-sentence is no 別表 heading)."""
        for j in range(i - 1, -1, -1):
            prev = self.rows[j]
            if prev.norm:
                return prev.norm.endswith(_SENTENCE_END) or _is_table(prev.raw) or self._shape(prev) != "text" or bool(_SUPPL.match(prev.norm))
        return True

    def _next(self, i: int) -> int | None:
        for j in range(i + 1, min(i + 8, len(self.rows))):
            if self.rows[j].norm:
                return j
        return None

    def _kind(self, i: int) -> str:
        """What row ``i`` is, looking ahead where a shape alone does not tell."""
        row = self.rows[i]
        s = row.norm
        if _is_table(row.raw):
            return "table"
        if _TOC.match(s):
            return "toc"
        if _SUPPL.match(s):
            return "suppl"
        if _appendix(s) and (self.region == "appendix" or self._after_sentence(i)):
            return "appendix"
        if self.region == "appendix":
            return "furniture" if _PARA_ALONE.match(s) and not self._followed_by_text(i) else "text"
        if self.region == "main" and _section(s):
            return "section"
        if self._article(s):
            return "article"
        if _CAPTION.match(s) and self._shape(row) == "text":
            nxt = self._next(i)
            nk = nxt is not None and self._article(self.rows[nxt].norm)
            if nk or (self.region == "suppl" and nxt is not None and _PARA.match(self.rows[nxt].norm)):
                return "caption"
            return "note" if _NOTE.match(s) else "text"
        if _PARA_ALONE.match(s):
            # A number alone: a 項 number whose text went to the next line, or a page number.
            return "para" if self._followed_by_text(i) else "furniture"
        return self._shape(row)

    def _followed_by_text(self, i: int) -> bool:
        return i + 1 < len(self.rows) and bool(self.rows[i + 1].norm) and self._shape(self.rows[i + 1]) == "text"

    @staticmethod
    def _shape(row: _Row) -> str:
        s = row.norm
        if _CIRCLED.match(row.text) or _SUB.match(s):
            return "sub"
        if _PARA.match(s):
            return "para"
        if _ITEM_PAREN.match(s) or _ITEM_KANJI.match(s):
            return "item"
        return "text"

    def _line(self, row: _Row, *, bare: bool = False) -> Line:
        if bare:
            self.bare_markers.add(row.no)
        return Line(row.no, row.text)

    def _append(self, lines: list[Line], row: _Row) -> None:
        """Add a continuation line; glue it to the previous one when that broke mid-sentence."""
        if lines:
            prev = lines[-1]
            prev_norm = nfkc(prev.text).rstrip()
            if prev.no in self.bare_markers:
                self.seps[row.no] = " "
            elif self.region != "appendix" and not prev_norm.endswith(_SENTENCE_END) and len(squash(prev_norm)) >= _WRAP_MIN_CHARS:
                ascii_join = prev_norm[-1:].isascii() and prev_norm[-1:].isalnum() and row.norm[:1].isascii() and row.norm[:1].isalnum()
                self.seps[row.no] = " " if ascii_join else ""
        lines.append(self._line(row))

    def _context(self) -> list[str]:
        if self.region == "main":
            return [self.meta.title] + [t for _, t in self.sections]
        return [self.meta.title, self.top_segment]

    def _ensure_block(self) -> _Block:
        if self.block is None:
            self.block = _Block(label="")
        return self.block

    # ------------------------------------------------------------------ prelude
    def _prelude(self) -> int:
        """Read title, 制定日, 番号 and 改正 history; return the index of the first body row."""
        amendments = False
        for i, row in enumerate(self.rows):
            s = row.norm
            if not s:
                continue
            if self._kind(i) in ("toc", "suppl", "appendix", "section", "article", "caption", "table"):
                return i
            if _AMENDED.match(s):
                amendments = True
                self.dropped["amendment_history"] += 1
                continue
            m = _META.match(s)
            if m and (m.group("date") or m.group("num")):
                if amendments or (self.info.enacted and self.info.number):
                    self.info.amendments += 1
                    self.dropped["amendment_history"] += 1
                else:
                    self.info.enacted = self.info.enacted or squash(arabic_counts(m.group("date") or ""))
                    self.info.number = self.info.number or squash(arabic_counts(m.group("num") or ""))
                    self.dropped["document_metadata"] += 1
                continue
            if not self.info.title_line and not s.endswith("。") and len(s) <= 80 and self._shape(row) == "text":
                self.info.title_line = _TITLE_MARK.sub("", row.text).strip()
                self.dropped["document_title"] += 1
                continue
            return i
        return len(self.rows)

    # ------------------------------------------------------------------ main loop
    def run(self) -> list[RawUnit]:
        i = self._prelude()
        n = len(self.rows)
        while i < n:
            row = self.rows[i]
            if not row.norm:
                i += 1
                continue
            kind = self._kind(i)
            if kind == "table":
                i = self._table(i)
                continue
            if kind == "toc":
                i = self._skip_toc(i)
                continue
            handler = getattr(self, f"_on_{kind}")
            handler(row)
            i += 1
        self._close()
        return self.units

    def _on_furniture(self, row: _Row) -> None:
        self.dropped["page_number"] += 1

    def _on_note(self, row: _Row) -> None:
        # 「(平26訓令5・追加、令5訓令4・一部改正)」: amendment history, not rule text.
        self.dropped["amendment_note"] += 1

    def _on_suppl(self, row: _Row) -> None:
        self._close()
        m = _SUPPL.match(row.norm)
        inner = re.sub(r"\s+", "", m.group(1)) if m and m.group(1) else ""
        self.region = "suppl"
        self.top_label = self.top_segment = f"附則（{inner}）" if inner else "附則"
        self.sections = []
        self.caption = self.shared_caption = ""

    def _on_appendix(self, row: _Row) -> None:
        self._close()
        label, segment = _appendix(row.norm)  # type: ignore[misc]
        self.region = "appendix"
        self.top_label, self.top_segment = label, segment
        self.caption = self.shared_caption = ""

    def _on_section(self, row: _Row) -> None:
        self._close()
        level, _ = _section(row.norm)  # type: ignore[misc]
        while self.sections and self.sections[-1][0] >= level:
            self.sections.pop()
        self.sections.append((level, _TOC_RANGE.sub("", row.text).strip()))
        self.caption = self.shared_caption = ""

    def _on_caption(self, row: _Row) -> None:
        self.caption = _CAPTION.match(row.norm).group(1).strip()  # type: ignore[union-attr]

    def _on_article(self, row: _Row) -> None:
        label, caption, body, _ = self._article(row.norm)  # type: ignore[misc]
        self._close()
        self.info.articles += 1
        caption = caption or self.caption or (self.shared_caption if self.share_captions else "")
        self.shared_caption = caption
        self.caption = ""
        self.block = _Block(label=label, caption=caption)
        para = _Para(number=1, numbered=False, has_body=bool(body))
        para.lines.append(self._line(row, bare=not body))
        self.block.paras.append(para)

    def _on_para(self, row: _Row) -> None:
        m = _PARA.match(row.norm) or _PARA_ALONE.match(row.norm)
        number = int(m.group(1))  # type: ignore[union-attr]
        bare = m.re is _PARA_ALONE  # type: ignore[union-attr]
        block = self._ensure_block()
        loose_main = not block.label and self.region == "main"
        if loose_main and self.has_articles:
            self._on_text(row)  # a numbered line in a preamble is just text
            return
        para = block.paras[-1] if block.paras else None
        if para and para.style == "bare" and para.items and number == para.items[-1].number + 1:
            para.items.append(_Item(number, [self._line(row, bare=bare)]))
        elif number == len(block.paras) + 1:
            caption, self.caption = self.caption, ""
            new = _Para(number=number, numbered=True, caption=caption)
            new.lines.append(self._line(row, bare=bare))
            block.paras.append(new)
        elif number == 1 and para is not None and len(block.paras) == 1 and not para.has_body and not para.items:
            # 「第1条(目的)」 on its own line, then 「1 この規則は…」: the first 項 is numbered.
            para.numbered = True
            para.caption, self.caption = self.caption, ""
            para.lines.append(self._line(row, bare=bare))
            para.has_body = True
        elif number == 1 and para is not None and para.has_body and not para.items:
            # 「次の方針に基づき行う。」 then 「1 …」「2 …」: a list numbered like 項, read as 号.
            para.style = "bare"
            para.items.append(_Item(1, [self._line(row, bare=bare)]))
        else:
            self._on_text(row)

    def _on_item(self, row: _Row) -> None:
        m = _ITEM_PAREN.match(row.norm)
        style = "paren" if m else "kanji"
        m = m or _ITEM_KANJI.match(row.norm)
        number = kanji_number(m.group(1)) or 0  # type: ignore[union-attr]
        bare = not m.group(2)  # type: ignore[union-attr]
        block = self._ensure_block()
        if not block.paras:
            block.paras.append(_Para(number=1, numbered=False))
        para = block.paras[-1]
        if para.style and para.style != style and para.items:
            # 「一 …」 then 「イ …」 then 「(1) …」: the national style nests (1) under イ.
            self._append(para.items[-1].lines, row)
            return
        para.style = para.style or style
        para.items.append(_Item(number, [self._line(row, bare=bare)]))

    def _on_sub(self, row: _Row) -> None:
        block = self._ensure_block()
        if not block.paras:
            block.paras.append(_Para(number=1, numbered=False))
        para = block.paras[-1]
        target = para.items[-1].lines if para.items else para.lines
        self._append(target, row)
        self.seps[row.no] = "\n"  # イ・ロ・ハ start their own line

    def _on_text(self, row: _Row) -> None:
        if self.region == "main" and not self.info.articles and _same_title(row.text, self.info.title_line):
            self.dropped["document_title"] += 1  # the title repeated under a 公布文
            return
        block = self._ensure_block()
        if not block.paras:
            block.paras.append(_Para(number=1, numbered=False))
        para = block.paras[-1]
        if not para.has_body and not para.items:
            para.has_body = True
        self._append(para.items[-1].lines if para.items else para.lines, row)

    # ------------------------------------------------------------------ tables and contents
    def _skip_toc(self, i: int) -> int:
        """Drop a 目次 and its entries; stop at the heading that repeats the first entry."""
        self.dropped["table_of_contents"] += 1
        first: str | None = None
        j = i + 1
        while j < len(self.rows):
            s = self.rows[j].norm
            if not s:
                j += 1
                continue
            if not (_section(s) or _SUPPL.match(s) or _appendix(s)):
                break
            key = squash(_TOC_RANGE.sub("", s))
            if first is not None and key == first:
                break
            first = first or key
            self.dropped["table_of_contents"] += 1
            j += 1
        return j

    def _table(self, i: int) -> int:
        rows: list[tuple[_Row, list[str]]] = []
        header: list[str] = []
        j = i
        while j < len(self.rows):
            if not self.rows[j].norm:
                nxt = self._next(j)
                if nxt is None or not _is_table(self.rows[nxt].raw):
                    break
                j = nxt  # a page break inside a table
            if not _is_table(self.rows[j].raw):
                break
            raw = self.rows[j].raw.strip()
            if _TABLE_SEPARATOR.match(raw):
                if len(rows) == 1 and not header:
                    header = rows.pop()[1]
                j += 1
                continue
            cells = [c.strip() for c in (raw.strip("|").split("|") if raw.startswith("|") else raw.split("\t"))]
            rows.append((self.rows[j], cells))
            j += 1
        if not header and len(rows) > 1 and sum(1 for c in rows[0][1] if c) >= 2 and all(len(c) <= 20 for c in rows[0][1]):
            header = rows.pop(0)[1]
        block = self._ensure_block()
        path = self._context() + ([block.segment] if block.segment else [])
        label = self.top_label + block.label
        header_text = " | ".join(h for h in header if h)
        previous: list[str] = []
        for row, cells in rows:
            # Merged cells in the leading columns come out empty: carry the value down.
            filled = [c or (previous[k] if k < len(previous) and k < len(cells) - 1 and not any(cells[:k]) else "") for k, c in enumerate(cells)]
            previous = filled
            rendered = " | ".join(f"{h}: {c}" if h else c for h, c in zip(header + [""] * len(filled), filled) if c)
            unit = LegalUnit(path=list(path), kind="table_row", lines=[Line(row.no, row.raw.strip())], header=header_text, row=rendered, label=label)
            unit.title = next((c for c in filled if c), "")[:40]
            block.tables.append(unit)
        return j

    # ------------------------------------------------------------------ emitting
    def _close(self) -> None:
        block, self.block = self.block, None
        if block is None:
            return
        for unit in self._units_of(block):
            if unit.lines:
                self.units.append(unit)
        self.units.extend(block.tables)

    def _units_of(self, block: _Block) -> list[LegalUnit]:
        context = self._context()
        base_path = context + ([block.segment] if block.segment else [])
        base_label = self.top_label + block.label
        paras = [p for p in block.paras if p.lines or p.items]
        preamble = not block.label and self.region == "main"
        multi = len(paras) > 1 or (any(p.numbered for p in paras) and not preamble)
        kind = "paragraph" if preamble or self.region == "appendix" else "clause"
        out: list[LegalUnit] = []
        for para in paras:
            segment = f"第{para.number}項" + (f"（{para.caption}）" if para.caption else "")
            path = base_path + ([segment] if multi else [])
            label = base_label + (f"第{para.number}項" if multi else "")
            out.extend(self._para_units(block, para, path, label, kind))
        return out

    def _unit(self, path: list[str], label: str, kind: str, lines: list[Line], title: str = "") -> LegalUnit:
        return LegalUnit(path=list(path), kind=kind, lines=list(lines), title=title, label=label, seps=self.seps)

    def _para_units(self, block: _Block, para: _Para, path: list[str], label: str, kind: str) -> list[LegalUnit]:
        lead = self._unit(path, label, kind, para.lines, block.caption or para.caption)
        lead_norm = nfkc(lead.text)
        if not para.items:
            term = _PARA_TERM.search(lead_norm)
            if term and _DEFINES.search(lead_norm) and kind == "clause":
                lead.kind, lead.title = "definition", term.group(1)
            return [lead]
        defining = "定義" in block.caption or bool(_DEFINITION_LEAD.search(lead_norm))
        items = [(item, self._unit(path + [f"第{item.number}号"], f"{label}第{item.number}号", kind, item.lines)) for item in para.items]
        terms = [_term(nfkc(unit.text), defining) for _, unit in items]
        whole = self._unit(path, label, kind, para.lines + [l for item in para.items for l in item.lines], lead.title)
        if not any(terms) and whole.norm_len <= ITEM_SPLIT_CHARS:
            return [whole]
        out: list[LegalUnit] = []
        if para.has_body or len(para.lines) > 1:
            out.append(lead)
        previous: LegalUnit | None = None
        for (_, unit), term in zip(items, terms):
            if term:
                unit.kind, unit.title = "definition", term
            elif unit.norm_len < MIN_UNIT_CHARS and previous is not None:
                # 「(2) 副町長」 alone would be dropped as a fragment: keep it with the 号 before.
                previous.lines.extend(unit.lines)
                continue
            else:
                unit.title = block.caption
            out.append(unit)
            previous = unit
        return out


def _same_title(text: str, title: str) -> bool:
    return bool(title) and squash(_TITLE_MARK.sub("", text)) == squash(title)


def _term(item_text: str, defining: bool) -> str:
    """The term a 号 defines (「(1) 生成AI …をいう。」 → 生成AI), or ""."""
    body = re.sub(r"^(?:\(\d{1,3}\)|[一二三四五六七八九十]{1,3}|\d{1,2})\s*", "", item_text).strip()
    quoted = _QUOTED_TERM.match(body)
    if quoted and (defining or _DEFINES.search(body)):
        return quoted.group(1)
    if not (defining or _DEFINES.search(body)):
        return ""
    m = _LEADING_TERM.match(body)
    return m.group(1) if m else ""


def parse_legal(meta: DocumentMeta, lines: list[Line]) -> LegalParse | None:
    """Read a rule's 条・項・号 into units, or return None when the lines are not a rule.

    Returns None (and logs a warning naming the file) when the document looks like
    a rule (a 番号 line, a 附則) but its structure cannot be read, so the caller can
    ingest it with the general parser instead.
    """
    rows = _rows(lines)
    verdict, articles, headings = _detect(rows)
    if verdict == "none":
        return None
    if verdict == "weak":
        log.warning("%s: 例規（条・項・号）の構造を認識できませんでした。段落として取り込みます。", meta.file)
        return None
    parser = _LegalParser(meta, rows, has_articles=articles > 0, headings=headings)
    units = parser.run()
    if not any(u.norm_len >= MIN_UNIT_CHARS for u in units):
        log.warning("%s: 例規として読みましたが本文を取り出せませんでした。段落として取り込みます。", meta.file)
        return None
    return LegalParse(units=units, dropped=parser.dropped, info=parser.info)
