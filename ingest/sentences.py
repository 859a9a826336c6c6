"""The project's one splitter of source text into verbatim sentences.

A unit's text is split at line ends and after 。！？; list markers at the start of a
line (・, -, ✓ …) are left out, so every sentence returned is an exact substring of
the text and can be quoted as it stands.

    >>> split_sentences("- AIの処理経過をログとして保存する。職員が後から確認できるようにする など")
    ['AIの処理経過をログとして保存する。', '職員が後から確認できるようにする など']
"""

from __future__ import annotations

import re

__all__ = ["split_sentences", "LIST_MARKER"]

#: Bullet and check marks that open a list line; not part of what the line says.
LIST_MARKER = re.compile(r"^[\s\-・•▶►➤➢>»■●○◆‣*✓✔☑]+")
_ENDS = "。！？!?"
_OPEN = "（(「『【"
_CLOSE = "）)」』】"


def split_sentences(text: str, *, min_chars: int = 4) -> list[str]:
    """Verbatim sentences of ``text`` in order, each at least ``min_chars`` long (shorter ones dropped).

    Tab-separated table lines are kept whole: their cells are not sentences.
    """
    out: list[str] = []
    for line in text.splitlines():
        body = LIST_MARKER.sub("", line).strip()
        if not body:
            continue
        pieces = [body] if "\t" in body else _split_line(body)
        out += [p for p in pieces if len(p) >= min_chars]
    return out


def _split_line(line: str) -> list[str]:
    """Split after 。！？ that stand outside brackets: 「…(電子学習を含む。)を受講する。」 is one sentence."""
    pieces: list[str] = []
    depth = 0
    start = 0
    i = 0
    while i < len(line):
        ch = line[i]
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(depth - 1, 0)
        elif ch in _ENDS and depth == 0:
            end = i + 1
            while end < len(line) and line[end] in _ENDS + _CLOSE:
                end += 1
            pieces.append(line[start:end].strip())
            start = i = end
            continue
        i += 1
    if line[start:].strip():
        pieces.append(line[start:].strip())
    return [p for p in pieces if p]
