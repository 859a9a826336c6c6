"""Line-level cleaning of text extracted from slide PDFs.

Drops page furniture (navigation digit runs, page numbers, illustration notes,
English image descriptions, slide footers, stray colour-icon words) and strips inline markup, while
keeping each surviving line's original line number so provenance and quotes
point back at the source. Nothing here rewrites wording: NFKC is applied to a
separate ``norm`` form only.

    >>> r = clean_lines("01\\n\\n02\\n本文です。\\n※イラストは生成AIで作成")
    >>> [l.text for l in r.lines if l.text]
    ['本文です。']
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Line", "CleanResult", "clean_lines", "clean_inline", "nfkc", "squash", "kanji_number", "arabic_counts"]

_NAV_DIGITS = re.compile(r"^(?:-\s*)?(?:0\d)(?:\s+0\d)*$")
_PAGE_NUMBER = re.compile(r"^\d{1,3}$")
_CHART_LABEL = re.compile(r"^[^\s()]{1,8}\([^\s()]{1,4}\)$")  # axis titles such as 件数(件)
_ILLUSTRATION = re.compile(r"^※\s*イラストは生成AIで作成")
_INLINE_MARKUP = re.compile(r"</?u>|\*\*|</?b>|</?i>|<mark>|</mark>")
_BULLET_NAV_PREFIX = re.compile(r"^(\s*-\s+)0[1-5]\s+(?=\S)")
# The Tokyo slides colour each use-case box; extraction leaves the colour word as a
# stray line or bullet prefix, sometimes next to the wrong box (the classification
# itself is in the AI利活用の分類 table). "- 青森県" has no space after 青 and is kept.
_COLOUR_ICON = re.compile(r"^(?:-\s*)?[青黄赤](?:\s*\|)?$")
_BULLET_ICON_PREFIX = re.compile(r"^(\s*-\s+)(?:[青黄赤](?:\s+\|?|\s*\|)\s*|\|\s*)(?=\S)")
_FURNITURE = [
    re.compile(r"^次ページへ続く$"),
    re.compile(r"^Digital Agency$", re.I),
    re.compile(r"^デジタル庁$"),
    re.compile(r"ワーキンググループ資料\s*[（(]令和\d+年\d+月\d+日[)）]$"),
    re.compile(r"^第\d+回.*(?:資料|提出資料)\s*[（(]令和\d+年\d+月\d+日[)）]$"),
]


def nfkc(text: str) -> str:
    """NFKC-normalise: ``３Ｃ`` → ``3C``, half-width kana → full-width, ``（`` → ``(``."""
    return unicodedata.normalize("NFKC", text)


_KANJI_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_KANJI_UNITS = {"十": 10, "百": 100, "千": 1000}
# A count or date written in kanji (「五年間」「年二回」「令和七年四月一日」「第三号」): NFKC leaves
# it as it is, so figures are compared after this.
_KANJI_COUNT = re.compile(
    r"(?<![〇一二三四五六七八九十百千])([〇一二三四五六七八九十百千]+)"
    r"(?=\s*(?:か月|ヶ月|カ月|箇月|年|月|日|回|件|人|名|時間|割|倍|歳|円|万|億|条|項|号|団体|以上|以下|未満|%|パーセント))"
)


def kanji_number(token: str) -> int | None:
    """``12``, ``十二`` and ``一二`` (digit by digit) → 12; None when not a number."""
    token = nfkc(token).strip()
    if token.isdigit():
        return int(token)
    total, current = 0, 0
    for ch in token:
        if ch in _KANJI_DIGITS:
            current = current * 10 + _KANJI_DIGITS[ch]
        elif ch in _KANJI_UNITS:
            total += (current or 1) * _KANJI_UNITS[ch]
            current = 0
        else:
            return None
    return total + current if token else None


def arabic_counts(text: str) -> str:
    """``text`` (NFKC) with kanji counts and dates in Arabic digits, for comparing figures only
    (quotes stay as written): 「五年間保存」 → 「5年間保存」, 「年二回以上」 → 「年2回以上」,
    「令和七年四月一日」 → 「令和7年4月1日」. A kanji word that is no count (「一部」「十分」) is kept.

    >>> arabic_counts("記録を五年間保存し、研修を年二回以上、令和七年四月一日から")
    '記録を5年間保存し、研修を年2回以上、令和7年4月1日から'
    """
    return _KANJI_COUNT.sub(lambda m: str(kanji_number(m.group(1))), nfkc(text))


def squash(text: str) -> str:
    """NFKC with all whitespace removed: the key used to compare wordings."""
    return re.sub(r"\s+", "", nfkc(text))


def clean_inline(line: str) -> str:
    """Remove inline emphasis markup (``<u>``, ``**``) and trailing spaces; keep the words."""
    line = _INLINE_MARKUP.sub("", line)
    line = _BULLET_NAV_PREFIX.sub(r"\1", line)
    line = _BULLET_ICON_PREFIX.sub(r"\1", line)
    return line.rstrip().replace("\u3000", " ") if line.strip() else ""


def _is_image_description(text: str) -> bool:
    letters = sum(1 for c in text if c.isascii() and c.isalpha())
    visible = sum(1 for c in text if not c.isspace())
    return visible >= 60 and letters / visible >= 0.5 and len(re.findall(r"[A-Za-z]{2,}", text)) >= 10


def _noise_reason(text: str) -> str | None:
    s = nfkc(text).strip()
    if not s:
        return None
    if _NAV_DIGITS.match(s):
        return "navigation_digits"
    if _PAGE_NUMBER.match(s):
        return "page_number"
    if _ILLUSTRATION.match(s):
        return "illustration_note"
    if _CHART_LABEL.match(s):
        return "chart_label"
    if _COLOUR_ICON.match(s):
        return "colour_icon"
    if _is_image_description(s):
        return "image_description"
    if any(p.search(s) for p in _FURNITURE):
        return "page_furniture"
    return None


@dataclass(frozen=True)
class Line:
    """One source line: ``no`` is 1-based, ``text`` the cleaned original ("" if dropped).

    ``dropped`` names why a noise line was blanked; the structure parser still
    peeks at it (a navigation-digit run marks the title line above it as a slide title).
    ``raw`` keeps a dropped line's original text: what is noise on a slide can be
    structure in a rule (「2」 alone is a 項 number, 「第1条(目的)」 is not a chart label),
    and the legal parser (:mod:`ingest.reiki`) restores such lines.
    """

    no: int
    text: str
    dropped: str | None = None
    raw: str = field(default="", compare=False, repr=False)

    @property
    def norm(self) -> str:
        return nfkc(self.text).strip()


@dataclass
class CleanResult:
    lines: list[Line]
    dropped: Counter = field(default_factory=Counter)


def clean_lines(text: str) -> CleanResult:
    """Split ``text`` into lines, blanking the noise ones (line numbers are kept).

    Returns:
        All lines in order (noise lines become empty ``Line``s, so blank-line
        structure survives) and a count of dropped lines per reason.
    """
    dropped: Counter = Counter()
    out: list[Line] = []
    for no, raw in enumerate(text.splitlines(), start=1):
        raw = raw.replace("\u00a0", " ")
        reason = _noise_reason(raw)
        if reason:
            dropped[reason] += 1
            out.append(Line(no, "", reason, raw))
            continue
        out.append(Line(no, clean_inline(raw)))
    return CleanResult(out, dropped)
