"""Structure-aware unit parser: cleaned lines in, units with section paths out.

The corpus is text extracted from slides, minutes and markdown, so structure has
to be recovered from line shapes:

* headings: markdown ``#``; chapter titles listed in a table of contents;
  slide titles (a short line followed by the navigation-digit run, or a line
  repeated as a running header); ``【領域】…のポイント`` domains, ``1 情報提供・検索``
  categories and 企画/要件定義/設計開発/運用/廃止 phases; ``<…>``/``【…】`` labels;
* ``（続き）`` continuation pages fold back into the section they continue;
* units: a ``✓ [必須]`` / ``① …`` clause with its bullets, a list item with its
  nested bullets, a table row with its header, a definition row, a
  ``・question → answer <デジタル庁>`` exchange, or a paragraph.

Rules (例規: 条・項・号) are read by :mod:`ingest.reiki` instead; :func:`parse_structure`
chooses.

The parser never rewrites wording: unit text is the cleaned source lines joined
with newlines, so quotes stay verbatim.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ingest.cleaning import Line, nfkc, squash
from ingest.models import DocumentMeta

if TYPE_CHECKING:
    from ingest.reiki import LegalInfo

__all__ = ["ParsedStructure", "RawUnit", "parse_structure", "PHASES"]

PHASES = ("企画", "要件定義", "設計開発", "運用", "廃止")

# Heading levels (smaller = higher). Non-markdown documents use the named ones.
L_CHAPTER, L_SLIDE, L_CATEGORY, L_PHASE, L_SUB, L_LABEL = 1, 2, 3, 4, 5, 6

_MD_HEADING = re.compile(r"^(#{1,6}) +([^\t]+?)\s*#*$")
_CHECK = re.compile(r"^(?:-\s*)?[✓✔☑]\s*[\[【](必須|推奨)[\]】]\s*(.+)$")
_TAG = re.compile(r"【([^】]{1,20})】")
_CIRCLED = re.compile(r"^([①-⑳])\s*(.+)$")
_BULLET = re.compile(r"^(\s*)([-・•▶►➤➢>»■●○〇◆‣*]|\d{1,2}\.(?=\s)|\(\d{1,2}\)|[（(][a-zA-Zｱ-ﾝ][)）])\s*")
_CONTINUED = re.compile(r"\s*[（(]続き[)）]\s*$")
_DOMAIN = re.compile(r"^(【[^】]+】)\s*AI利活用の対応のポイント$")
_CATEGORY = re.compile(r"^(?:0[1-5]\s+)?([1-5])\s+([^\s。、]{2,24})$")
_TOC_NUMBERED = re.compile(r"^(?:-\s*)?(?:[|I｜]\s*)?(0[1-9])\s+(.{2,60})$")
_TOC_REFERENCE = re.compile(r"^(参考資料)\s*(\d{1,2})\t(.+?)[・\s\d]*$")
_CHAPTER_MARKER = re.compile(r"^参考資料\s*(\d{1,2})$")
# 「ア 非公開の会議資料」「(イ) …」: the sub-items of a numbered item, listed under it, never a heading.
_KANA_ITEM = re.compile(r"^(?:[アイウエオカキクケコサシスセソタチツテト]\s+\S|\([アイウエオカキクケコサシスセソタチツテト]\)\s*\S)")
_NUMBERED_HEADING = re.compile(r"^\d{1,2}\.\s*\S.{0,14}$")
_LABEL = re.compile(r"^(<[^<>]{1,30}>|＜[^＜＞]{1,30}＞|【[^】]{1,30}】|[(（][^()（）]{2,40}[)）])$")
_ANSWER_MARK = re.compile(r"<(デジタル庁|総務省|内閣官房|[^<>]{1,12}省|[^<>]{1,12}庁)>\s*$")
_PHASE_SENTENCE = re.compile(r"^[「『]?(企画|要件定義|設計開発|運用|廃止)フェーズ[」』]?(?:では|は|開始後は)")
_PROCUREMENT_SENTENCE = re.compile(r"^デジタルサービスを委託等により調達する場合")
_DEFINITION_HEADING = re.compile(r"定義|とは|用語")
_TAGS_ONLY = re.compile(r"^(?:【[^】]{1,20}】\s*)+$")


@dataclass
class RawUnit:
    """A unit before IDs and dedup: path, kind, lines and (for table rows) the header.

    ``label`` is a rule's citation of the unit (「第3条第2項」); empty for other documents.
    """

    path: list[str]
    kind: str
    lines: list[Line] = field(default_factory=list)
    title: str = ""
    tags: list[str] = field(default_factory=list)
    header: str = ""
    row: str = ""
    label: str = ""

    @property
    def text(self) -> str:
        return "\n".join(line.text.strip() if i else line.text.strip() for i, line in enumerate(self.lines))

    @property
    def norm_len(self) -> int:
        return len(squash(self.text))


def _is_heading_like(s: str) -> bool:
    """A short line without sentence punctuation that names something."""
    if len(s) > 40 or len(s) < 2 or s.endswith(("。", "、", ",", "，", ":", "：")):
        return False
    if s.endswith(("こと", "もの", "です", "ます", "する", "した", "ない", "いる", "ある", "?", "？")):
        return False
    if "\t" in s or s.startswith(("※", "→", "(注", "注)")):
        return False
    # Needs some Japanese or words; "945-5271 ☆" is not a heading.
    return len(re.findall(r"[\u3040-\u30ff\u4e00-\u9fffA-Za-z]", s)) >= 2


class _Parser:
    def __init__(self, meta: DocumentMeta, lines: list[Line]):
        self.meta = meta
        self.lines = lines
        self.is_markdown = any(_MD_HEADING.match(l.text) for l in lines)
        self.stack: list[tuple[int, str]] = []
        self.units: list[RawUnit] = []
        self.current: RawUnit | None = None
        self.dropped: Counter = Counter()
        self.toc: dict[str, str] = {}
        self.toc_lines: set[int] = set()
        self.reference_titles: dict[str, str] = {}
        self.qa_mode = sum(1 for l in lines if _ANSWER_MARK.search(l.text)) >= 2
        self.running = self._running_headers()
        self.page_phase: str | None = None
        self.pending_phase: list[RawUnit] = []
        self.units_since_heading = 0
        self.last_heading: tuple[int, str] | None = None
        self.qa_questions: list[Line] = []
        self.qa_answer: list[Line] = []
        self._parse_toc()

    # ----------------------------------------------------------------- prepass
    def _running_headers(self) -> Counter:
        counts = Counter(l.norm for l in self.lines if l.text and _is_heading_like(l.norm))
        return Counter({k: v for k, v in counts.items() if v >= 2})

    def _parse_toc(self) -> None:
        start = next((i for i, l in enumerate(self.lines[:80]) if re.search(r"目\s*次", l.norm)), None)
        if start is None:
            return
        self.toc_lines.add(self.lines[start].no)
        for line in self.lines[start + 1 : start + 60]:
            if not line.text:
                if self.toc or self.reference_titles:
                    break  # entries stand on consecutive lines; a gap ends the list
                continue
            m_ref = _TOC_REFERENCE.match(line.text.strip())
            m_num = _TOC_NUMBERED.match(line.text.strip())
            if m_ref:
                title = re.sub(r"[・…\s]+\d[\d\s]*$", "", m_ref.group(3)).strip(" ・")
                self.reference_titles[m_ref.group(2)] = f"参考資料{m_ref.group(2)} {title}"
                self.toc_lines.add(line.no)
            elif m_num:
                self.toc[squash(m_num.group(2))] = f"{m_num.group(1)} {m_num.group(2).strip()}"
                self.toc_lines.add(line.no)
            elif self.toc or self.reference_titles:
                break

    # ----------------------------------------------------------------- helpers
    def path(self) -> list[str]:
        return [self.meta.title] + [t for _, t in self.stack]

    def level_of(self, name: str) -> int | None:
        for lvl, t in self.stack:
            if t == name:
                return lvl
        return None

    def has_level(self, level: int) -> bool:
        return any(lvl == level for lvl, _ in self.stack)

    def set_heading(self, level: int, title: str) -> None:
        self.flush()
        title = _CONTINUED.sub("", title).strip()
        if level <= L_CATEGORY:
            self._close_page()
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, title))
        self.last_heading = (level, title)
        self.units_since_heading = 0

    def _close_page(self) -> None:
        # Checklist items whose phase label never showed on their page keep an
        # unknown phase here; `_resolve_phases` fills them from the whole document.
        self.page_phase = None
        self.pending_phase = []

    def next_nonblank(self, i: int) -> Line | None:
        for line in self.lines[i + 1 : i + 6]:
            if line.text or line.dropped == "navigation_digits":
                return line
        return None

    def emit(self, unit: RawUnit) -> None:
        self.units.append(unit)
        self.units_since_heading += 1

    def flush(self) -> None:
        self._flush_qa()
        if self.current is not None and self.current.lines:
            self.emit(self.current)
        self.current = None

    def start(self, kind: str, line: Line, **kw) -> RawUnit:
        self.flush()
        self.current = RawUnit(path=self.path(), kind=kind, lines=[line], **kw)
        return self.current

    # ----------------------------------------------------------------- QA minutes
    def _flush_qa(self) -> None:
        if not (self.qa_questions or self.qa_answer):
            return
        path = self.path()
        if self.qa_questions and self.qa_answer:
            self.emit(RawUnit(path=path, kind="qa", lines=self.qa_questions + self.qa_answer, tags=["QA"]))
        else:
            for group in _split_items(self.qa_questions or self.qa_answer):
                self.emit(RawUnit(path=path, kind="paragraph", lines=group))
        self.qa_questions, self.qa_answer = [], []

    def _qa_line(self, line: Line, s: str) -> bool:
        """Consume a line of the minutes' question/answer form; False if it is not one."""
        body = re.sub(r"^-\s*", "", s).strip()
        is_question = body.startswith("・")
        answer_closed = bool(self.qa_answer) and _ANSWER_MARK.search(self.qa_answer[-1].norm)
        if is_question:
            if self.qa_answer:
                self._flush_qa()
            if self.current is not None:
                self.flush()
            self.qa_questions.append(line)
            return True
        if self.qa_questions and not self.qa_answer and not body.startswith("→"):
            if not self.qa_questions[-1].norm.endswith(("。", "?", "？")) and not _ANSWER_MARK.search(s):
                self.qa_questions.append(line)  # the question runs on over a page break
                return True
        if body.startswith("→") or (self.qa_questions and not self.qa_answer):
            self.qa_answer.append(line)
            return True
        if self.qa_answer and not answer_closed:
            self.qa_answer.append(line)
            return True
        if _ANSWER_MARK.search(s) and not self.qa_questions:
            self._flush_qa()
            self.flush()
            self.emit(RawUnit(path=self.path(), kind="paragraph", lines=[line]))
            return True
        if self.qa_answer and answer_closed:
            self._flush_qa()
        return False

    # ----------------------------------------------------------------- tables
    def _table(self, i: int) -> int:
        """Parse a tab or pipe table starting at line ``i``; return the index after it."""
        self.flush()
        rows: list[tuple[Line, list[str]]] = []
        pipe = self.lines[i].text.lstrip().startswith("|")
        separator_seen = False
        j = i
        while j < len(self.lines):
            line = self.lines[j]
            if not line.text:
                nxt = self.next_nonblank(j)
                if nxt is not None and nxt.text and (("\t" in nxt.text) if not pipe else nxt.text.lstrip().startswith("|")):
                    j += 1
                    continue
                break
            if pipe and not line.text.lstrip().startswith("|"):
                break
            if not pipe and "\t" not in line.text:
                break
            if pipe:
                if re.fullmatch(r"\s*\|[\s:|-]*-[\s:|-]*\|?\s*", line.text):
                    separator_seen = len(rows) == 1
                    j += 1
                    continue
                cells = [c.strip() for c in line.text.strip().strip("|").split("|")]
            else:
                cells = [c.strip() for c in line.text.split("\t")]
            rows.append((line, cells))
            j += 1
        self._emit_table(rows, markdown_header=separator_seen)
        return j

    def _emit_table(self, rows: list[tuple[Line, list[str]]], *, markdown_header: bool = False) -> None:
        def numeric(c: str) -> bool:
            return bool(re.fullmatch(r"[\d,.()（）%％ ]+", nfkc(c))) and any(ch.isdigit() for ch in c)

        def junk(cells: list[str]) -> bool:
            return all(re.fullmatch(r"[・\s]*(<br>)?[・\s]*", c) for c in cells)

        if markdown_header and rows:
            # Markdown says the row above |---| is the header; an empty one means "no header".
            head = rows[0][1]
            rows = [(l, c) for l, c in rows[1:] if not junk(c)]
            if not rows:
                return
            self._emit_rows(rows, [] if not any(head) else head)
            return
        rows = [(l, c) for l, c in rows if not junk(c)]
        if not rows:
            return
        has_numbers = any(any(numeric(c) for c in cells) for _, cells in rows)
        header_rows: list[list[str]] = []
        body = rows
        # A caption row (mostly empty or long cells) sits above some tables; it is text, not a header.
        first = rows[0][1]
        filled = [c for c in first if c]
        width = max(len(c) for _, c in rows)
        if len(rows) > 2 and (len(filled) * 2 <= width and any(len(c) > 20 for c in filled)):
            self.emit(RawUnit(path=self.path(), kind="paragraph", lines=[rows[0][0]]))
            rows = rows[1:]
        if has_numbers:
            k = 0
            while k < len(rows) and not any(numeric(c) for c in rows[k][1]):
                k += 1
            header_rows = [c for _, c in rows[:k]]
            body = rows[k:]
        elif rows and len(rows) > 1 and all(len(c) <= 20 for c in rows[0][1]) and sum(1 for c in rows[0][1] if c) >= 2:
            header_rows = [rows[0][1]]
            body = rows[1:]
        else:
            body = rows
        self._emit_rows(body, _combine_header(header_rows))

    def _emit_rows(self, body: list[tuple[Line, list[str]]], header: list[str]) -> None:
        header_text = " | ".join(h for h in header if h)
        heading = " ".join(self.path()[-2:])
        is_definition = bool(header and re.match(r"^用語", header[0])) or (
            not header and _DEFINITION_HEADING.search(heading) and all(len([c for c in cells if c]) <= 3 for _, cells in body)
        )
        kind = "definition" if is_definition else "table_row"
        previous: list[str] = []
        for line, cells in body:
            filled_cells = list(cells)
            # Merged cells in the leading columns come out empty: carry the value down.
            for idx, c in enumerate(filled_cells):
                if c:
                    break
                if idx < len(previous) and idx < len(filled_cells) - 1:
                    filled_cells[idx] = previous[idx]
            previous = filled_cells
            row = " | ".join(
                f"{h}: {c}" if h else c for h, c in zip(header + [""] * len(filled_cells), filled_cells) if c
            )
            unit = RawUnit(path=self.path(), kind=kind, lines=[line], header=header_text, row=row)
            lead = next((c for c in filled_cells if c), "")
            unit.title = lead[:40]
            if unit.norm_len < 10 and self.units and self.units[-1].kind == kind and self.units[-1].path == unit.path:
                self.units[-1].lines.append(line)
                self.units[-1].row += " / " + row
                continue
            self.emit(unit)

    # ----------------------------------------------------------------- main loop
    def run(self) -> list[RawUnit]:
        i = 0
        n = len(self.lines)
        while i < n:
            line = self.lines[i]
            if not line.text:
                i += 1
                continue
            if line.no in self.toc_lines:
                self.dropped["table_of_contents"] += 1
                i += 1
                continue
            s = line.norm
            raw = line.text
            if "\t" in raw or (raw.lstrip().startswith("|") and raw.rstrip().endswith("|")):
                i = self._table(i)
                continue
            answer_open = self.qa_answer and not _ANSWER_MARK.search(self.qa_answer[-1].norm)
            if not answer_open and self._heading(i, line, s):
                i += 1
                continue
            if self.qa_mode and self._qa_line(line, s):
                i += 1
                continue
            self._content(line, s)
            i += 1
        self.flush()
        return self.units

    def _heading(self, i: int, line: Line, s: str) -> bool:
        o = line.text.strip()  # titles keep the source's own characters; matching uses NFKC
        m = _MD_HEADING.match(o)
        if m:
            self.set_heading(len(m.group(1)), m.group(2).strip())
            return True
        if _TAGS_ONLY.match(s) and self.current is not None and self.current.kind == "clause":
            return False  # the wrapped tag list of a checklist item
        if self.is_markdown:
            m = _LABEL.match(s)
            if m and not _ANSWER_MARK.search(s):
                deepest = max((lvl for lvl, _ in self.stack if lvl < L_LABEL), default=0)
                self.set_heading(max(deepest + 1, L_SUB), o)
                return True
            return False
        if re.match(r"^\[(参考資料|その他)\]", s):
            # Appendices follow the last chapter but are not part of it.
            self.set_heading(L_CHAPTER, o)
            return True
        key = squash(re.sub(r"^(?:[I|｜]\s*)?(?:0[1-9]\s+)?", "", s))
        if key in self.toc:
            self.set_heading(L_CHAPTER, self.toc[key])
            return True
        m = _CHAPTER_MARKER.match(s)
        if m and self.reference_titles:
            label = self.reference_titles.get(m.group(1), f"参考資料{m.group(1)}")
            carry = self.last_heading if (self.last_heading and self.units_since_heading == 0 and self.last_heading[0] > L_CHAPTER) else None
            self.set_heading(L_CHAPTER, label)
            if carry:
                self.set_heading(*carry)
            return True
        m = _DOMAIN.match(re.sub(r"\s+", "", o))
        if m:
            self.set_heading(L_SLIDE, m.group(1))
            return True
        in_domain = any(t.startswith("【") for lvl, t in self.stack if lvl == L_SLIDE)
        bare = _CONTINUED.sub("", s)
        if in_domain:
            m = _CATEGORY.match(_CONTINUED.sub("", o))
            if m:
                title = f"{m.group(1)} {m.group(2)}"
                cat = next((t for lvl, t in self.stack if lvl == L_CATEGORY), None)
                if _CONTINUED.search(s) and cat == title:
                    self._close_page()  # a new page of the same category
                    while self.stack and self.stack[-1][0] > L_CATEGORY:
                        self.stack.pop()
                    self.flush()
                    return True
                self.set_heading(L_CATEGORY, title)
                return True
            if bare in PHASES:
                self._phase_label(bare)
                return True
        if _PHASE_SENTENCE.match(s) or _PROCUREMENT_SENTENCE.match(s):
            phase = _PHASE_SENTENCE.match(s).group(1) if _PHASE_SENTENCE.match(s) else "調達"
            if next((t for lvl, t in self.stack if lvl == L_PHASE), None) != phase:
                self.set_heading(L_PHASE, phase)
            return False  # the sentence itself is content
        if _CONTINUED.search(s) and _is_heading_like(bare):
            # "主な対応策（続き）": the section goes on; nothing new to open.
            self.flush()
            title = _CONTINUED.sub("", o)
            if not any(t == title for _, t in self.stack):
                self.set_heading(L_SUB, title)
            return True
        if _NUMBERED_HEADING.match(s) and not s.endswith("。"):
            self.set_heading(L_SLIDE, o)
            return True
        if _LABEL.match(s) and not _ANSWER_MARK.search(s):
            self.set_heading(L_LABEL, o)
            return True
        if _CHECK.match(s) or _CIRCLED.match(s) or _BULLET.match(line.text) or _TAGS_ONLY.match(s) or _KANA_ITEM.match(s):
            return False
        if _is_heading_like(s) and not self.qa_mode:
            nxt = self.next_nonblank(i)
            followed_by_nav = nxt is not None and (
                nxt.dropped == "navigation_digits" or re.match(r"^0[1-5]\s", nxt.norm or "")
            )
            strong = followed_by_nav or s in self.running or bool(_TAG.search(s[-12:] if len(s) > 12 else s))
            if not strong and (len(s) > 24 or "、" in s):
                return False  # a long unmarked line is a sentence, not a title
            if strong and in_domain and not s.endswith("のポイント"):
                strong = False  # inside a domain only another "…のポイント" page leaves it
            if strong:
                if self.running.get(s, 0) >= 5:
                    # A running header on every page (主に留意すべき事項と対応のポイント) is page furniture.
                    self.dropped["running_header"] += 1
                    self.flush()
                    while self.stack and self.stack[-1][0] >= L_SUB:
                        self.stack.pop()
                    return True
                self.set_heading(L_SLIDE, o)
            else:
                self.set_heading(L_SUB, o)
            return True
        return False

    def _phase_label(self, phase: str) -> None:
        self.flush()
        for unit in self.pending_phase:
            _set_phase(unit, phase)
        self.pending_phase = []
        self.page_phase = phase
        while self.stack and self.stack[-1][0] >= L_PHASE:
            self.stack.pop()
        self.stack.append((L_PHASE, phase))

    def _content(self, line: Line, s: str) -> None:
        if _TAGS_ONLY.match(s) and self.current is not None and self.current.kind == "clause":
            # The tag list of a checklist item wrapped onto its own line.
            self.current.lines.append(line)
            self.current.tags += [t for t in _TAG.findall(s) if t not in self.current.tags]
            return
        m = _CHECK.match(s)
        if m:
            level, rest = m.group(1), m.group(2)
            tags = [level] + _TAG.findall(rest)
            title = _TAG.sub("", rest).strip()
            in_domain = any(t.startswith("【") for lvl, t in self.stack if lvl == L_SLIDE)
            if in_domain:
                # Scene descriptions (一般的な利活用シーン) above the checklist are not its parents.
                while self.stack and self.stack[-1][0] > L_PHASE:
                    self.stack.pop()
            unit = self.start("clause", line, title=title, tags=tags)
            unit.path = self.path() + [f"[{level}] {title}"]
            if in_domain and not self.has_level(L_PHASE):
                self.pending_phase.append(unit)
            return
        m = _CIRCLED.match(s)
        if m and len(s) <= 40:
            title = m.group(2).strip()
            unit = self.start("clause", line, title=title)
            unit.path = self.path() + [s]
            return
        b = _BULLET.match(line.text)
        cur = self.current
        if b:
            indent = len(b.group(1).replace("\t", "    "))
            if cur is not None and (indent > 0 or cur.kind == "clause" and cur.title):
                cur.lines.append(line)
                return
            self.start("clause", line)
            return
        if s.startswith("※") and cur is not None:
            cur.lines.append(line)
            return
        # Plain text: a paragraph, continued while it is short or mid-sentence.
        if cur is not None and cur.kind == "paragraph":
            prev = cur.lines[-1].norm
            if cur.norm_len < 120 or not prev.endswith(("。", "）", ")", "」")):
                if cur.norm_len < 600:
                    cur.lines.append(line)
                    return
        if cur is not None and cur.kind == "clause" and not cur.title and not cur.lines[-1].norm.endswith("。") and cur.norm_len < 80:
            cur.lines.append(line)
            return
        self.start("paragraph", line)


