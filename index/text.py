"""What of a unit gets embedded and BM25-indexed, and the section names it can be pinned by.

The unit's text goes in together with a compact form of its section path, so a
question that names a section ("判断支援の設計開発で必須のものは？") finds it.
"""

from __future__ import annotations

import re

from ingest.cleaning import nfkc
from ingest.models import Unit

__all__ = ["compact_path", "embed_text", "lexical_text", "bare_section", "MAX_EMBED_CHARS"]

# e5-small reads at most 512 tokens, and cost grows with length on 2 cores.
MAX_EMBED_CHARS = 480
_NUMBERING = re.compile(r"^(?:[IVX]+\s+|\d{1,2}[.．]?\s*|[①-⑳]\s*|\[(?:必須|推奨)\]\s*|\(\d+\)\s*)")


def bare_section(segment: str) -> str:
    """A path segment without its numbering or brackets: ``3 判断支援`` → ``判断支援``."""
    s = nfkc(segment).strip()
    s = _NUMBERING.sub("", s)
    s = s.strip("【】<>()[] ")
    return re.sub(r"\s+", "", s)


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
