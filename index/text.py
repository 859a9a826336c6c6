"""What of a unit gets embedded and BM25-indexed, and the section names it can be pinned by.

The unit's text goes in together with a compact form of its section path, so a
question that names a section ("判断支援の設計開発で必須のものは？") finds it.
"""

from __future__ import annotations

import re

from ingest.cleaning import nfkc
from ingest.models import Unit
from ingest.sentences import split_sentences

__all__ = ["compact_path", "embed_text", "lexical_text", "bare_section", "section_names", "passages_to_score", "MAX_EMBED_CHARS"]

# e5-small reads at most 512 tokens, and cost grows with length on 2 cores.
MAX_EMBED_CHARS = 480
_NUMBERING = re.compile(r"^(?:[IVX]+\s+|\d{1,2}[.．]?\s*|[①-⑳]\s*|\[(?:必須|推奨)\]\s*|\(\d+\)\s*)")


# 「第8条（利用の申請等）」「第3の2（記録の保存）」: an article and its 見出し.
_ARTICLE_CAPTION = re.compile(r"^第[0-9]+(?:条)?(?:の[0-9]+)*\s*[(（]([^()（）]+)[)）]$")


def article_caption(section_path: list[str] | tuple[str, ...]) -> str:
    """The 見出し of the rule article a path runs through (「利用の申請等」), or ""."""
    for segment in section_path[1:]:
        m = _ARTICLE_CAPTION.match(nfkc(segment).strip())
        if m:
            return m.group(1)
    return ""


def bare_section(segment: str) -> str:
    """A path segment without its numbering or brackets: ``3 判断支援`` → ``判断支援``."""
    s = nfkc(segment).strip()
    s = _NUMBERING.sub("", s)
    s = s.strip("【】<>()[] ")
    return re.sub(r"\s+", "", s)


# 「第8条（禁止事項）」「第3章 利用」「別表第1（第5条関係）」: a rule's number and its caption.
_LEGAL_SEGMENT = re.compile(
    r"^((?:第[0-9一二三四五六七八九十百]+[章節款目条項号](?:の[0-9一二三四五六七八九十]+)?)|附則|別表第?[0-9一二三四五六七八九十]*|様式第?[0-9一二三四五六七八九十]*号?)"
    r"\s*[(（]?([^()（）]*?)[)）]?$"
)


def section_names(segment: str) -> list[str]:
    """Every name a question may call a path segment by: its bare form and, for a rule's
    article or chapter, its number and its caption apart (「第8条」, 「禁止事項」).

    >>> section_names("第8条（禁止事項）")
    ['第8条(禁止事項', '第8条', '禁止事項']
    >>> section_names("3 判断支援")
    ['判断支援']
    """
    bare = bare_section(segment)
    names = [bare] if bare else []
    m = _LEGAL_SEGMENT.match(re.sub(r"\s+", "", nfkc(segment)))
    if m:
        caption = m.group(2) if "関係" not in m.group(2) else ""
        names += [n for n in (m.group(1), caption) if n and n not in names]
    return names


def compact_path(unit: Unit) -> str:
    """The section path below the document title, numbering dropped, joined by '/'."""
    segs = [bare_section(s) for s in unit.section_path[1:]]
    return "/".join(s for s in segs if s)


def embed_text(unit: Unit) -> str:
    """Path, then (for a table row) its column names once, then the unit's own text."""
    head = compact_path(unit)
    body = unit.norm_text
    if unit.header:
        body = f"{nfkc(unit.header)}\n{body}"
    text = f"{head}\n{body}" if head else body
    return re.sub(r"[ \t]+", " ", text)[:MAX_EMBED_CHARS]


def lexical_text(unit: Unit) -> str:
    """Path and the unit's own text. A table's column names are left out: repeated in
    every row they would match every row equally and only blur BM25's IDF."""
    return f"{compact_path(unit)}\n{unit.norm_text}"


def passages_to_score(units: list[Unit]) -> list[str]:
    """The sentences the answer composer may quote, one entry per distinct sentence.

    Table rows are left out: a row is quoted whole, by its cells.
    """
    seen: dict[str, None] = {}
    for u in units:
        if u.kind == "table_row":
            continue
        for s in split_sentences(u.text):
            seen.setdefault(s[:MAX_EMBED_CHARS])
    return list(seen)
