"""Answers built from the documents' own structure: the items of a section, a table row, a
definition, the clause that permits or forbids — quoted verbatim, each with its citation.

One composer per question shape (:mod:`service.answer.shape`). Each returns
:class:`ComposedPart` objects whose pieces are exact spans of the units they cite; nothing
here writes a fact. The model, if any, later only adds a lead sentence to a may-I part,
checked against its pieces (:mod:`service.answer.lead`).

The office's own rules come first: when a document marked ``binding`` answers a part,
its pieces lead and the national guidance follows, labelled as such.

    >>> composer = Composer(searcher, tokenizer)                            # doctest: +SKIP
    >>> parts = composer.compose("設計開発の必須事項は？", flt=QueryFilter(access=["public"]))  # doctest: +SKIP
    >>> [p.text for p in parts[0].pieces]                                   # doctest: +SKIP
    ['[必須] 適切な設計による性能の確保', ...]
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from index.display import citation_label
from index.naming import NamedDocuments
from index.search import Searcher, SearchHit, SearchResult
from index.store import QueryFilter
from index.text import article_caption, bare_section, section_names
from index.tokenizer import JapaneseTokenizer
from ingest.cleaning import arabic_counts, nfkc, squash
from ingest.sentences import LIST_MARKER, split_sentences
from service.answer.coverage import MIN_DENSE, Coverage, assess_coverage
from service.answer.polarity import polarity
from service.answer.shape import QuestionPart, analyse_question, asked_counters
from service.models import Citation

__all__ = ["Piece", "ComposedPart", "Composer", "MAX_ITEMS_SHOWN"]

#: An enumeration longer than this shows its first items, the total, and the rest on request.
MAX_ITEMS_SHOWN = 12
#: The office's rules answer a question the corpus covers when their best clause is this close (in
#: cosine) to the best clause of all; e5's scores sit in a narrow band, so this is a small step.
LOCAL_DENSE_MARGIN = 0.02
#: A comparison shows at most this many documents side by side.
MAX_COMPARED = 6
#: A section holding more units than this is too broad to list as "the items" of anything.
MAX_SECTION_UNITS = 40
_ITEM_LINE = re.compile(r"^\s*(?:[(（][0-9０-９一二三四五六七八九十]+[)）]|[⑴-⒇①-⑳]|[一二三四五六七八九十]+[\s　]|[イロハニホヘトチリヌ][\s　]|[-・•✓✔☑])")
_DIGIT = re.compile(r"[0-9０-９]|[一二三四五六七八九十百千]+(?:件|割|人|年|月|日|回|府省庁|団体)")
_DATE = re.compile(r"(?:令和|平成|昭和)\s*[0-9０-９元]+\s*年|[0-9０-９]{4}\s*年|[0-9０-９]+\s*月|[0-9０-９]+\s*日|年度")
# What a comparison question says about comparing, left out of what each document is searched for.
_COMPARISON_WORDS = re.compile(
    r"(?:で|と|では)?(?:どう|何か|なにか)?(?:違う|違い|ちがう|比べる|比べて|比較|異なる|同じ(?:こと)?|共通)[^、。？?]{0,12}[？?]?|それぞれ[^、。？?]{0,10}[？?]?|両方[^、。？?]{0,8}[？?]?|[？?]"
)
_LEGAL_HEAD = re.compile(r"^(?:第[0-9一二三四五六七八九十百]+[章節款目条項号]|附則|別表|様式)")
# 「別表第1に掲げる」: a provision that hands its list to a table.
_TABLE_REFERENCE = re.compile(r"(別表第?[0-9０-９一二三四五六七八九十]*)(?:に|の|で|を)")
# The part of a path segment that a citation carries: 「第17条」「第1項」「第2号」「第3」 (not 章・節).
_PROVISION_HEAD = re.compile(r"^第[0-9]+(?:条(?:の[0-9]+)*|項|号|(?:の[0-9]+)*(?=[(（]|$))")
# A transitional provision names the provision it applies: 「改正後の第17条第1項の規定は、…適用する」.
_APPLIES_PROVISION = re.compile(r"(第[0-9]+条(?:の[0-9]+)?(?:第[0-9]+項)?)の規定(?:は|を)[^。]*適用")
# A form names the provision it is made under: 「…規程第8条第1項の規定により、次のとおり申請します」.
_FORM_AUTHORITY = re.compile(r"(第[0-9]+条(?:の[0-9]+)?(?:第[0-9]+項)?)(?:の規定|に基づ|により)")
_PARAGRAPH_SEGMENT = re.compile(r"第[0-9一二三四五六七八九十]+項(?:[(（][^)）]*[)）])?$")
# A 項 that opens by pointing back at the one before it: 「2 前項の…」「3 前2項の規定にかかわらず…」.
_BUILDS_ON_PREVIOUS = re.compile(r"^\s*[0-9]+\s*[^。]{0,20}?(?:前項|前[0-9二三四五]項|前各項)")
_TIME_COUNTERS = ("年", "か月", "ヶ月", "カ月", "月", "日", "時間")
_REFERS_BACK = re.compile(r"^(?:そのうち|その中で|その中の|そのほか|それ|その|これ|あれ|で、|では|じゃあ|なら)")
_MONEY = re.compile(r"[0-9０-９,，.]+\s*(?:円|万円|億円|ドル|千円)|(?:料金|費用|価格|金額|負担額|単価)[^。]{0,12}[0-9０-９]")
# The article a rule opens with, saying what it is for: 「第1条（目的）」「第1条（趣旨）」.
_PURPOSE_ARTICLE = re.compile(r"第[1一]条[(（](?:目的|趣旨)[)）]")
_ASKS_PURPOSE = re.compile(r"目的|趣旨|なぜ|何のため|ねらい")
# 「何を入れておけばいい？」「どんな情報がダメ？」: asks for what a provision lists, not about one case of it.
_ASKS_WHICH = re.compile(r"何|なに|なん|どれ|どんな|どういう|どの|一覧|全部|すべて")
# 「いつから施行？」「要綱っていつから？」「改正されてる？」: asks when a rule came into force, or whether it was amended.
_ASKS_ENACTMENT = re.compile(
    r"施行|効力|(?:規程|要綱|条例|規則|基準|要領|訓令|告示)[^?？。]{0,8}いつ|改正(?:され|って|は|の有無|履歴|の経過)|制定(?:され|日|は|って)"
)
# The 附則 provision that fixes the day: 「この訓令は、令和6年4月1日から施行する。」
_ENFORCES = re.compile(r"施行する|施行し|効力を(?:生ずる|有する)")
# 「試行の時から使ってたけど、規程ができたら改めて申請？」「改正前のログも？」: what was under way before the rule.
_ASKS_TRANSITION = re.compile(
    r"(?:改正|施行|制定|規程|要綱|条例|規則|要領|ルール)(?:の|が)?(?:前|まで)|(?:以前|前|時)から[^。？?]{0,24}(?:改めて|引き続き|そのまま|続け|ダメ|必要)"
    r"|(?:規程|要綱|条例|規則|要領|ルール)が?でき(?:る|た)|経過措置|従前"
)
# A transitional provision (経過措置): what the rule does to what existed when it came into force.
_TRANSITIONAL = re.compile(r"施行の際|際現に|従前の例|経過措置|みなす|なお(?:その)?効力|改正前|改正後")
_DEFINES = re.compile(r"とは|をいう|のことを?いう|のこと[。、]|を指す|を意味する|と定義")


@dataclass
class Piece:
    """One verbatim piece of a unit, as shown in an answer.

    ``text`` is an exact span of the unit's text (a sentence, a list line, a checklist item's
    title) — or, for a table row, its lead cell and the cells asked for, each verbatim.
    """

    unit: dict[str, Any]
    text: str
    role: str = "quote"  # item | definition | figure | rule | quote | nearest
    score: float = 0.0
    scope: str = "general"  # local (the office's binding rules) | named | general
    own_label: str = ""  # a 号 listed inside its 項's unit is cited as 第8条第5号

    @property
    def unit_id(self) -> str:
        return self.unit["id"]

    @property
    def label(self) -> str:
        return self.own_label or citation_label(self.unit)


@dataclass
class ComposedPart:
    """What answers one part of a question: its shape, pieces and what to say around them."""

    question: str
    shape: str
    covered: bool
    pieces: list[Piece] = field(default_factory=list)
    total: int = 0  # enumeration: how many items the section holds
    heading: str = ""
    notes: list[str] = field(default_factory=list)
    lead: str | None = None
    lead_source: str | None = None  # the unit the lead stands on (cited beside it)
    columns: list[tuple[str, bool]] = field(default_factory=list)  # comparison: (doc_id, says something)
    coverage: Coverage | None = None
    hits: list[SearchHit] = field(default_factory=list)


def _first_sentence(text: str, limit: int = 120) -> str:
    sentences = split_sentences(text)
    if not sentences:
        return text.strip()[:limit]
    first = sentences[0]
    return first if len(first) <= limit else first[:limit].rstrip("、") + "…"


def _list_lines(text: str) -> list[str]:
    """The numbered or bulleted lines of a unit (its 号 or items), verbatim, markers of bullets dropped."""
    lines = [line.strip() for line in text.splitlines()]
    items = [line for line in lines[1:] if _ITEM_LINE.match(line)] if len(lines) > 1 else []
    return [LIST_MARKER.sub("", line).strip() if re.match(r"^[-・•✓✔☑]", line) else line for line in items]


_ITEM_NUMBER = re.compile(r"^\s*(?:[(（]([0-9０-９]+)[)）]|([⑴-⒇])|([一二三四五六七八九十]+)[\s　])")
_KANJI_DIGITS = {c: i for i, c in enumerate("〇一二三四五六七八九")}


def _item_label(unit: dict[str, Any], line: str) -> str:
    """「第8条第5号」 for the 号 line 「五 …」 of the rule unit labelled 第8条 (empty otherwise)."""
    base = unit.get("label") or ""
    m = _ITEM_NUMBER.match(line)
    if not base or not m or "号" in base:
        return ""
    if m.group(1):
        n = int(nfkc(m.group(1)))
    elif m.group(2):
        n = ord(m.group(2)) - ord("⑴") + 1
    else:
        k = m.group(3)
        tens, _, ones = k.partition("十")
        n = (_KANJI_DIGITS.get(tens, 1) * 10 + _KANJI_DIGITS.get(ones, 0)) if "十" in k else _KANJI_DIGITS.get(k, 0)
    return f"{base}第{n}号" if n else ""


def _answer_sentences(unit: dict[str, Any]) -> list[str]:
    """The sentences of a unit that can answer: in a question-and-answer unit, the answer's.

    A Q&A unit repeats the question it answers; its question lines match a staff question
    best and answer it least.
    """
    sentences = split_sentences(unit["text"])
    if unit.get("kind") != "qa":
        return sentences
    lines = unit["text"].splitlines()
    start = next((i for i, line in enumerate(lines) if LIST_MARKER.sub("", line).lstrip().startswith(("→", "⇒", "A.", "A：", "回答", "答"))), None)
    if start is None:
        return sentences
    answer = split_sentences("\n".join(lines[start:]))
    return answer or sentences


#: A word held by more than about one unit in ten (IDF below log 10) is too common to be a question's focus.
COMMON_WORD_WEIGHT = math.log(10)
# A body of the office named in a question: 各課, 情報政策課, 総務部, 秘書広報室 (and its head, 課長).
_OFFICE_NAME = re.compile(r"[一-龥ァ-ヶー]{0,8}(?:課|部|局|室|係|班)(?:長)?(?=[がはのにでもへと、。?？]|$)")
#: Added to a sentence whose stance is what the question asks for (may I → any; what is needed → a duty).
STANCE_BONUS = 0.15
# 「…登録を受けることができる」「第1項の申請をすることができる」: an act a provision allows; whoever
# would do it is 「…を受けようとする者」「…をしようとする職員」 where the rules say what they must do first.
_MAY_DO = re.compile(r"(?P<act>[一-龥ァ-ヶー]{1,10})(?P<wo>を)?(?P<verb>受ける|する|行う)ことができる")
_INTENDING = {"受ける": "受けようとする", "する": "しようとする", "行う": "行おうとする"}
#: At most this many prerequisites follow a may-I answer's provisions.
MAX_PREREQUISITES = 2
_ASKS_TERMS = re.compile(r"定義|用語|言葉|意味|(?<!こ)とは|って何|ってなに")
# A provision named in a question: 「第13条」「第11条第3項」「第7条の2」 (kanji numbers read first);
# 「個人情報保護法第2条」 is a law's, not the rule's.
_ASKED_PROVISION = re.compile(r"(?<![法令])第[0-9]+条(?:の[0-9]+)?(?:第[0-9]+項)?")
# A may-I about using a service: 「ChatGPTの無料版を使っていい？」「ネットの翻訳AIなら使っていいよね？」.
_USES_SERVICE = re.compile(r"(?:[A-Za-z]{3,}|無料|ネット|アプリ|サービス|ツール|翻訳AI|画像生成AI)[^?？。]{0,20}(?:使|利用)")
# The provision limiting the services staff may use, however worded: 「職員が業務に利用することができる生成AIは、
# …に限る。」「業務に使用する生成AIサービスは、…に限るものとする。」「利用できる生成AIのサービスは…に限られる。」
_SERVICE_LIMIT = re.compile(r"(?:利用|使用)[^。、]{0,12}生成AI[^。、]{0,12}は、?[^。]{0,60}に限(?:る|られる)")
#: At most this many duties from other articles follow an article's items (「何が必要？」).
MAX_OTHER_OBLIGATIONS = 2
# 「何が必要？」「どうすればいい？」「何をしないといけない？」: what the asker must do.
_ASKS_NEEDS = re.compile(r"必要|要る|いる[?？]|何をすれば|どうすれば|すべきこと|しないと(?:いけない|だめ|ダメ)|しなきゃ|守る|注意")
#: A 号 this short whose words the question holds verbatim (「一 個人情報」) names what was asked: its
#: share of the question's words is raised by the bonus.
NAMED_ITEM_CHARS = 16
NAMED_ITEM_BONUS = 0.3
#: Taken off a sentence that holds none of the words of the question's ask when others do.
UNASKED_PENALTY = 0.2
#: A provision of a rule (one 項, or one 号) up to this long is quoted whole rather than a sentence of it.
WHOLE_PROVISION_CHARS = 300


_PROVISO = re.compile(r"^\s*(?:ただし|この場合において)")


def _article_of(unit: dict[str, Any]) -> tuple[str, str]:
    """The document and article a rule's unit belongs to (「第9条」 of 「第9条第2項」)."""
    m = re.match(r"(第[0-9]+条(?:の[0-9]+)*)", nfkc(unit.get("label") or ""))
    return unit["doc_id"], m.group(1) if m else (unit.get("label") or unit["id"])