def _set_phase(unit: RawUnit, phase: str) -> None:
    leaf = unit.path[-1]
    unit.path = unit.path[:-1] + [phase, leaf]


def _combine_header(rows: list[list[str]]) -> list[str]:
    if not rows:
        return []
    width = max(len(r) for r in rows)
    out = [""] * width
    for r_i, row in enumerate(rows):
        carry = ""
        for c_i in range(width):
            cell = row[c_i] if c_i < len(row) else ""
            # A merged header cell spans to the right until the next filled one (upper rows only).
            if cell:
                carry = cell
            elif r_i < len(rows) - 1 and carry:
                cell = carry
            if cell and cell not in out[c_i].split(" "):
                out[c_i] = (out[c_i] + " " + cell).strip()
    return out


def _split_items(lines: list[Line]) -> list[list[Line]]:
    groups: list[list[Line]] = []
    for line in lines:
        body = re.sub(r"^-\s*", "", line.norm)
        if body.startswith("・") or not groups:
            groups.append([line])
        else:
            groups[-1].append(line)
    return groups


def _resolve_phases(units: list[RawUnit]) -> None:
    """Give checklist items whose page showed no phase label the phase their title has elsewhere."""
    by_title: dict[str, Counter] = defaultdict(Counter)
    for u in units:
        if u.kind == "clause" and u.title:
            phase = next((p for p in u.path if p in PHASES), None)
            if phase:
                by_title[squash(u.title)][phase] += 1
    for u in units:
        if u.kind == "clause" and u.tags and u.tags[0] in ("必須", "推奨"):
            if any(p in PHASES for p in u.path):
                continue
            if not any(p.startswith("【") for p in u.path):
                continue
            votes = by_title.get(squash(u.title))
            if votes:
                _set_phase(u, votes.most_common(1)[0][0])


@dataclass
class ParsedStructure:
    """The units of one document in order, counts of structural lines dropped
    (table of contents, running headers, a rule's 番号 line), and, when the document
    was read as a rule, its 題名・制定日・番号 (``legal``)."""

    units: list[RawUnit]
    dropped: Counter
    legal: LegalInfo | None = None


def parse_structure(meta: DocumentMeta, lines: list[Line]) -> ParsedStructure:
    """Recover units and their section paths from cleaned lines.

    A rule (several 「第N条」 articles, or a 番号 line with a 附則) goes to the legal
    parser (:func:`ingest.reiki.parse_legal`); everything else, and a rule whose
    structure cannot be read (logged as a warning), to the general parser here.
    """
    from ingest.reiki import parse_legal  # reiki builds on RawUnit, defined in this module

    legal = parse_legal(meta, lines)
    if legal is not None:
        return ParsedStructure(legal.units, legal.dropped, legal.info)
    parser = _Parser(meta, lines)
    units = parser.run()
    _resolve_phases(units)
    return ParsedStructure(units, parser.dropped)
