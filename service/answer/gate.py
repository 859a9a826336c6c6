"""The citation gate: nothing reaches the user unless a given clause supports it.

For each sentence of the model's answer:

* every ``[n]`` must name a clause that was actually given (else ``unknown_citation``);
* the sentence must share substantive words with its clause: at least
  :data:`SUPPORT_THRESHOLD` of its content tokens (fugashi, NFKC) must occur in
  the clause, and every number it states must occur there too (else ``not_supported``,
  or ``invented_number`` when no given clause has that number);
* a sentence without ``[n]`` is kept only if one given clause supports it, and
  then that clause is cited (else ``no_citation``);
* a sentence that repeats the system prompt is dropped (``prompt_leak``).

Citations are renumbered in order of first use, so ``[1]`` is always the first
source the answer relies on.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from index.tokenizer import COMPOUND_PREFIX, JapaneseTokenizer
from service.answer.prompt import ABSTAIN_TEXT, SYSTEM_PROMPT

__all__ = ["GateResult", "KeptSentence", "verify_answer", "split_sentences", "support", "SUPPORT_THRESHOLD"]

# Share of a sentence's content tokens that must occur in its clause. Chosen on
# the dev set (eval/BENCHMARKS.md, "citation gate"): grounded sentences from the
# 1.5B model score 0.6–1.0, invented ones mostly below 0.4.
SUPPORT_THRESHOLD = 0.5
_MARK = re.compile(r"\[(\d{1,2})\]")
_SENT = re.compile(r"[^。！？!?\n]+(?:[。！？!?]+)?(?:\s*\[\d{1,2}\])*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


@dataclass
class KeptSentence:
    text: str
    cites: list[int]
    support: float


@dataclass
class GateResult:
    sentences: list[KeptSentence] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)
    abstained: bool = False

    def answer_text(self, renumber: dict[int, int]) -> str:
        parts = []
        for s in self.sentences:
            marks = "".join(f"[{renumber[c]}]" for c in s.cites)
            parts.append(s.text + marks)
        return "".join(parts)

    def used_sources(self) -> list[int]:
        order: list[int] = []
        for s in self.sentences:
            for c in s.cites:
                if c not in order:
                    order.append(c)
        return order


def split_sentences(answer: str) -> list[tuple[str, list[int]]]:
    """Sentences with the ``[n]`` marks that follow them: ``("…です。", [1])``."""
    out = []
    for m in _SENT.finditer(answer):
        chunk = m.group(0).strip()
        if not chunk:
            continue
        cites = [int(x) for x in _MARK.findall(chunk)]
        body = _MARK.sub("", chunk).strip()
        if re.sub(r"[\s。、！？!?.,「」『』()（）]", "", body):
            out.append((body, cites))
        elif out:
            # Punctuation after a mark ("…です[2]。") belongs to the sentence before it.
            out[-1] = (out[-1][0] + body, out[-1][1] + cites)
    return out


def _content(tokenizer: JapaneseTokenizer, text: str) -> set[str]:
    return {t for t in tokenizer.tokens(text) if not t.startswith(COMPOUND_PREFIX)}


def support(tokenizer: JapaneseTokenizer, sentence: str, source: str) -> float:
    """Share of the sentence's content tokens found in ``source`` (0 when the sentence has none)."""
    s = _content(tokenizer, sentence)
    if not s:
        return 0.0
    return len(s & _content(tokenizer, source)) / len(s)


def _numbers_ok(sentence: str, source: str) -> bool:
    src = unicodedata.normalize("NFKC", source).replace(",", "")
    return all(n.replace(",", "") in src for n in _NUMBER.findall(unicodedata.normalize("NFKC", sentence)))


_PROMPT_TERMS: set[str] | None = None


def verify_answer(answer: str, sources: dict[int, str], tokenizer: JapaneseTokenizer, *, threshold: float = SUPPORT_THRESHOLD) -> GateResult:
    """Check every sentence of ``answer`` against the numbered ``sources`` it was given."""
    global _PROMPT_TERMS
    if _PROMPT_TERMS is None:
        _PROMPT_TERMS = _content(tokenizer, SYSTEM_PROMPT)
    result = GateResult()
    for body, cites in split_sentences(answer):
        if ABSTAIN_TEXT in body:
            result.abstained = True
            continue
        terms = _content(tokenizer, body)
        if len(terms) >= 4 and len(terms & _PROMPT_TERMS) / len(terms) >= 0.7:
            result.removed.append((body, "prompt_leak"))
            continue
        unknown = [c for c in cites if c not in sources]
        if unknown:
            result.removed.append((body, "unknown_citation"))
            continue
        if cites:
            scored = [(support(tokenizer, body, sources[c]), c) for c in dict.fromkeys(cites)]
            good = [(s, c) for s, c in scored if s >= threshold and _numbers_ok(body, sources[c])]
            if not good:
                # A sentence can be right but cite the wrong one of the given clauses.
                best = max(((support(tokenizer, body, t), n) for n, t in sources.items()), default=(0.0, 0))
                if best[0] >= threshold and _numbers_ok(body, sources[best[1]]):
                    good = [best]
            if not good:
                result.removed.append((body, "invented_number" if _invents_number(body, sources) else "not_supported"))
                continue
            result.sentences.append(KeptSentence(body, [c for _, c in good], max(s for s, _ in good)))
            continue
        best = max(((support(tokenizer, body, t), n) for n, t in sources.items()), default=(0.0, 0))
        if best[0] >= threshold and _numbers_ok(body, sources[best[1]]):
            result.sentences.append(KeptSentence(body, [best[1]], best[0]))
        else:
            result.removed.append((body, "invented_number" if _invents_number(body, sources) else "no_citation"))
    return result


def _invents_number(sentence: str, sources: dict[int, str]) -> bool:
    """The sentence states a figure no given clause has: the model filled a gap (a date,
    a count), which tells the caller the clauses do not answer."""
    return not any(_numbers_ok(sentence, t) for t in sources.values())
