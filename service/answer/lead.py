"""The model's one job: a lead sentence (「いいえ、…入力できません。」) above a may-I answer's pieces.

The 1.5B model on two cores cannot be trusted to write facts, and it is not asked to
choose the pieces either: on the 100 dev items, letting it reorder and filter the
composed pieces lowered key-fact correctness from 0.625 to 0.591 (eval/BENCHMARKS.md,
"Answers"). It is shown the part's pieces (verbatim sentences of the documents, numbered)
and answers with JSON constrained by a schema, ``{"lead": "…"}``. The lead is shown only
if :func:`check_lead` passes it against those pieces (words, figures, polarity); anything
that does not parse is dropped, never an error, and the pieces stand either way.
"""

from __future__ import annotations

import json
import re

from index.tokenizer import COMPOUND_PREFIX, JapaneseTokenizer
from service.answer.compose import ComposedPart
from service.answer.gate import check_statement, numbers_ok
from service.answer.polarity import contradicts
from service.answer.prompt import ABSTAIN_TEXT, build_messages

__all__ = [
    "LEAD_SCHEMA", "LEAD_SHAPES", "MAX_PIECES_SHOWN", "wants_lead", "lead_messages", "parse_lead", "check_lead", "lead_source", "apply_lead",
]

#: The model reads every piece at ~45 tokens/s: three short lines keep a lead near 3 s.
MAX_PIECES_SHOWN = 3
LEAD_CHARS = 60
#: Only a may-I answer gets a lead: 「はい、条件付きで可能です。」 connects the rules quoted below it;
#: a list, a definition, a figure or a fact is read off the structure and needs none.
LEAD_SHAPES = ("may_i",)

LEAD_SCHEMA = {
    "type": "object",
    "properties": {"lead": {"type": "string", "maxLength": LEAD_CHARS}},
    "required": ["lead"],
}

# Words any lead may use without the pieces saying them: the shape of an answer, not its facts.
_GENERIC = {
    "はい", "いいえ", "可能", "不可", "必要", "不要", "条件", "付き", "付く", "できる", "できない", "場合", "記載", "文書",
    "ガイドライン", "規程", "定める", "求める", "求め", "とおり", "次", "以下", "上記", "ある", "ない", "なる", "れる", "こと",
    "原則", "利用", "使う", "入力", "入れる", "認める", "限る", "可", "必須", "推奨", "項目", "点", "通り",
}
_SENT_END = re.compile(r"[。！？!?]")
_ANSWER_WORD = re.compile(r"^(?:はい|いいえ|条件付きで(?:可能|利用できます)(?:です)?)[、。,]?")


def wants_lead(part: ComposedPart) -> bool:
    """A covered may-I part with pieces to conclude from."""
    return part.covered and part.shape in LEAD_SHAPES and bool(part.pieces)


def lead_messages(part: ComposedPart) -> list[dict[str, str]]:
    """The chat messages asking the model for ``part``'s lead sentence."""
    return build_messages(part.question, [p.text for p in part.pieces[:MAX_PIECES_SHOWN]])


def parse_lead(raw: str) -> str | None:
    """The lead in the model's JSON reply, or None when the reply does not parse."""
    try:
        data = json.loads(raw.strip())
    except (ValueError, TypeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("lead"), str):
        return None
    return data["lead"].strip()


def _content(tokenizer: JapaneseTokenizer, text: str) -> set[str]:
    return {t for t in tokenizer.tokens(text) if not t.startswith(COMPOUND_PREFIX) and t not in _GENERIC}


def check_lead(tokenizer: JapaneseTokenizer, lead: str, sources: list[str]) -> tuple[bool, str]:
    """Whether a model-written lead may be shown above ``sources`` (the part's pieces).

    Returns:
        ``(True, "supported")`` — then :func:`lead_source` names the piece it stands on — or
        ``(False, reason)`` with reason ``abstain`` (the model
        declined: not its call, retrieval decides coverage), ``too_long``, ``invented_number``,
        ``contradicts`` (it permits what the pieces forbid, or the reverse) or ``not_supported``
        (past its answer word, it does not stand on the pieces: :func:`~service.answer.gate.check_statement`).
    """
    text = re.sub(r"\[\d{1,2}\]", "", lead).strip()
    if not text:
        return False, "empty"
    if ABSTAIN_TEXT[:8] in text or "見つかりません" in text:
        return False, "abstain"
    # One whole sentence: a lead cut off at the length limit, or two sentences, is not shown.
    if len(text) > LEAD_CHARS or not text.endswith(("。", "！", "？")) or _SENT_END.search(text[:-1]):
        return False, "too_long"
    joined = "\n".join(sources)
    if not numbers_ok(text, joined):
        return False, "invented_number"
    # Against what the pieces say together: 「いいえ」 stands on the piece that forbids, though
    # another piece quoted beside it (who approves) takes no stance on the question.
    if contradicts(text, joined):
        return False, "contradicts"
    # Past its 「はい、」「いいえ、」, the lead must stand on one of the pieces as any statement
    # must on the clause it cites (the test the evaluation's faithfulness applies too).
    if lead_source(tokenizer, text, sources) is None:
        return False, "not_supported"
    return True, "supported"


def lead_source(tokenizer: JapaneseTokenizer, lead: str, sources: list[str]) -> int | None:
    """The index of the first of ``sources`` the lead stands on (0 for a bare 「はい。」), or None."""
    claim = _ANSWER_WORD.sub("", re.sub(r"\[\d{1,2}\]", "", lead).strip())
    if not _content(tokenizer, claim):
        return 0 if sources else None
    return next((i for i, s in enumerate(sources) if check_statement(tokenizer, claim, s).supported), None)


def apply_lead(part: ComposedPart, lead: str | None, tokenizer: JapaneseTokenizer) -> str | None:
    """Attach ``lead`` to ``part`` if it passes the gate against the part's pieces.

    Returns:
        The reason the lead was dropped (``unparsed`` when the reply did not parse), or
        None when it was kept or the model wrote none.
    """
    if lead is None:
        return "unparsed"
    if not lead or part.shape not in LEAD_SHAPES:
        return None
    sources = [p.text for p in part.pieces]
    ok, reason = check_lead(tokenizer, lead, sources)
    if not ok:
        return reason
    part.lead = re.sub(r"\[\d{1,2}\]", "", lead).strip()
    part.lead_source = part.pieces[lead_source(tokenizer, part.lead, sources) or 0].unit_id
    return None
