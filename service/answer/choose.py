"""The model's small job: choose among a part's candidate pieces and, optionally, write one lead sentence.

The 1.5B model on two cores cannot be trusted to write facts, so it is shown the
candidates (verbatim sentences of the documents) numbered, and must answer with JSON
constrained by a schema: ``{"choice": [numbers], "lead": "…"}``. Its choice only reorders
and filters pieces that were already found; its lead is kept only if it passes
:func:`check_lead` (words, figures and polarity against the chosen pieces). Anything
that does not parse, or names a piece that does not exist, falls back to the
deterministic choice.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from index.tokenizer import COMPOUND_PREFIX, JapaneseTokenizer
from service.answer.compose import ComposedPart, Piece
from service.answer.gate import SUPPORT_THRESHOLD, numbers_ok
from service.answer.polarity import contradicts
from service.answer.prompt import ABSTAIN_TEXT, build_messages

__all__ = ["CHOICE_SCHEMA", "Choice", "wants_model", "choice_messages", "parse_choice", "check_lead", "apply_choice"]

#: The model reads every candidate at ~45 tokens/s: three short lines keep a choice near 3 s.
MAX_CANDIDATES = 3
LEAD_CHARS = 60

CHOICE_SCHEMA = {
    "type": "object",
    "properties": {
        "choice": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": MAX_CANDIDATES}, "maxItems": 3},
        "lead": {"type": "string", "maxLength": LEAD_CHARS},
    },
    "required": ["choice", "lead"],
}

# Words any lead may use without the pieces saying them: the shape of an answer, not its facts.
_GENERIC = {
    "はい", "いいえ", "可能", "不可", "必要", "不要", "条件", "付き", "付く", "できる", "できない", "場合", "記載", "文書",
    "ガイドライン", "規程", "定める", "求める", "求め", "とおり", "次", "以下", "上記", "ある", "ない", "なる", "れる", "こと",
    "原則", "利用", "使う", "入力", "入れる", "認める", "限る", "可", "必須", "推奨", "項目", "点", "通り",
}
_SENT_END = re.compile(r"[。！？!?]")


@dataclass
class Choice:
    """What the model chose: candidate numbers (1-based) and its lead sentence (unchecked)."""

    numbers: list[int]
    lead: str


#: Shapes whose answer gains from the model: a yes/no lead (may_i) or a choice among sentences.
#: A list, a definition or a figure is read off the structure; the model would only risk it.
MODEL_SHAPES = ("may_i", "open_fact")
#: Only a may-I answer gets a lead: 「はい、条件付きで可能です。」 is the model's to write; a fact is not.
LEAD_SHAPES = ("may_i",)


def wants_model(part: ComposedPart) -> bool:
    """A covered part whose answer depends on a yes/no lead or on choosing among sentences."""
    return part.covered and part.shape in MODEL_SHAPES and len(part.candidates or part.pieces) >= 1


def choice_messages(part: ComposedPart) -> list[dict[str, str]]:
    """The chat messages asking the model to choose among ``part``'s candidates."""
    return build_messages(part.question, [p.text for p in (part.candidates or part.pieces)[:MAX_CANDIDATES]])


def parse_choice(raw: str, n_candidates: int) -> Choice | None:
    """The model's JSON reply, or None when it does not parse or names a piece that does not exist."""
    try:
        data = json.loads(raw.strip())
    except (ValueError, TypeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("choice"), list) or not isinstance(data.get("lead", ""), str):
        return None
    numbers = data["choice"]
    if not all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= n_candidates for n in numbers):
        return None
    return Choice(list(dict.fromkeys(numbers)), data.get("lead", "").strip())


def _content(tokenizer: JapaneseTokenizer, text: str) -> set[str]:
    return {t for t in tokenizer.tokens(text) if not t.startswith(COMPOUND_PREFIX) and t not in _GENERIC}


def check_lead(tokenizer: JapaneseTokenizer, lead: str, sources: list[str]) -> tuple[bool, str]:
    """Whether a model-written lead may be shown above ``sources`` (the chosen pieces' texts).

    Returns:
        ``(True, "supported")`` or ``(False, reason)`` with reason ``abstain`` (the model
        declined: not its call, retrieval decides coverage), ``too_long``, ``invented_number``,
        ``contradicts`` (it permits what the pieces forbid, or the reverse) or ``not_supported``
        (under half of its non-generic words occur in the pieces).
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
    if any(contradicts(text, s) for s in sources):
        return False, "contradicts"
    words = _content(tokenizer, text)
    if words and len(words & _content(tokenizer, joined)) / len(words) < SUPPORT_THRESHOLD:
        return False, "not_supported"
    return True, "supported"


def apply_choice(part: ComposedPart, choice: Choice | None, tokenizer: JapaneseTokenizer) -> str | None:
    """Reorder ``part``'s pieces by the model's choice and attach its lead if it passes the gate.

    The deterministic pieces stay when the choice is unusable or empty: the model alone
    never turns a covered part into "not found".

    Returns:
        The reason the lead was dropped, or None when it was kept or there was none.
    """
    cands: list[Piece] = (part.candidates or part.pieces)[:MAX_CANDIDATES]
    if choice is None:
        return "unparsed"
    chosen = [cands[n - 1] for n in choice.numbers if n - 1 < len(cands)]
    if chosen and part.shape != "enumeration":
        for p in chosen:
            if p.role == "quote" and part.pieces:
                p.role = part.pieces[0].role
        local = [p for p in part.pieces if p.scope == "local" and p not in chosen]
        part.pieces = local + chosen if any(p.scope == "local" for p in part.pieces) else chosen
    if not choice.lead or part.shape not in LEAD_SHAPES:
        return None
    ok, reason = check_lead(tokenizer, choice.lead, [p.text for p in part.pieces])
    if ok:
        part.lead = re.sub(r"\[\d{1,2}\]", "", choice.lead).strip()
        return None
    return reason