def _is_topic_noun(token: str) -> bool:
    # Nouns carry the topic (kanji, katakana, names); verbs and short codes (入れる, r7) vary
    # with the asker's wording.
    return len(token) >= 2 and not re.search(r"[\u3040-\u309f]", token) and not (token.isascii() and len(token) < 3)


def _sentence_before(text: str, sentence: str) -> str:
    """The sentence of ``text`` just before ``sentence`` ("" when it is the first)."""
    sentences = split_sentences(text)
    i = sentences.index(sentence) if sentence in sentences else 0
    return sentences[i - 1] if i > 0 else ""


def _caption(unit: dict[str, Any]) -> str:
    """The 見出し of the article a rule's unit belongs to (「利用の申請等」 of 「第8条（利用の申請等）」), or ""."""
    return article_caption(unit["section_path"]) if unit.get("label") else ""


_CHAPTER = re.compile(r"^第[0-9０-９一二三四五六七八九十百]+[章節款]\s*")


def _headings(unit: dict[str, Any]) -> str:
    """What a rule's unit is about by its headings: its article's 見出し and the names of the
    章・節 it stands in (「利用の手続」 of 「第二章 利用の手続」), or ""."""
    if not unit.get("label"):
        return ""
    chapters = [_CHAPTER.sub("", nfkc(p)) for p in unit["section_path"][1:] if _CHAPTER.match(nfkc(p))]
    return " ".join([_caption(unit), *chapters])


def _stance(piece: Piece) -> set[str]:
    """What ``piece`` permits, conditions or forbids; a 号 takes its provision's lead-in's stance
    (「次に掲げる事務に生成AIを利用してはならない。」 forbids each of the 号 below it)."""
    own = polarity(piece.text)
    if own or piece.text not in _list_lines(piece.unit["text"]):
        return own
    lead = split_sentences(piece.unit["text"])
    return polarity(lead[0]) if lead else set()


def _whole_provisions(pieces: list[Piece], *, one_item: bool = False) -> list[Piece]:
    """A sentence of a short provision of a rule becomes the whole provision (its 項 with its 号,
    its ただし書): a rule is cited as it stands, never cut mid-article. Two sentences of one
    provision become one piece. With ``one_item`` (the question is about one case, not 「何が…」),
    a 号 that answers is quoted with its provision's lead-in alone and cited as that 号."""
    out: list[Piece] = []
    seen: set[str] = set()
    for p in pieces:
        unit = p.unit
        item_label = _item_label(unit, p.text) if one_item and p.role != "item" and p.text in _list_lines(unit["text"]) else ""
        if item_label and unit["id"] not in seen:
            # The sentence that answers is one 号 of the provision: its lead-in and that 号, cited
            # as 第8条第5号 (the other 号 answer other questions).
            seen.add(unit["id"])
            out += [Piece(unit, _first_sentence(unit["text"], limit=300), role=p.role, score=p.score, scope=p.scope),
                    Piece(unit, p.text, role=p.role, score=p.score, scope=p.scope, own_label=item_label)]
            continue
        if p.role != "item" and unit.get("label") and unit["kind"] != "table_row" and len(unit["text"]) <= WHOLE_PROVISION_CHARS:
            if unit["id"] in seen:
                continue
            seen.add(unit["id"])
            p = Piece(unit, unit["text"].strip(), role=p.role, score=p.score, scope=p.scope)
        out.append(p)
    return out


def _quoted_share(text: str) -> float:
    """Share of ``text`` inside 『』 or 「」 (a bibliography line is mostly a quoted title)."""
    inside = sum(len(m) for m in re.findall(r"『[^』]*』|「[^」]*」", text))
    return inside / max(len(text), 1)


def _cells(text: str) -> str:
    """A tab-separated row shown as its cells joined by 「 / 」 (each cell verbatim)."""
    return " / ".join(c.strip() for c in text.strip().split("\t") if c.strip())


def _item_text(unit: dict[str, Any]) -> str:
    """The short verbatim line naming one item: a checklist item's title line, a table row's cells,
    else the first sentence."""
    if unit["kind"] == "table_row":
        return _cells(unit["text"])
    if unit.get("title") and unit["kind"] == "clause":
        first = LIST_MARKER.sub("", unit["text"].splitlines()[0]).strip()
        return first if len(first) <= 120 else first[:120] + "…"
    return _first_sentence(unit["text"])


