"""The citation gate's tests: does a statement stand on the clause it cites?

:func:`check_statement` is the one test of a statement against a source: at least
:data:`SUPPORT_THRESHOLD` of its content tokens (fugashi, NFKC) occur in the source,
every figure it states occurs there too, and it does not permit what the source forbids
(or the reverse, :mod:`service.answer.polarity`). The model's lead sentence is checked
with it (:mod:`service.answer.lead`), and so is every statement of an answer in the
evaluation's faithfulness. :func:`split_sentences` splits an answer into its statements
with the ``[n]`` marks that follow them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from index.tokenizer import COMPOUND_PREFIX, JapaneseTokenizer
from service.answer.polarity import contradicts

__all__ = [
    "StatementCheck",
    "check_statement",
    "split_sentences",
    "support",
    "numbers_ok",
    "SUPPORT_THRESHOLD",
]

# Share of a sentence's content tokens that must occur in its clause. Chosen on
# the dev set (eval/BENCHMARKS.md, "citation gate"): grounded sentences from the
# 1.5B model score 0.6–1.0, invented ones mostly below 0.4.
SUPPORT_THRESHOLD = 0.5
_MARK = re.compile(r"\[(\d{1,2})\]")
_SENT = re.compile(r"[^。！？!?\n]+(?:[。！？!?]+)?(?:\s*\[\d{1,2}\])*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


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


def numbers_ok(sentence: str, source: str) -> bool:
    """Every figure in ``sentence`` occurs in ``source`` (NFKC, thousands separators ignored)."""
    src = unicodedata.normalize("NFKC", source).replace(",", "")
    return all(n.replace(",", "") in src for n in _NUMBER.findall(unicodedata.normalize("NFKC", sentence)))


@dataclass(frozen=True)
class StatementCheck:
    """Whether one statement stands on one source, and if not, why.

    ``reason`` is ``supported``, ``not_supported`` (too few of its words in the source),
    ``number_missing`` (it states a figure the source lacks) or ``contradicts`` (it
    permits what the source forbids, or the reverse; see :mod:`service.answer.polarity`).
    """

    supported: bool
    reason: str
    support: float


def check_statement(tokenizer: JapaneseTokenizer, statement: str, source: str, *, threshold: float = SUPPORT_THRESHOLD) -> StatementCheck:
    """Check one statement against one source clause: words, figures and polarity.

    The same test the gate applies to every sentence of an answer, and the one the
    evaluation's statement-level faithfulness uses.
    """
    share = support(tokenizer, statement, source)
    if share < threshold:
        return StatementCheck(False, "not_supported", share)
    if not numbers_ok(statement, source):
        return StatementCheck(False, "number_missing", share)
    if contradicts(statement, source):
        return StatementCheck(False, "contradicts", share)
    return StatementCheck(True, "supported", share)
