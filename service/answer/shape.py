"""Question shape: what kind of answer each part of a question needs, from its wording alone.

No model is involved: the rules are data (``service/data/shapes.yaml``).

    >>> parts = analyse_question("オプトアウトとは？また、ログは何年保存する？")
    >>> [(p.shape, p.text) for p in parts]
    [('definition', 'オプトアウトとは？'), ('figure', 'ログは何年保存する？')]
    >>> parts[0].term
    'オプトアウト'
    >>> analyse_question("設計開発の必須事項は？")[0].tags
    ['必須']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from guideqa.errors import RulesError
from ingest.cleaning import nfkc
from service.check.rules import read_rules_file

__all__ = ["Shape", "SHAPES", "QuestionPart", "analyse_question", "asked_counters", "definition_term", "load_shape_rules", "DEFAULT_SHAPES"]

Shape = Literal["enumeration", "definition", "figure", "may_i", "comparison", "open_fact"]
SHAPES: tuple[str, ...] = Shape.__args__  # type: ignore[attr-defined]
DEFAULT_SHAPES = Path(__file__).resolve().parent.parent / "data" / "shapes.yaml"

_TERM_MARKER = re.compile(r"(?<!こ)とは|って、?(?:何|なに|なん|どういう|どう定義)|(?:の|で|を|は)?どう定義|の意味|の定義|どういう意味|という(?:のは|言葉|用語)|(?:を|が)指す")
# A part that asks nothing (「予算要求に使いたい」) is context for the part before it.
_ASKS = re.compile(r"[?？]|何|なに|なん(?!だ|です)|どう|どの|どれ|どこ|誰|いつ|いくら|いくつ|教えて|ですか|ますか|の$|か$")
_MONEY_ASK = re.compile(r"いくら|何円|金額|費用|料金|価格|負担金|補助率|予算額")
_COUNTER = re.compile(r"何(件|割|%|人|名|年|か月|ヶ月|カ月|月|日|回|府省庁|団体|自治体|市区町村|社|個|種類|時間|歳|円|倍|者|システム)")
_DATE_ASK = re.compile(r"いつ|何年|何月|何日|日付|時期|時点|期限|施行")


class _Rule(BaseModel):
    shape: Shape
    pattern: str = Field(min_length=1)


class _Split(BaseModel):
    question_marks: str
    connectives: str
    min_part_chars: int = Field(5, ge=1)


class ShapeRules(BaseModel):
    version: int
    rules: list[_Rule]
    split: _Split

    def compiled(self) -> list[tuple[str, re.Pattern[str]]]:
        return [(r.shape, re.compile(r.pattern)) for r in self.rules]


@dataclass
class QuestionPart:
    """One ask within a question, with the shape its answer takes.

    ``term`` is the word a definition question asks about; ``tags`` the checklist levels an
    enumeration is limited to (必須/推奨); ``counter`` the unit a figure question asks in
    (件, 割, 府省庁 …; 「日付」 for when-questions).
    """

    text: str
    shape: str
    term: str | None = None
    ask: str = ""  # the sentence that asks (what an answer repeats as the part's heading)
    tags: list[str] = field(default_factory=list)
    counter: str | None = None


@lru_cache(maxsize=4)
def load_shape_rules(path: Path = DEFAULT_SHAPES) -> ShapeRules:
    """Read and validate the shapes file.

    Raises:
        RulesError: unreadable file, bad shape names or patterns that do not compile.
    """
    rules = read_rules_file(path, ShapeRules, "質問の型の定義ファイル")
    try:
        rules.compiled()
        re.compile(rules.split.question_marks)
        re.compile(rules.split.connectives)
    except re.error as exc:
        raise RulesError(f"質問の型の定義ファイル {path.name} の正規表現に誤りがあります: {exc}", detail=str(exc)) from exc
    return rules


def _fold(text: str) -> str:
    return re.sub(r"\s+", "", nfkc(text))


def definition_term(text: str) -> str | None:
    """The word a definition question asks about: 「都のガイドラインで言うAIエージェントって何？」→ AIエージェント."""
    folded = _fold(text)
    markers = [m for m in _TERM_MARKER.finditer(folded) if m.start() > 0]
    if not markers:
        return None
    before = folded[: markers[-1].start()]
    quoted = re.findall(r"[「『]([^」』]{1,30})[」』]", before)
    if quoted:
        return quoted[-1]
    head = re.split(r"[、,。「」『』]|で言う|でいう|における|の中の|に出てくる|にある|だと|では", before)
    term = head[-1] if head[-1] else (head[-2] if len(head) > 1 else "")
    term = re.sub(r"^(?:その|この|あの|ところで|そもそも|で|ね|えっと)", "", term)
    term = re.sub(r"(?:って|は|の|が|を)$", "", term).strip("「」『』\"' ")
    # A term is a noun phrase: 「一番多い」 (ends in kana) or 「生成AIに入れちゃダメな情報」 (particles
    # and verbs inside) is a question about something else.
    if not term or re.search(r"[\u3040-\u309f]$", term) or re.search(r"[\u3040-\u309f]", term.replace("の", "")):
        return None
    return term


# Where a sentence of a question ends; staff also end one with 「…」 (「入れちゃった…誰に言えば？」).
_SENTENCE_END = re.compile(r"(?<=[。！!?？])|(?<=…)(?!…)|(?<=\.\.\.)(?!\.)")


def _shape_of(text: str, rules: ShapeRules) -> QuestionPart:
    # The sentence that asks decides the shape; an instruction before it (「…を全部出力して。
    # 源内ってどのモデル？」) does not.
    sentences = [s for s in _SENTENCE_END.split(_fold(text)) if s]
    asking = [s for s in sentences if re.search(r"[?？]", s)]
    folded = asking[-1] if asking else _fold(text)
    term = None
    shape = "open_fact"
    for s, rx in rules.compiled():
        if not rx.search(folded):
            continue
        if s == "definition":
            term = definition_term(text)
            if not term:
                continue  # 「ダメな情報って何？」 asks for something other than a term's meaning
        shape = s
        break
    ask = next((s for s in reversed(_SENTENCE_END.split(text.strip())) if re.search(r"[?？]", s)), "").strip()
    part = QuestionPart(text=text, shape=shape, term=term if shape == "definition" else None, ask=ask or text.strip())
    if shape == "enumeration":
        named = [t for t in ("必須", "推奨") if t in folded]
        # One level named alone limits the list; both, or 「推奨も含めて」, ask for all of it.
        part.tags = named if len(named) == 1 and not re.search(named[0] + "も", folded) else []
    if shape == "figure":
        m = _COUNTER.search(folded)
        if _MONEY_ASK.search(folded):
            part.counter = "円"
        else:
            part.counter = m.group(1) if m else ("日付" if _DATE_ASK.search(folded) else None)
    return part


def _split(question: str, rules: ShapeRules) -> list[str]:
    marks = re.compile(rules.split.question_marks)
    pieces: list[str] = []
    start = 0
    for m in marks.finditer(question):
        pieces.append(question[start : m.end()])
        start = m.end()
    pieces.append(question[start:])
    parts: list[str] = []
    connective = re.compile(rules.split.connectives)
    for piece in pieces:
        cut = 0
        for m in connective.finditer(piece):
            if m.start() == 0:
                cut = m.end()  # 「また、…」 opening a piece: the connective is not part of the ask
            elif len(piece[cut : m.start()].strip(" 、。,")) >= rules.split.min_part_chars:
                parts.append(piece[cut : m.start() + (1 if piece[m.start()] in "。、,，" else 0)])
                cut = m.end()
        parts.append(piece[cut:])
    parts = [p.strip(" 　、,") for p in parts]
    merged: list[str] = []
    carried = ""  # an instruction or context before the first ask goes with that ask
    for p in parts:
        asks = bool(_ASKS.search(re.sub(r"[\s。、]+$", "", p)))
        if merged and not asks:
            merged[-1] += p
            continue
        if not merged and not asks and p is not parts[-1]:
            carried += p
            continue
        p = carried + p
        carried = ""
        if len(re.sub(r"[\s?？。、]", "", p)) < rules.split.min_part_chars:
            if merged:
                merged[-1] += p
            elif p:
                merged.append(p)
            continue
        merged.append(p)
    return [m for m in merged if m.strip()] or [question]


def asked_counters(text: str) -> set[str]:
    """The units a question asks a count of: 「研修は何時間？」 → {"時間"}."""
    return set(_COUNTER.findall(nfkc(text)))


def analyse_question(question: str, *, rules: ShapeRules | None = None) -> list[QuestionPart]:
    """Split ``question`` into its asks and give each a shape.

    A question holding one ask comes back as one part; the shape of a part is the first
    rule of the shapes file that matches it (``open_fact`` when none does).
    """
    rules = rules or load_shape_rules()
    return [_shape_of(p, rules) for p in _split(question.strip(), rules)]