class Composer:
    """Composes cited answer parts from retrieval; the same for the API, the CLI and eval.

    Args:
        searcher: the live index (search, section lookup, sentence vectors, documents).
        tokenizer: the Japanese tokenizer the index uses.
        top_k: how many units each part's retrieval considers.
    """

    def __init__(self, searcher: Searcher, tokenizer: JapaneseTokenizer, *, top_k: int = 8):
        self.searcher = searcher
        self.tokenizer = tokenizer
        self.top_k = top_k

    # ------------------------------------------------------------------ entry point
    def compose(
        self,
        question: str,
        *,
        flt: QueryFilter,
        first: SearchResult | None = None,
        parts: list[QuestionPart] | None = None,
    ) -> list[ComposedPart]:
        """Compose every part of ``question``.

        Args:
            flt: the caller's access (and request) filter; nothing outside it is read.
            first: the search already run for the whole question (reused for a one-part question).
            parts: the question's parts (default: :func:`analyse_question`).
        """
        parts = parts or analyse_question(question)
        # 「町のAI、一回承認もらえばずっと使える？毎年出し直し？」: a part that names no document
        # asks about the one the question names elsewhere.
        whole = self.searcher.named_documents(question, flt=flt) if len(parts) > 1 else None
        composed: list[ComposedPart] = []
        for i, part in enumerate(parts):
            query = part.text
            if i > 0 and (len(self._topic_nouns(part.text)) < 2 or _REFERS_BACK.match(nfkc(part.text))):
                # 「何を議論した？」「そのうち特化型1は？」「毎年受けなきゃだめ？」 lean on the part before
                # for their topic.
                query = parts[i - 1].text + part.text
            reuse = first if (len(parts) == 1 and first is not None) else None
            composed.append(self._compose_part(part, query, flt, reuse, whole=whole))
        return composed

    def rule_clauses(self, question: str, parts: list[ComposedPart], cited: list[Citation], flt: QueryFilter) -> list[ComposedPart]:
        """``parts`` with the office's articles a verdict rests on (``cited``) quoted first.

        A verdict decided by the office's policy states the rule in the administrator's words;
        the article itself is quoted beneath it (the whole provision when short and without 号,
        else its sentence holding the cited words), before whatever else the question's parts found.
        """
        units = {u["id"]: u for u in self.searcher.get_units([c.unit_id for c in cited], flt=flt)}
        shown = {p.unit_id for part in parts for p in part.pieces}
        pieces: list[Piece] = []
        for c in cited:
            unit = units.get(c.unit_id)
            if unit is None or unit["id"] in shown:
                continue
            text = unit["text"].strip()
            if len(text) > WHOLE_PROVISION_CHARS or _list_lines(text):
                # The verdict's reason names the 号 that decides; its lead-in is the rule quoted.
                text = next((s for s in split_sentences(text) if squash(c.quote) in squash(s)), c.quote)
            pieces.append(Piece(unit, text, role="rule", scope="local"))
        if not pieces:
            return parts
        if not parts:
            return [ComposedPart(question=question, shape="may_i", covered=True, pieces=pieces)]
        first = parts[0]
        return [ComposedPart(**{**first.__dict__, "pieces": pieces + first.pieces}), *parts[1:]]

    # ------------------------------------------------------------------ one part
    def _search(self, query: str, flt: QueryFilter, *, doc_ids: list[str] | None = None, top_k: int | None = None) -> SearchResult:
        f = flt
        if doc_ids is not None:
            wanted = [d for d in doc_ids if not flt.doc_ids or d in flt.doc_ids]
            f = QueryFilter(access=flt.access, doc_ids=wanted or ["\x00none"], issuers=flt.issuers, kinds=flt.kinds, tags=flt.tags)
        return self.searcher.search(query, top_k=top_k or self.top_k, flt=f)

    def _compose_part(
        self, part: QuestionPart, query: str, flt: QueryFilter, reuse: SearchResult | None, *, whole: NamedDocuments | None = None
    ) -> ComposedPart:
        result = reuse if reuse is not None and len(reuse.hits) >= self.top_k else self._search(query, flt)
        named = self.searcher.named_documents(query, flt=flt)
        if whole is not None and not named.doc_ids and not named.unknown and whole.doc_ids:
            named = NamedDocuments(doc_ids=list(whole.doc_ids), own_office=whole.own_office)
        docs = self.searcher.documents(flt=flt)
        unknown = list(result.unknown_entities) + named.unknown
        coverage = assess_coverage(result.hits, unknown_entities=unknown)
        shape = part.shape
        named_ids = [d for d in named.doc_ids if d in docs]
        if shape != "comparison" and len({docs[d].issuer for d in named_ids}) >= 2 and not named.own_office:
            shape = "comparison"
        out = ComposedPart(question=part.ask or part.text, shape=shape, covered=False, coverage=coverage, hits=result.hits)
        if named.unknown:
            out.notes.append(f"「{'」「'.join(named.unknown)}」の文書は登録されていません。")
            return self._nearest(out, query, result.hits)
        if shape == "comparison":
            return self._comparison(out, query, flt, named_ids or self._docs_in(result.hits))

        # The office's own rules first, then the documents the question names, then everything.
        scopes: list[tuple[str, SearchResult]] = []
        binding = [d.doc_id for d in docs.values() if d.authority == "binding"]
        # Within a named document its name matches every clause: search by what is asked of it.
        topic = named.topic(query) if named_ids else query
        topic = topic if len(self._terms(topic)) >= 1 else query
        own_only = bool(named_ids) and set(named_ids) <= set(binding)
        if own_only:
            # 「本市の規程では」「村の研修は」: asked about the office's own rules, answered from them
            # alone; national guidance on the same topic does not say what the office decided.
            scopes.append(("local", self._search(topic, flt, doc_ids=named_ids)))
        else:
            if binding:
                # Even when another body's document is named (「都のガイドラインだと…」), the rule
                # that binds the asker comes first.
                scopes.append(("local", self._search(topic, flt, doc_ids=binding)))
            if named_ids:
                scopes.append(("named", self._search(topic, flt, doc_ids=named_ids)))
            scopes.append(("general", result))

        pieces_by_scope: list[tuple[str, ComposedPart]] = []

        def compose_in(scope: str, res: SearchResult, cov: Coverage, *, strict: bool = False) -> ComposedPart:
            sub = ComposedPart(question=part.ask or part.text, shape=shape, covered=True, coverage=cov, hits=res.hits)
            # In the documents it names, a question's 「本市」「汐見野市の」 is where, not what it asks.
            self._by_shape(sub, part, topic if scope != "general" else query, res.hits, flt)
            if strict:
                self._require_focus(sub, topic, flt, strict=True)
            if sub.pieces and sub.covered:
                for p in sub.pieces:
                    # Where a piece stands follows its document, not the search that found it.
                    p.scope = "local" if p.unit.get("authority") == "binding" else ("named" if p.unit["doc_id"] in named_ids else "general")
                pieces_by_scope.append((scope, sub))
            return sub

        passed_over: tuple[SearchResult, Coverage] | None = None
        for scope, res in scopes:
            cov = assess_coverage(res.hits, unknown_entities=unknown) if scope != "general" else coverage
            # Asked about its own rules by name, the office's document is where the answer is or
            # is not; scores against a few dozen clauses say little, the composers' own tests decide.
            # Asked in general terms, a clause of the office's rules about as close as the best of
            # everything is the answer that binds (national guidance would answer otherwise).
            near_general = (
                scope == "local" and coverage.covered and not unknown and bool(res.hits)
                and max(h.dense_score for h in res.hits[:3]) >= coverage.best_dense - LOCAL_DENSE_MARGIN
            )
            # A figure or a definition carries its own test (a number with the counter asked for, a
            # clause defining the term): in the office's rules that test decides, not the scores.
            # So does an article whose 見出し the question says in full (「使っちゃダメな業務」: 利用の制限).
            # And so does a may-I about using a service (「ChatGPTの無料版を使っていい？」): the office's
            # article limiting the services staff may use is the answer, whatever else scores higher.
            self_tested = scope == "local" and bool(res.hits) and not unknown and (
                shape in ("figure", "definition") or any(h.unit_id in res.captioned for h in res.hits[:3])
                or (shape == "may_i" and bool(_USES_SERVICE.search(nfkc(query))))
            )
            if not cov.covered and not (own_only and res.hits and not unknown) and not near_general and not self_tested:
                if scope == "local" and res.hits and not unknown:
                    passed_over = (res, cov)
                continue
            sub = compose_in(scope, res, cov)
            if scope == "named" and sub.pieces:
                break  # the question asked about that document; do not pad with others
        if not pieces_by_scope and passed_over is not None:
            # Nothing else answers (「私物のスマホからつないでいい？」「都のガイドラインだと研修は？」):
            # the office's rules are where the answer is or is not, as when they are named, if a
            # clause of them holds the question's rare word.
            compose_in("local", *passed_over, strict=True)
        if not pieces_by_scope:
            if own_only:
                out.notes.append("本団体の規程には、この点についての記載が見つかりませんでした。")
                return self._nearest(out, topic, scopes[0][1].hits)
            return self._nearest(out, query, result.hits)
        merged = self._merge_scopes(out, pieces_by_scope)
        if not own_only:
            # 「国のガイドラインだとどうなってる？」 answered by the office's rule alone: say that the
            # document asked about is silent, rather than leave it unsaid.
            shown = {p.unit["doc_id"] for p in merged.pieces}
            merged.notes += [f"「{docs[d].title}」には、この点についての記載が見つかりませんでした。" for d in named_ids if d not in shown]
        return merged

    def _by_shape(self, out: ComposedPart, part: QuestionPart, query: str, hits: list[SearchHit], flt: QueryFilter) -> None:
        self._by_shape_pieces(out, part, query, hits, flt)
        # Provisions are quoted whole and with what they cannot be read without, unless they are a
        # list's items (an enumeration that found no list answers as an open fact does).
        if not any(p.role == "item" for p in out.pieces):
            chosen = _whole_provisions(out.pieces, one_item=out.shape == "may_i" and not _ASKS_WHICH.search(nfkc(out.question)))
            only = {p.unit_id for p in chosen}
            pieces = self._with_referenced_rows(self._with_continuations(chosen, flt), query, flt, only=only)
            out.pieces = self._with_prerequisites(pieces, flt, only=only) if out.shape == "may_i" else pieces

    def _by_shape_pieces(self, out: ComposedPart, part: QuestionPart, query: str, hits: list[SearchHit], flt: QueryFilter) -> None:
        shape = out.shape
        if shape != "figure" and self._asked_provision(out, query, hits, flt):
            return
        hits = self._with_form_provisions(hits, flt)
        if shape != "enumeration" and _ASKS_ENACTMENT.search(nfkc(query)) and self._enactment(out, hits, flt):
            return
        if _ASKS_TRANSITION.search(nfkc(query)) and self._transition(out, query, hits, flt):
            return
        if shape == "enumeration" and self._enumeration(out, part, query, hits, flt):
            if _ASKS_NEEDS.search(nfkc(query)):
                out.pieces += self._other_obligations(out.pieces, query, hits, flt)
            return
        if shape == "definition" and self._definition(out, part, query, hits, flt):
            return
        if shape == "figure":
            if not self._figure(out, part, query, hits, flt):
                # The figure asked for is in none of the passages found: not covered, whatever
                # else they say (the honest answer to 「いくらかかる？」 with no price anywhere).
                out.covered = False
            else:
                self._require_focus(out, query, flt)  # a date, but of something else
            return
        if shape == "may_i" and self._may_i(out, query, hits, flt):
            return
        self._open_fact(out, query, hits, flt)
        self._require_focus(out, query, flt)

    def _merge_scopes(self, out: ComposedPart, found: list[tuple[str, ComposedPart]]) -> ComposedPart:
        """Local rule first, then the rest; enumerations and figures answer from the first scope alone."""
        out.covered = True
        first_scope, first = found[0]
        out.shape = first.shape
        out.total = first.total
        out.heading = first.heading
        out.notes += first.notes
        out.pieces = list(first.pieces)
        if first.shape in ("enumeration", "figure") or len(found) == 1:
            return out
        seen = {p.unit_id for p in out.pieces} | {squash(p.text) for p in out.pieces}
        for _, sub in found[1:]:
            # A sentence repeated in several sections of a document is shown once.
            extra = [p for p in sub.pieces if p.unit_id not in seen and squash(p.text) not in seen][:2]
            out.pieces += extra
            seen |= {p.unit_id for p in extra} | {squash(p.text) for p in extra}
        if first_scope == "local" and any(p.scope == "general" for p in out.pieces):
            local_stance = set().union(*(polarity(p.text) for p in out.pieces if p.scope == "local"))
            general_stance = set().union(*(polarity(p.text) for p in out.pieces if p.scope == "general"))
            if "forbid" in local_stance and "forbid" not in general_stance and general_stance & {"permit", "condition"}:
                out.notes.append("本団体の規程は国等のガイドラインより厳しく定めているため、規程に従ってください。")
        return out

    def _nearest(self, out: ComposedPart, query: str, hits: list[SearchHit]) -> ComposedPart:
        """Not covered: keep the nearest sentence, to be shown under a plain label, never as an answer."""
        out.covered = False
        if hits:
            ranked = self._rank_sentences(query, hits[:3])
            if ranked:
                best = ranked[0]
                best.role = "nearest"
                best.scope = "local" if best.unit.get("authority") == "binding" else "general"
                out.pieces = [best]
        return out

    # ------------------------------------------------------------------ enumeration
    def _enumeration(self, out: ComposedPart, part: QuestionPart, query: str, hits: list[SearchHit], flt: QueryFilter) -> bool:
        units = self._named_section_units(query, flt) or self._referenced_table_rows(hits, flt) or self._common_section_units(hits, flt, query)
        tags_held = False
        if units and part.tags:
            tagged = [u for u in units if set(part.tags) & set(u.get("tags") or [])]
            # A section none of whose items is marked [必須] is listed whole, and not called [必須].
            tags_held = bool(tagged)
            units = tagged or units
        items: list[Piece] = []
        for u in units or []:
            lines = _list_lines(u["text"]) if not u.get("title") else []
            if len(lines) >= 2 and len(units) <= 3:
                items += [Piece(u, line, role="item", own_label=_item_label(u, line)) for line in lines]
            else:
                items.append(Piece(u, _item_text(u), role="item"))
        if len(items) < 2:
            # No section to list: the best unit may hold the list itself (its 号 or bullets); a
            # list further down is about something else (「委託するときの契約事項」 for 「載せるときの注意」).
            for h in hits[:1]:
                lines = _list_lines(h.unit["text"])
                if len(lines) >= 2:
                    head = _first_sentence(h.unit["text"])
                    items = [Piece(h.unit, head, role="quote")] + [Piece(h.unit, line, role="item", own_label=_item_label(h.unit, line)) for line in lines]
                    break
        if len([p for p in items if p.role == "item"]) < 2:
            return False
        out.total = sum(1 for p in items if p.role == "item")
        out.pieces = items
        # The section the items share (the article, for its 項), not the last item's own path.
        common = os.path.commonprefix([p.unit["section_path"] for p in items])
        section = self._section_name({**items[-1].unit, "section_path": common} if len(common) > 1 else items[-1].unit)
        level = "・".join(f"[{t}]" for t in part.tags) if tags_held else ""
        out.heading = f"{section}{('の' + level) if level else ''}の項目（{out.total}件）" if section else f"該当する項目（{out.total}件）"
        return True

    def _other_obligations(self, listed: list[Piece], query: str, hits: list[SearchHit], flt: QueryFilter) -> list[Piece]:
        """Duties in other articles of the same rules that the question's topic falls under.

        「画像を広報紙に使いたい。何が必要？」: the article on images lists the approval; the
        article on labelling what was generated applies too. A provision found for the question
        that obliges (「…しなければならない」) and holds one of its focus words is added, whole.
        """
        articles = {_article_of(p.unit) for p in listed if p.unit.get("label")}
        docs = {p.unit["doc_id"] for p in listed if p.unit.get("label")}
        if not articles:
            return []
        focus, _ = self._focus(query, flt)
        if not focus:
            return []
        extra: list[Piece] = []
        for h in hits[:8]:
            u = h.unit
            if u["doc_id"] not in docs or not u.get("label") or _article_of(u) in articles or u["kind"] == "table_row":
                continue
            if (u.get("label") or "").startswith(("附則", "様式", "別表")) or len(u["text"]) > WHOLE_PROVISION_CHARS:
                continue
            lead = split_sentences(u["text"])[:1]
            if not lead or "oblige" not in polarity(lead[0]) or not set(focus) & self._terms(u["text"]):
                continue
            articles.add(_article_of(u))
            extra.append(Piece(u, u["text"].strip(), role="rule", score=h.score))
            if len(extra) == MAX_OTHER_OBLIGATIONS:
                break
        return extra

    def _named_section_units(self, query: str, flt: QueryFilter) -> list[dict[str, Any]]:
        names, ids = self.searcher.sections_named(query)
        if not ids or len(ids) > MAX_SECTION_UNITS:
            return []
        units = {u["id"]: u for u in self.searcher.get_units(ids, flt=flt)}
        wanted = set(names)
        ordered: list[tuple[tuple[str, int], dict[str, Any]]] = []
        for uid, u in units.items():
            # The occurrence under the named sections decides where the item stands.
            occ = next(
                (p for p in (u.get("provenance") or []) if wanted <= {n for s in p["section_path"][1:] for n in section_names(s)}),
                {"section_path": u["section_path"], "line_start": u["line_start"]},
            )
            shown = {**u, "section_path": occ["section_path"], "line_start": occ["line_start"], "line_end": occ.get("line_end", u["line_end"])}
            ordered.append(((u["doc_id"], occ["line_start"]), shown))
        return [u for _, u in sorted(ordered, key=lambda x: x[0])]

    def _referenced_table_rows(self, hits: list[SearchHit], flt: QueryFilter) -> list[dict[str, Any]]:
        """The rows of the 別表 that one of the best provisions hands its list to (「別表第1に掲げる許可サービスに限る」)."""
        for h in hits[:2]:
            m = _TABLE_REFERENCE.search(nfkc(h.unit["text"]))
            if not m or not h.unit.get("label"):
                continue
            rows = self._table_rows(h.unit, m.group(1), flt)
            if len(rows) >= 2:
                return rows
        return []

    def _table_rows(self, unit: dict[str, Any], name: str, flt: QueryFilter) -> list[dict[str, Any]]:
        """The rows, in order, of the table ``name`` (「別表第1」) of ``unit``'s document."""
        prefix = next(
            (o.path[:2] for o in self.searcher.occurrences_under(unit["section_path"][:1], doc_id=unit["doc_id"])
             if len(o.path) >= 2 and nfkc(o.path[1]).replace(" ", "").startswith(name)),
            None,
        )
        if prefix is None:
            return []
        ids = [o.unit_id for o in self.searcher.occurrences_under(prefix, doc_id=unit["doc_id"])]
        return sorted((u for u in self.searcher.get_units(ids, flt=flt) if u["kind"] == "table_row"), key=lambda u: u["line_start"])

    def _with_referenced_rows(self, pieces: list[Piece], query: str, flt: QueryFilter, *, only: set[str]) -> list[Piece]:
        """Each quoted provision of ``only`` (those chosen to answer, not the 項 read with them) that
        hands part of its content to a table (「別表第1の…欄に「機密性2」と記載された許可サービス」)
        followed by the row it means: the rows holding a value it quotes, else the row closest to the question."""
        out: list[Piece] = []
        present = {p.unit_id for p in pieces}
        for i, p in enumerate(pieces):
            out.append(p)
            text = nfkc(p.unit["text"])
            m = _TABLE_REFERENCE.search(text)
            last_of_unit = i + 1 == len(pieces) or pieces[i + 1].unit_id != p.unit_id
            if p.unit_id not in only or not last_of_unit or not p.unit.get("label") or p.unit["kind"] == "table_row":
                continue
            if not m:
                # A table row that names this provision (「第9条第3項ただし書によりCIOが認めたもの」)
                # is the case it was applied to.
                for r in self._rows_naming(p.unit, flt)[:1]:
                    if r["id"] not in present:
                        present.add(r["id"])
                        out.append(Piece(r, _cells(r["text"]), role="quote", score=p.score, scope=p.scope))
                continue
            rows = [r for r in self._table_rows(p.unit, m.group(1), flt) if r["id"] not in present]
            values = [squash(v) for v in re.findall(r"「([^「」]{2,30})」", text)]
            asked = self._terms(query)
            weight = {r["id"]: sum(self.searcher.term_weight(t) for t in asked & self._terms(r["text"])) for r in rows}
            ranked = sorted(rows, key=lambda r: -weight[r["id"]])
            # The row the question singles out (「Copilotに…」), when its words pick one row over the rest …
            by_question = ranked[:1] if ranked and weight[ranked[0]["id"]] > (weight[ranked[1]["id"]] if len(ranked) > 1 else 0) else []
            # … and the row holding a value the provision quotes (「機密性2」と記載された).
            by_value = [r for r in rows if any(v in squash(nfkc(r["text"])) for v in values)][:1]
            picked = list({r["id"]: r for r in by_question + by_value}.values())[:2]
            for r in picked:
                present.add(r["id"])
                out.append(Piece(r, _cells(r["text"]), role="quote", score=p.score, scope=p.scope))
        return out

    def _rows_naming(self, unit: dict[str, Any], flt: QueryFilter) -> list[dict[str, Any]]:
        """Table rows of ``unit``'s document whose cells name its provision (第9条第3項), in order."""
        label = nfkc(unit.get("label") or "")
        if not re.match(r"^第[0-9]+条", label):
            return []
        pattern = re.compile(re.escape(label) + r"(?![0-9の])")
        rows_flt = QueryFilter(access=flt.access, doc_ids=[unit["doc_id"]], kinds=["table_row"])
        return sorted((r for r in self.searcher.iter_units(flt=rows_flt) if pattern.search(nfkc(r["text"]))), key=lambda r: r["line_start"])

    def _common_section_units(self, hits: list[SearchHit], flt: QueryFilter, query: str) -> list[dict[str, Any]]:
        """The units of the deepest section that at least two of the top hits share."""
        top = [h.unit for h in hits[:5]]
        if len(top) < 2:
            return []
        best: tuple[str, ...] | None = None
        lead = top[0]
        for depth in range(len(lead["section_path"]) - 1, 1, -1):
            prefix = tuple(lead["section_path"][:depth])
            if sum(1 for u in top if tuple(u["section_path"][:depth]) == prefix) >= 2:
                best = prefix
                break
        if best is None:
            return []
        if lead.get("label") and not re.match(r"^第[0-9０-９一二三四五六七八九十百]+条", nfkc(best[-1])):
            # In a rule, the items of one article are its 項 and 号; a 章 shared by two provisions
            # is a list of articles about different things, no answer to 「何が必要？」.
            return []
        occ = self.searcher.occurrences_under(best, doc_id=lead["doc_id"])
        ids = list(dict.fromkeys(o.unit_id for o in occ))
        if len(ids) > MAX_SECTION_UNITS or len(ids) < 2:
            return []
        found = {u["id"]: u for u in self.searcher.get_units(ids, flt=flt)}
        if lead.get("label") and any(u["kind"] == "definition" for u in found.values()) and not _ASKS_TERMS.search(nfkc(query)):
            # The 定義 article (its 号 read as definitions by the parser) lists the rule's words,
            # not what to do or watch for.
            return []
        line_of = {}
        for o in occ:
            line_of.setdefault(o.unit_id, (o.path, o.line_start))
        out = []
        for uid in ids:
            if uid in found:
                path, line = line_of[uid]
                out.append({**found[uid], "section_path": list(path), "line_start": line})
        return sorted(out, key=lambda u: u["line_start"])

    @staticmethod
    def _section_name(unit: dict[str, Any]) -> str:
        # A rule's article reads as written (第8条（禁止事項）); other sections without their numbering.
        path = [
            re.sub(r"[(（][^()（）]*関係[)）]$", "", nfkc(s).strip()) if _LEGAL_HEAD.match(nfkc(s)) else bare_section(s)
            for s in unit["section_path"][1:]
        ]
        path = [p for p in path if p and not p.startswith(("必須", "推奨"))]
        if unit.get("title") and path and bare_section(unit["title"]) == path[-1]:
            path = path[:-1]
        return "「" + " > ".join(path[-2:]) + "」" if path else ""

    # ------------------------------------------------------------------ definition
    def _definition(self, out: ComposedPart, part: QuestionPart, query: str, hits: list[SearchHit], flt: QueryFilter) -> bool:
        term = part.term or ""
        ids = self.searcher.glossary_entries(term) if term else []
        units = self.searcher.get_units(ids, flt=flt) if ids else []
        hit_docs = {h.unit["doc_id"]: i for i, h in enumerate(hits)}
        units.sort(key=lambda u: hit_docs.get(u["doc_id"], 99))
        if units:
            out.pieces = [Piece(u, _cells(u["text"]), role="definition", score=1.0) for u in units[:2]]
            return True
        t = squash(term)
        candidates = [
            p for p in self._rank_sentences(query, hits[:5]) if t and t in squash(p.text) and _DEFINES.search(nfkc(p.text))
        ]
        if candidates:
            best = candidates[0]
            best.role = "definition"
            out.pieces = [best]
            return True
        return False

    # ------------------------------------------------------------------ forms (様式)
    def _with_form_provisions(self, hits: list[SearchHit], flt: QueryFilter) -> list[SearchHit]:
        """``hits`` with, after each form among the best (「生成AI利用申請書 …規程第8条第1項の規定により
        …申請します」), the provision it is made under: a form restates a rule; the rule answers."""
        out: list[SearchHit] = []
        present = {h.unit_id for h in hits}
        for h in hits:
            out.append(h)
            label = h.unit.get("label") or ""
            if not label.startswith(("様式", "別記様式")) or h.rank > 5:
                continue
            m = _FORM_AUTHORITY.search(nfkc(h.unit["text"]))
            provision = self._provision(h.unit, m.group(1), flt) if m else None
            if provision is not None and provision["id"] not in present:
                present.add(provision["id"])
                out.append(SearchHit(unit=provision, score=h.score, dense_score=h.dense_score, lexical=h.lexical, matched_terms=[], rank=h.rank))
        return out

    def _provision(self, unit: dict[str, Any], label: str, flt: QueryFilter) -> dict[str, Any] | None:
        """The unit of ``unit``'s rule labelled ``label`` (「第8条第1項」; 「第8条」 is its first 項), outside 附則."""
        found = self._provision_units(unit, label, flt, limit=1)
        return found[0] if found else None

    def _provision_units(self, unit: dict[str, Any], label: str, flt: QueryFilter, *, limit: int = MAX_SECTION_UNITS) -> list[dict[str, Any]]:
        """The units of ``unit``'s rule under ``label`` (「第8条」: its every 項 and 号), in order, outside 附則."""
        wanted = re.sub(r"\s+", "", nfkc(label))
        ids: list[str] = []
        for o in self.searcher.occurrences_under(unit["section_path"][:1], doc_id=unit["doc_id"]):
            if len(o.path) >= 2 and nfkc(o.path[1]).startswith("附則"):
                continue
            heads = "".join(x.group(0) for seg in o.path[1:] if (x := _PROVISION_HEAD.match(nfkc(seg).strip())))
            if (heads == wanted or (heads.startswith(wanted) and not heads[len(wanted):][:1].isdigit())) and o.unit_id not in ids:
                ids.append(o.unit_id)
                if len(ids) >= limit:
                    break
        return self.searcher.get_units(ids, flt=flt) if ids else []

    def _asked_provision(self, out: ComposedPart, query: str, hits: list[SearchHit], flt: QueryFilter) -> bool:
        """「第13条を全部教えて」「第11条ってなんて書いてある？」: the provision the question names, quoted
        whole from the rule searched (the first found among the hits); a provision none of them has
        (「第99条」) is not covered, and the answer says so."""
        m = _ASKED_PROVISION.search(arabic_counts(query))
        rules = list({h.unit["doc_id"]: h.unit for h in hits if h.unit.get("label")}.values())
        if not m or not rules:
            return False
        label = m.group(0)
        for unit in rules:
            units = self._provision_units(unit, label, flt)
            if units:
                out.pieces = [Piece(u, u["text"].strip(), role="rule") for u in units]
                return True
        out.covered = False
        out.notes.append(f"{label}は見つかりませんでした。")
        return True

    # ------------------------------------------------------------------ enactment (附則)
    def _enactment(self, out: ComposedPart, hits: list[SearchHit], flt: QueryFilter) -> bool:
        """When the best-matching rule came into force, and each amendment: the provisions of its
        附則 that fix a day (「この訓令は、令和6年4月1日から施行する。」), in document order.

        A rule's supplementary provisions are where every 例規 states this; a document with no
        附則 (a guideline, a report) leaves the question to the other composers.
        """
        units = [u for u in self._supplementary_provisions(hits, flt) if _ENFORCES.search(nfkc(u["text"]))]
        if not units:
            return False
        out.pieces = [Piece(u, u["text"].strip(), role="rule") for u in units]
        return True

    def _transition(self, out: ComposedPart, query: str, hits: list[SearchHit], flt: QueryFilter) -> bool:
        """What the best-matching rule does to what was under way when it (or an amendment) came
        into force: the transitional provision of its 附則 closest to the question."""
        units = [u for u in self._supplementary_provisions(hits, flt) if _TRANSITIONAL.search(nfkc(u["text"] + " ".join(u["section_path"])))]
        ranked = self._rank_sentences(query, [SearchHit(unit=u, score=0.0, dense_score=0.0, lexical=0.0, matched_terms=[], rank=i) for i, u in enumerate(units, 1)])
        if not ranked:
            return False
        best = ranked[0]
        best.role = "rule"
        out.pieces = [best]
        # 「改正後の第17条第1項の規定は、…についても適用する」 says what applies, not what it says: quote that too.
        m = _APPLIES_PROVISION.search(nfkc(best.unit["text"]))
        provision = self._provision(best.unit, m.group(1), flt) if m else None
        if provision is not None:
            out.pieces.append(Piece(provision, provision["text"].strip(), role="rule", score=best.score, scope=best.scope))
        return True

    def _supplementary_provisions(self, hits: list[SearchHit], flt: QueryFilter) -> list[dict[str, Any]]:
        """The units of the 附則 (every one: the original and each amendment's) of the best-ranked
        rule among ``hits``, in document order; none when the best matches are no rule's."""
        rule = next((h.unit for h in hits[:3] if h.unit.get("label")), None)
        if rule is None:
            return []
        ids = [
            o.unit_id for o in self.searcher.occurrences_under([rule["section_path"][0]], doc_id=rule["doc_id"])
            if len(o.path) >= 2 and nfkc(o.path[1]).strip().startswith("附則")
        ]
        return sorted(self.searcher.get_units(list(dict.fromkeys(ids)), flt=flt), key=lambda u: u["line_start"])

    # ------------------------------------------------------------------ figure / date
    def _figure(self, out: ComposedPart, part: QuestionPart, query: str, hits: list[SearchHit], flt: QueryFilter) -> bool:
        want_date = part.counter == "日付"
        counter = part.counter if part.counter not in (None, "日付") else None

        def counted(t: str) -> bool:
            # The counter after a number: 「5日以内」 answers 「何日？」; 「取得した日から」 does not, nor
            # does a date (「令和6年6月30日まで」 is no number of days or years).
            for m in re.finditer(rf"[0-9]+\s*(?:か|ヶ|カ|箇)?{re.escape(counter or '')}", t):
                before, after = t[: m.start()], t[m.end():]
                if counter == "日" and re.search(r"月\s*$", before):
                    continue
                if counter == "年" and (re.search(r"(?:令和|平成|昭和)\s*$", before) or re.match(r"\s*[0-9]+\s*月", after)):
                    continue
                return True
            return False

        def fits(piece: Piece) -> bool:
            t = arabic_counts(piece.text)  # 「五年間」 is a number of years too
            if piece.unit["kind"] == "table_row":
                # A table's unit of count sits in its header (件数, 金額（円）), not in each cell.
                head = nfkc(piece.unit.get("header") or "")
                if want_date:
                    return bool(_DATE.search(t))
                if counter == "円":
                    return bool(_MONEY.search(t)) or ("円" in head and bool(_DIGIT.search(t)))
                if counter in _TIME_COUNTERS:
                    return counted(t) or counter in head  # 「30日」 is no answer to 「何年？」
                return bool(_DIGIT.search(t))
            if want_date:
                return bool(_DATE.search(t))
            if counter == "円":
                return bool(_MONEY.search(t))
            if not _DIGIT.search(t):
                return False
            if counter == "割":
                return re.search(r"割|%", t) is not None
            return counter is None or counted(t)

        ranked = self._rank_sentences(query, self._with_sibling_rows(hits[:8], flt), rows=True, ask=out.question)
        fitting = [p for p in ranked if fits(p)]
        if not fitting:
            return False
        best = fitting[0]
        best.role = "figure"
        out.pieces = [best]
        return True

    def _with_sibling_rows(self, hits: list[SearchHit], flt: QueryFilter) -> list[SearchHit]:
        """``hits`` plus the other rows of any table a hit is a row of (the row asked for may rank low)."""
        seen = {h.unit_id for h in hits}
        extra_ids: list[str] = []
        for h in hits:
            if h.unit["kind"] != "table_row":
                continue
            for o in self.searcher.occurrences_under(h.unit["section_path"], doc_id=h.unit["doc_id"]):
                if o.unit_id not in seen and len(o.path) == len(h.unit["section_path"]):
                    seen.add(o.unit_id)
                    extra_ids.append(o.unit_id)
        if not extra_ids:
            return hits
        rows = [u for u in self.searcher.get_units(extra_ids[:60], flt=flt) if u["kind"] == "table_row"]
        last = hits[-1] if hits else None
        return hits + [
            SearchHit(unit=u, score=0.0, dense_score=last.dense_score if last else 0.0, lexical=0.0, matched_terms=[], rank=len(hits) + 1)
            for u in rows
        ]

    def _with_continuations(self, pieces: list[Piece], flt: QueryFilter) -> list[Piece]:
        """Each quoted 項 with the 項 of its article it cannot be read without: the one before it when
        it opens by pointing back (「2 前項の文書等のうち…」 needs 前項), and the next one when that one
        builds on it (「2 前項の研修を受講しなかった利用者は…」): what the rule says happens next is part of it."""
        out: list[Piece] = []
        present = {p.unit_id for p in pieces}
        for i, p in enumerate(pieces):
            path = p.unit["section_path"]
            if not p.unit.get("label") or len(path) < 3 or not _PARAGRAPH_SEGMENT.search(nfkc(path[-1])):
                out.append(p)
                continue
            # A provision quoted as its lead-in and one 号 is two pieces: what comes before goes
            # before the first, what follows after the last.
            first_of_unit = i == 0 or pieces[i - 1].unit_id != p.unit_id
            last_of_unit = i + 1 == len(pieces) or pieces[i + 1].unit_id != p.unit_id
            siblings = self.searcher.occurrences_under(path[:-1], doc_id=p.unit["doc_id"])
            before = [o for o in siblings if o.line_start < p.unit["line_start"] and len(o.path) == len(path)]
            if first_of_unit and before and _BUILDS_ON_PREVIOUS.match(nfkc(p.unit["text"])):
                preceding = max(before, key=lambda o: o.line_start)
                units = self.searcher.get_units([preceding.unit_id], flt=flt) if preceding.unit_id not in present else []
                if units:
                    present.add(preceding.unit_id)
                    out.append(Piece(units[0], units[0]["text"].strip(), role=p.role, score=p.score, scope=p.scope))
            out.append(p)
            after = [o for o in siblings if o.line_start > p.unit["line_start"] and len(o.path) == len(path)]
            if not after or not last_of_unit:
                continue
            following = min(after, key=lambda o: o.line_start)
            if following.unit_id in present:
                continue
            units = self.searcher.get_units([following.unit_id], flt=flt)
            if units and _BUILDS_ON_PREVIOUS.match(nfkc(units[0]["text"])):
                present.add(following.unit_id)
                out.append(Piece(units[0], units[0]["text"].strip(), role=p.role, score=p.score, scope=p.scope))
        return out

    def _with_prerequisites(self, pieces: list[Piece], flt: QueryFilter, *, only: set[str]) -> list[Piece]:
        """Each provision of ``only`` that allows an act (「…利用者として登録を受けることができる」)
        followed by the one that says what whoever would do it must do first (「利用者として登録を
        受けようとする職員は、あらかじめ…研修を受講しなければならない」): the way rules state a
        requirement, in the same article or another."""
        out: list[Piece] = []
        present = {p.unit_id for p in pieces}
        added = 0
        for i, p in enumerate(pieces):
            out.append(p)
            last_of_unit = i + 1 == len(pieces) or pieces[i + 1].unit_id != p.unit_id
            if p.unit_id not in only or not last_of_unit or not p.unit.get("label") or added >= MAX_PREREQUISITES:
                continue
            m = _MAY_DO.search(nfkc(p.unit["text"]))
            if not m:
                continue
            intending = squash(f"{m.group('act')}{m.group('wo') or ''}{_INTENDING[m.group('verb')]}")
            rules_flt = QueryFilter(access=flt.access, doc_ids=[p.unit["doc_id"]])
            for u in sorted(self.searcher.iter_units(flt=rules_flt), key=lambda u: u["line_start"]):
                if u["id"] in present or not u.get("label") or intending not in squash(u["text"]):
                    continue
                if "oblige" not in polarity(u["text"]):
                    continue
                present.add(u["id"])
                out.append(Piece(u, u["text"].strip(), role=p.role, score=p.score, scope=p.scope))
                added += 1
                break
        return out

    def _with_sibling_provisions(self, hits: list[SearchHit], flt: QueryFilter) -> list[SearchHit]:
        """``hits`` plus the other 項 of the articles the best hits belong to: 「研修を受けなかったら？」
        is answered by the 項 after the one that orders the training."""
        seen = {h.unit_id for h in hits}
        extra: list[tuple[str, SearchHit]] = []
        for h in hits[:3]:
            label, path = h.unit.get("label") or "", h.unit["section_path"]
            if not label or len(path) < 3 or not _PARAGRAPH_SEGMENT.search(nfkc(path[-1])):
                continue
            for o in self.searcher.occurrences_under(path[:-1], doc_id=h.unit["doc_id"]):
                if o.unit_id not in seen:
                    seen.add(o.unit_id)
                    extra.append((o.unit_id, h))
        if not extra:
            return hits
        found = {u["id"]: u for u in self.searcher.get_units([uid for uid, _ in extra], flt=flt)}
        return hits + [
            SearchHit(unit=found[uid], score=0.0, dense_score=h.dense_score, lexical=0.0, matched_terms=[], rank=h.rank)
            for uid, h in extra if uid in found
        ]

    # ------------------------------------------------------------------ may I
    def _may_i(self, out: ComposedPart, query: str, hits: list[SearchHit], flt: QueryFilter) -> bool:
        ranked = self._rank_sentences(query, self._with_sibling_provisions(hits[:8], flt), ask=out.question)
        for p in ranked:
            if _stance(p):
                p.score += STANCE_BONUS  # a sentence that permits, conditions or forbids is what was asked
        ranked.sort(key=lambda p: -p.score)
        rules = [p for p in ranked if _stance(p)]
        if not rules:
            return False
        chosen = self._distinct(rules, 2, floor=0.85)
        limit = self._service_limit(hits, flt) if _USES_SERVICE.search(nfkc(query)) else None
        if limit is not None and limit["id"] not in {p.unit_id for p in chosen}:
            chosen = [Piece(limit, limit["text"].strip(), score=chosen[0].score if chosen else 0.0), *chosen]
        for p in chosen:
            p.role = "rule"
        out.pieces = chosen
        if limit is None:
            # The article limiting the services answers 「〇〇を使っていい？」 by what it leaves out,
            # without the service's name; anything else must hold the question's rare word.
            self._require_focus(out, query, flt)
        return True

    def _service_limit(self, hits: list[SearchHit], flt: QueryFilter) -> dict[str, Any] | None:
        """The provision of the rules found that limits the AI services staff may use
        (「職員が業務に利用することができる生成AIは、…に限る。」), if one of them has it."""
        for h in hits:
            if h.unit.get("label") and _SERVICE_LIMIT.search(nfkc(h.unit["text"])):
                return h.unit
        for doc_id in dict.fromkeys(h.unit["doc_id"] for h in hits if h.unit.get("label")):
            rules_flt = QueryFilter(access=flt.access, doc_ids=[doc_id])
            found = sorted(
                (u for u in self.searcher.iter_units(flt=rules_flt) if u.get("label") and _SERVICE_LIMIT.search(nfkc(u["text"]))),
                key=lambda u: u["line_start"],
            )
            if found:
                return found[0]
        return None

    # ------------------------------------------------------------------ open fact
    def _open_fact(self, out: ComposedPart, query: str, hits: list[SearchHit], flt: QueryFilter) -> None:
        ranked = self._rank_sentences(query, self._with_sibling_provisions(hits[:8], flt), rows=True, ask=out.question)
        if _ASKS_NEEDS.search(nfkc(query)):
            # 「使い始めたい。何が必要？」: what the asker must do is what a rule obliges.
            for p in ranked:
                if "oblige" in _stance(p):
                    p.score += STANCE_BONUS
            ranked.sort(key=lambda p: -p.score)
        out.pieces = self._distinct(ranked, 2, floor=0.9)

    def _focus(self, query: str, flt: QueryFilter) -> tuple[list[str], set[str]]:
        """The question's rarest topic words (at most two) and the corpus's own words for its
        staff wording (ホームページ → ウェブサイト, 毎年 → 年度, 払う → 費用).

        An office named in the question (「各課の予算から」「情報政策課が払う」) is who acts, not
        what is asked about; a word in one unit in ten says nothing about this question; words
        the corpus never uses say nothing either way; words naming a document only say where
        to look (a body's name, 都 → 東京都, even among the corpus's words).
        """
        docs = self.searcher.documents(flt=flt).values()
        titles = self._terms(" ".join(f"{d.title} {d.issuer}" for d in docs))
        issuers = self._terms(" ".join(d.issuer for d in docs))

        def nouns(tokens: Iterable[str], where: set[str]) -> set[str]:
            return {t for t in tokens if t not in where and _is_topic_noun(t) and self.searcher.term_units(t) > 0}

        topic = _OFFICE_NAME.sub("、", nfkc(query))
        asked = self.tokenizer.tokens(topic)
        # 「何時間？」: the unit of the figure asked for is tested by the figure, not a topic word.
        counters = asked_counters(query)
        rare = {t for t in nouns(asked, titles) - counters if self.searcher.term_weight(t) >= COMMON_WORD_WEIGHT}
        focus = sorted(rare, key=lambda t: -self.searcher.term_weight(t))[:2]
        said_otherwise = nouns(self.tokenizer.tokens(topic, query=True), issuers) - set(asked)
        return focus, {t for t in said_otherwise if self.searcher.term_weight(t) >= COMMON_WORD_WEIGHT}

    def _require_focus(self, out: ComposedPart, query: str, flt: QueryFilter, *, strict: bool = False) -> None:
        """Not covered when the pieces hold none of the question's focus words (:meth:`_focus`).

        Retrieval finds a near clause for anything asked about this field; whether it answers
        shows in the rarest words the question and the corpus share (利用料, 予算): a piece
        without any of them answers another question. ``strict``: a question sharing no such
        word with the corpus (「AIで作った俳句をコンテストに出していい？」) is not covered either.
        """
        if not out.pieces:
            return
        focus, corpus_words = self._focus(query, flt)
        if not focus and not corpus_words:
            out.covered = out.covered and not strict
            return
        accepted = set(focus) | corpus_words
        held = set()
        for p in out.pieces:
            held |= self._terms(" ".join([p.text, p.unit["text"], p.unit.get("row") or "", *p.unit["section_path"][1:]]))
        if not held & accepted:
            out.covered = False

    # ------------------------------------------------------------------ comparison
    def compare(self, topic: str, *, flt: QueryFilter, doc_ids: list[str] | None = None) -> ComposedPart:
        """``topic`` across documents, side by side: ``POST /v1/compare`` and ``guideqa compare``.

        Args:
            doc_ids: the documents to compare (default: every document the caller may see,
                the office's own rules first).
        """
        docs = self.searcher.documents(flt=flt)
        order = {"binding": 0, "guidance": 1, "reference": 2}
        wanted = [d for d in (doc_ids or sorted(docs, key=lambda d: (order.get(docs[d].authority, 3), d))) if d in docs]
        out = ComposedPart(question=topic, shape="comparison", covered=False)
        return self._comparison(out, topic, flt, wanted, topic_given=True)

    def _comparison(self, out: ComposedPart, query: str, flt: QueryFilter, doc_ids: list[str], *, topic_given: bool = False) -> ComposedPart:
        """Each document's best sentence on the topic, side by side; a plain note where one says nothing."""
        docs = self.searcher.documents(flt=flt)
        topic = query
        if not topic_given:
            topic = _COMPARISON_WORDS.sub("、", self.searcher.named_documents(query, flt=flt).topic(query)).strip("、")
            topic = topic if len(self._terms(topic)) >= 1 else query
        out.shape = "comparison"
        for doc_id in doc_ids[:MAX_COMPARED]:
            res = self._search(topic, flt, doc_ids=[doc_id], top_k=5)
            # An office's rule is written formally and asked about colloquially: a clause close in
            # meaning is enough there (its wording rarely matches); elsewhere the usual gate holds.
            binding = doc_id in docs and docs[doc_id].authority == "binding"
            covered = assess_coverage(res.hits).covered
            says = covered or (binding and bool(res.hits))
            ranked = self._rank_sentences(topic, res.hits[:3], rows=True) if says else []
            chosen = self._distinct(ranked, 2, floor=0.9)
            if chosen and not covered and res.hits[0].dense_score < MIN_DENSE:
                # Neither the scores nor the meaning say much: the clause must hold the topic's word.
                probe = ComposedPart(question=topic, shape="comparison", covered=True, pieces=chosen)
                self._require_focus(probe, topic, flt)
                chosen = chosen if probe.covered else []
            out.columns.append((doc_id, bool(chosen)))
            if not chosen:
                title = docs[doc_id].title if doc_id in docs else doc_id
                out.notes.append(f"{title}: 該当する記載が見つかりませんでした。")
            for p in _whole_provisions(chosen):
                p.role = "quote"
                p.scope = "local" if p.unit.get("authority") == "binding" else "named"
                out.pieces.append(p)
        out.covered = bool(out.pieces)
        return out

    @staticmethod
    def _docs_in(hits: list[SearchHit]) -> list[str]:
        return list(dict.fromkeys(h.unit["doc_id"] for h in hits))[:3]

    # ------------------------------------------------------------------ sentence scoring
    def _topic_nouns(self, text: str) -> set[str]:
        """The nouns of ``text`` that can carry a topic (研修, フォローアップ; not 受ける, だめ, HP)."""
        return {t for t in self.tokenizer.tokens(text) if _is_topic_noun(t)}

    def _terms(self, text: str) -> set[str]:
        return {t for t in self.tokenizer.tokens(text, query=True)}

    def _rank_sentences(self, query: str, hits: Iterable[SearchHit], *, rows: bool = False, ask: str = "") -> list[Piece]:
        """Sentences (and, with ``rows``, table rows) of ``hits`` scored against ``query``.

        The score adds the sentence's cosine similarity to the question (e5, rescaled from
        its narrow band) and the share of the question's words it holds, weighted by BM25's
        IDF, plus a little for the rank of its unit.
        """
        hits = list(hits)
        q_terms = self._terms(query)
        # 「…入力してしまった。誰に報告すればいい？」: the sentence that asks says what the answer is
        # about; the sentences before it are the situation.
        asked = self._terms(ask) if ask and squash(ask) != squash(query) else set()
        # What the ask is about, not how it asks: 「何が必要？」's 必要 is in one unit in five.
        asked = {t for t in asked if self.searcher.term_weight(t) >= COMMON_WORD_WEIGHT}
        # A staff word and the corpus's words for it (ログ → 記録, 履歴) are one concept: a passage
        # holding any of them holds it once, weighed as the corpus's words are (the staff word
        # is rare in the rules because the rules say it otherwise: 使う is rare, 利用 is not).
        weights: dict[frozenset[str], float] = {}
        for said, corpus in self.tokenizer.synonym_groups(query):
            members = frozenset((said | corpus) & q_terms)
            if corpus & q_terms:
                weights[members] = max(weights.get(members, 0.0), max(self.searcher.term_weight(t) for t in corpus & q_terms))
        grouped = set().union(*weights) if weights else set()
        weights.update({frozenset({t}): self.searcher.term_weight(t) for t in q_terms - grouped})
        weights = {c: w * (2.0 if c & asked else 1.0) for c, w in weights.items()}
        qvec = self.searcher.query_vector(query)
        cands: list[tuple[SearchHit, str, int]] = []
        for rank, h in enumerate(hits):
            u = h.unit
            if u["kind"] == "table_row":
                if rows:
                    cands.append((h, self._row_text(u, q_terms), rank))
                continue
            for s in _answer_sentences(u):
                cands.append((h, s, rank))
        if not cands:
            return []
        sentence_idx = [i for i, (h, _, _) in enumerate(cands) if h.unit["kind"] != "table_row"]
        vecs = self.searcher.passage_vectors([cands[i][1][:480] for i in sentence_idx]) if sentence_idx else []
        dense_of = {i: sum(a * b for a, b in zip(qvec, v)) for i, v in zip(sentence_idx, vecs)}
        pieces: list[Piece] = []

        context_of: dict[str, set[str]] = {}

        def share(terms: set[str], unit: dict[str, Any]) -> float:
            # Words the unit's own title and path already carry (the document the question
            # named, the section it sits in) say where to look, not what the answer is.
            ctx = context_of.get(unit["id"])
            if ctx is None:
                # A rule's 見出し (「(利用の申請等)」) is what its article is about, not where it sits.
                where = [unit["doc_title"]] if unit.get("label") else [unit["doc_title"], *unit["section_path"]]
                ctx = context_of[unit["id"]] = self._terms(" ".join(where))
            got = sum(w * (0.3 if c & ctx else 1.0) for c, w in weights.items() if c & terms)
            return got / sum(w * (0.3 if c & ctx else 1.0) for c, w in weights.items()) if weights else 0.0

        # Cosines are rescaled within the question's candidates: each embedding model has its own
        # band (e5 puts everything in 0.8–0.95), and only their order here matters. A narrow
        # spread is not stretched into a large one.
        denses = [dense_of.get(i, h.dense_score) for i, (h, _, _) in enumerate(cands)]
        low = min(denses)
        span = max(max(denses) - low, 0.12)
        asks_purpose = bool(_ASKS_PURPOSE.search(nfkc(query)))
        asks_when_in_force = bool(_ASKS_ENACTMENT.search(nfkc(query)) or _ASKS_TRANSITION.search(nfkc(query)))
        lead_index = {(h.unit["id"], text): i for i, (h, text, _) in enumerate(cands)}
        leads: dict[str, tuple[str, list[str]]] = {}

        def lead_of(unit: dict[str, Any]) -> tuple[str, list[str]]:
            if unit["id"] not in leads:
                sentences = split_sentences(unit["text"])
                leads[unit["id"]] = (sentences[0] if sentences else "", _list_lines(unit["text"]))
            return leads[unit["id"]]
        held: list[set[str]] = []
        asked_text = squash(nfkc(query))
        for i, (h, text, rank) in enumerate(cands):
            if h.unit["kind"] == "table_row":
                # A row is found by its label (the row's own name) more than by its column
                # names, which every row of the table repeats.
                label = " ".join(c for c in h.unit["text"].split("\t") if c and not _DIGIT.match(nfkc(c)))
                cand_terms = self._terms(text + " " + (h.unit.get("row") or ""))
                lexical = 0.6 * share(self._terms(label), h.unit) + 0.4 * share(cand_terms, h.unit)
            elif h.unit.get("label") and text in lead_of(h.unit)[1]:
                # A 号 of a rule reads with its lead-in (「…を知ったときは、直ちに…報告しなければならない。」
                # + 「(1) 機密情報…を誤って入力したとき。」): the two together are the provision.
                lead = lead_of(h.unit)[0]
                cand_terms = self._terms(" ".join([text, lead, _headings(h.unit)]))
                lexical = share(cand_terms, h.unit)
                # 「一 個人情報」 when 個人情報 is what the question asks about: the item names it outright.
                named = squash(_ITEM_LINE.sub("", nfkc(text)))
                if 2 <= len(named) <= NAMED_ITEM_CHARS and named in asked_text:
                    lexical = min(1.0, lexical + NAMED_ITEM_BONUS)
                denses[i] = max(denses[i], dense_of.get(lead_index.get((h.unit["id"], lead), -1), denses[i]))
            elif h.unit.get("label") and _PROVISO.match(text) and (main := _sentence_before(h.unit["text"], text)):
                # A ただし書 (「ただし、…翻訳の用途に限り…この限りでない。」) is an exception to the
                # sentence before it (「約款型サービスは…できない。」): the two are read together.
                cand_terms = self._terms(" ".join([main, text, _headings(h.unit)]))
                lexical = share(cand_terms, h.unit)
            else:
                cand_terms = self._terms(text + " " + _headings(h.unit))
                lexical = share(cand_terms, h.unit)
            held.append(cand_terms & asked)
            dense_n = (denses[i] - low) / span
            score = 0.5 * dense_n + 0.5 * lexical + 0.1 / (rank + 1)
            is_item = bool(h.unit.get("label")) and text in lead_of(h.unit)[1]
            if not is_item and (len(text) < 8 or (len(text) <= 16 and not re.search(r"[。、0-9０-９]", text))):
                score -= 0.3  # a heading fragment is not an answer (a rule's 「一 個人情報」 is an item)
            if _quoted_share(text) > 0.6:
                score -= 0.3  # a line that is mostly a quoted title is a reference, not a statement
            if (h.unit.get("label") or "").startswith(("様式", "別記様式")):
                score -= 0.4  # a form to fill in (申請書, 誓約) restates rules; it does not make them
            if not asks_purpose and _PURPOSE_ARTICLE.search(nfkc(" ".join(h.unit["section_path"][1:]))):
                score -= 0.3  # 第1条（目的） states why the rule exists; it answers no question of what to do
            if not asks_when_in_force and (h.unit.get("label") or "").startswith("附則"):
                score -= 0.2  # 附則 say when the rule starts and what carries over from before it
            pieces.append(Piece(h.unit, text, score=round(score, 4)))
        if any(held):
            # The situation (「名前が入ったまま入れちゃった」) is what the closest sentences are about;
            # a sentence holding nothing of what is asked (「誰に言えば」: 報告) does not answer it.
            for p, got in zip(pieces, held):
                if not got:
                    p.score = round(p.score - UNASKED_PENALTY, 4)
        pieces.sort(key=lambda p: -p.score)
        return pieces

    @staticmethod
    def _row_text(unit: dict[str, Any], q_terms: set[str]) -> str:
        """A table row as its lead cell and the cells the question asks about: 「特化型1 / 件数: 12」."""
        row = unit.get("row") or ""
        pairs = [p.strip() for p in row.split(" | ") if p.strip()]
        if not pairs:
            return _cells(unit["text"])
        if len(" / ".join(pairs)) <= 160:
            return " / ".join(pairs)
        lead, rest = pairs[0], pairs[1:]
        asked = [p for p in rest if any(t in nfkc(p).lower() for t in q_terms if len(t) >= 2)]
        return " / ".join([lead] + (asked or rest)[:3])

    @staticmethod
    def _distinct(ranked: list[Piece], n: int, *, floor: float) -> list[Piece]:
        """The best piece and up to ``n - 1`` more from other units scoring within ``floor`` of it."""
        if not ranked:
            return []
        best = ranked[0]
        chosen = [best]
        for p in ranked[1:]:
            if len(chosen) >= n:
                break
            if p.score >= best.score * floor and p.unit_id not in {c.unit_id for c in chosen} and all(
                squash(p.text) != squash(c.text) for c in chosen
            ):
                chosen.append(p)
        return chosen

