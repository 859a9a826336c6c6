"""Statement-level faithfulness: does every statement of an answer stand on the clause it cites?

Deterministic and local, so it runs on every answered item and can gate a release
(ragas ``Faithfulness`` needs an LLM judge; see :mod:`eval.ragas_judge`). It adds no
test of its own: the answer is split by the project's one sentence splitter
(:func:`service.answer.gate.split_sentences`) and each statement is judged by the
citation gate's own check (:func:`service.answer.gate.check_statement`: content words,
every figure present, polarity agrees).

Two kinds of statement are told apart, because only one of them can be unfaithful:

* **quote** — text that occurs verbatim in a unit the statement cites (compared with
  :func:`ingest.cleaning.squash`): text inside 「」, or a whole list line, framed by at
  most a label such as 「該当箇所:」 or 「…と定めています」 (no figure, no stance, at most
  :data:`FRAME_MAX_WORDS` content words outside the quote, and shorter than it).
  Supported by construction.
* **written** — everything else: the model's lead sentence, a paraphrase, a quote that
  is not verbatim. Checked against the cited clause(s).

Some sentences assert nothing and are left out (counted in ``skipped``): a question
echoed as a heading (「（1）CAIOって何？」), a refusal (「…記載が見つかりませんでした」), and a
line made only of where-labels — a cited unit's document title, section path or citation label, and the
item counts the composer computed (``allowed_figures``).

A statement carries the ``[n]`` marks that follow it; a statement without marks (a lead
sentence, or the first half of a quote that a 「。」 split) is checked against every
clause the answer cites, as the gate does with an unmarked sentence.

    >>> from index.tokenizer import get_tokenizer
    >>> f = statement_faithfulness("はい。「生成AIを利用開始済み」[1]", {1: "18府省庁において、生成AIを利用開始済み"}, get_tokenizer())
    >>> [(s.kind, s.supported) for s in f.statements]
    [('written', False), ('quote', True)]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from index.text import bare_section
from index.tokenizer import COMPOUND_PREFIX, JapaneseTokenizer
from ingest.cleaning import clean_inline, nfkc, squash
from service.answer.gate import check_statement, split_sentences
from service.answer.render import GUIDANCE_LABEL, MORE_PREFIX, NEAREST_LABEL
from service.answer.polarity import polarity
from service.answer.prompt import ABSTAIN_TEXT

__all__ = [
    "FRAME_MAX_WORDS",
    "StatementVerdict",
    "Faithfulness",
    "statement_faithfulness",
    "figures",
    "is_verbatim",
]

StatementKind = Literal["quote", "written"]

# A frame is a label or connective around a quote (「ガイドラインの該当箇所:」 has 3 content
# words, 「最も関連する可能性のある箇所:」 4, 「…と定めています」 2). A fifth word outside the
# quote is a claim of its own and makes the statement "written".
FRAME_MAX_WORDS = 4

_OPEN, _CLOSE = "「『", "」』"
_ELLIPSIS = re.compile(r"…+|⋯+|\.{3,}")
# A table row is quoted as 「header: cell / header: cell」, each cell verbatim.
_CELL_SEPARATOR = re.compile(r"\s+/\s+")
# List numbering the system adds in front of an item (「1. 」「(2)」「③」 after NFKC) is not a figure.
_ENUMERATOR = re.compile(r"^\s*(?:[-・*•]\s*)?(?:[(（]?\d{1,2}[)）.．、:]|\d{1,2}\s)\s*")
_LIST_MARK = re.compile(r"^[\s\-・•▶►➤➢>»■●○◆‣*✓✔☑]+")
# A figure is a number standing on its own: digits glued to Latin letters or following a dot
# are part of a code or label (機密性3A, GPT-4o, No.24), not a quantity an answer could get wrong.
_FIGURE = re.compile(r"(?<![A-Za-z\d.])\d+(?:\.\d+)?(?![A-Za-z\d])")
_LABEL_PUNCT = re.compile(r"[\s()（）<>＞〉>:：、,，・/]")
_QUESTION_END = re.compile(r"[？?][\s:：]*$")
# Lines the answer composer writes around the quotes, saying where they come from and what
# they are, not what the documents say: 「国・都等のガイドライン（参考）:」, a 「※」 note,
# the nearest passage shown under a not-found part.
_COMPOSER_FRAME = re.compile(
    "^(?:" + "|".join(re.escape(x) for x in (GUIDANCE_LABEL, NEAREST_LABEL)) + r")|^※|^(?:[^「」]{1,60}):$"
    + r"|^" + re.escape(MORE_PREFIX) + r"\d+件（全\d+件"
)
_LEVEL_TAG = re.compile(r"\[[^\[\]]{1,8}\]")
# The refusal wording of service.answer, for a whole answer (ABSTAIN_TEXT), one part of it or
# one document of a comparison (「…について: 該当する記載が見つかりませんでした」).
_REFUSAL = re.compile(re.escape(ABSTAIN_TEXT) + "|記載が見つかりません")


@dataclass(frozen=True)
class StatementVerdict:
    """One statement and whether its cited clause(s) support it.

    ``reason`` is ``verbatim_quote`` for a quote, else the reason of
    :class:`service.answer.gate.StatementCheck` against the best source
    (``supported``, ``not_supported``, ``number_missing``, ``contradicts``), or
    ``no_source`` when the statement cites nothing the answer gives.
    ``own`` is what the system wrote in it: the statement without its verbatim quotes
    and where-labels.
    """

    text: str
    cites: tuple[int, ...]
    kind: StatementKind
    supported: bool
    reason: str
    support: float
    own: str


@dataclass(frozen=True)
class Faithfulness:
    """The statements of one answer with their verdicts, and the shares a report needs."""

    statements: tuple[StatementVerdict, ...]
    skipped: int = 0

    @property
    def n(self) -> int:
        return len(self.statements)

    @property
    def n_supported(self) -> int:
        return sum(s.supported for s in self.statements)

    @property
    def n_written(self) -> int:
        return sum(s.kind == "written" for s in self.statements)

    @property
    def n_written_supported(self) -> int:
        return sum(s.supported for s in self.statements if s.kind == "written")

    @property
    def share(self) -> float | None:
        """Supported statements / all statements (``None`` for an answer with none)."""
        return self.n_supported / self.n if self.n else None

    @property
    def written_share(self) -> float | None:
        """Supported / all of the statements the system wrote (``None`` when it only quoted)."""
        return self.n_written_supported / self.n_written if self.n_written else None

    @property
    def lead(self) -> str:
        """The first written statement (the answer's lead sentence), or ``""``."""
        return next((s.text for s in self.statements if s.kind == "written"), "")

    @property
    def written_text(self) -> list[str]:
        """Every statement's own words, verbatim quotes and labels removed: what the system asserted itself."""
        return [s.own for s in self.statements if s.own.strip()]

    def to_row(self) -> dict[str, Any]:
        """The fields ``results.jsonl`` keeps for one answer."""
        return {
            "n": self.n,
            "supported": self.n_supported,
            "quote": self.n - self.n_written,
            "written": self.n_written,
            "written_supported": self.n_written_supported,
            "skipped": self.skipped,
            "share": _round(self.share),
            "written_share": _round(self.written_share),
            "lead": self.lead,
            "written_text": self.written_text,
            "unsupported": [
                {"statement": s.text, "cites": list(s.cites), "reason": s.reason, "support": round(s.support, 3)}
                for s in self.statements
                if not s.supported
            ],
        }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def figures(text: str) -> list[str]:
    """The figures a text states, in order: NFKC digits with thousands separators removed.

    List numbering at the start (「1. 」「(2)」) and codes (「3A」「GPT-4o」) are not figures.

    >>> figures("約４，０００戸、2.5倍、機密性３Ａ")
    ['4000', '2.5']
    """
    t = _ENUMERATOR.sub("", nfkc(text))
    t = re.sub(r"(?<=\d),(?=\d{3})", "", t)
    return _FIGURE.findall(t)


def _verbatim_forms(text: str) -> tuple[str, ...]:
    # A unit's text keeps its source markup (「- 」 bullets, ** emphasis); a quote may drop it.
    cleaned = "".join(clean_inline(line) for line in text.splitlines())
    return (squash(text), squash(cleaned))


def is_verbatim(quote: str, source: str) -> bool:
    """True when ``quote`` occurs in ``source`` (NFKC, whitespace ignored).

    「…」 marks an elision and 「 / 」 separates the cells of a table row: each piece must
    occur on its own.

    >>> is_verbatim("利用 開始済み", "18府省庁において、生成AIを利用開始済み")
    True
    """
    pieces = [squash(p) for chunk in _ELLIPSIS.split(quote) for p in _CELL_SEPARATOR.split(chunk)]
    pieces = [p for p in pieces if p]
    if not pieces:
        return False
    forms = _verbatim_forms(source)
    return all(any(p in f for f in forms) for p in pieces)


def _split_quotes(statements: list[str]) -> list[tuple[list[str], str]]:
    """For each statement, its quoted segments and the text outside them.

    Brackets are tracked across statements: the splitter cuts a quote that contains
    「。」 in two, and each half is still quoted text. Nested brackets stay inside their quote.
    """
    out: list[tuple[list[str], str]] = []
    depth = 0
    for body in statements:
        segments: list[str] = []
        outside: list[str] = []
        buf: list[str] = []
        for ch in body:
            if ch in _OPEN:
                if depth == 0:
                    outside.append("".join(buf))
                    buf = []
                else:
                    buf.append(ch)
                depth += 1
            elif ch in _CLOSE and depth > 0:
                depth -= 1
                if depth == 0:
                    segments.append("".join(buf))
                    buf = []
                else:
                    buf.append(ch)
            else:
                buf.append(ch)
        (segments if depth > 0 else outside).append("".join(buf))
        out.append(([s for s in segments if squash(s)], "".join(outside)))
    return out


def _label_keys(labels: Iterable[str]) -> list[str]:
    keys = {squash(x) for label in labels for x in (label, bare_section(label)) if squash(x)}
    return sorted(keys, key=len, reverse=True)


def _strip_labels(text: str, keys: Sequence[str]) -> str:
    """``text`` squashed, with every where-label removed (longest first)."""
    s = squash(text)
    for k in keys:
        s = s.replace(k, " ")
    return s


def _is_label(text: str, keys: Sequence[str]) -> bool:
    """Nothing but labels, separators and the like (「パーソナライズド支援 > 運用」)."""
    return not _LABEL_PUNCT.sub("", _strip_labels(text, keys))


def _content_words(tokenizer: JapaneseTokenizer, text: str) -> set[str]:
    return {t for t in tokenizer.tokens(text) if not t.startswith(COMPOUND_PREFIX)}


def _own_figures(text: str, allowed: set[str]) -> list[str]:
    return [n for n in figures(text) if n not in allowed]


def _is_heading(tokenizer: JapaneseTokenizer, own: str, allowed: set[str]) -> bool:
    """No figure of its own, no stance, a few words: a label or connective, not a claim."""
    return not _own_figures(own, allowed) and not polarity(own) and len(_content_words(tokenizer, own)) <= FRAME_MAX_WORDS


def _is_frame(tokenizer: JapaneseTokenizer, own: str, quoted: list[str], allowed: set[str]) -> bool:
    # Longer than what it frames, the outside text is the statement, not its label.
    return _is_heading(tokenizer, own, allowed) and len(squash(own)) <= sum(len(squash(q)) for q in quoted)


def statement_faithfulness(
    answer: str,
    sources: Mapping[int, str],
    tokenizer: JapaneseTokenizer,
    *,
    labels: Mapping[int, Sequence[str]] | None = None,
    allowed_figures: Iterable[str] = (),
) -> Faithfulness:
    """Judge every statement of ``answer`` against the clauses it cites.

    Args:
        answer: the answer text with ``[n]`` citation marks, as the user sees it.
        sources: ``n`` → the full text of the unit cited as ``[n]`` (a table row may add
            its ``header: cell`` row after a newline, as the gate's sources do).
        tokenizer: the project's tokenizer (``index.tokenizer.get_tokenizer()``).
        labels: ``n`` → where-labels of that unit (document title, citation label,
            section path elements), which an answer prints beside its quotes.
        allowed_figures: figures the system computed rather than asserted (the item
            count of a listed section).

    Returns:
        The verdict of every statement, in answer order (none for an empty answer).
    """
    allowed = set(allowed_figures)
    keys = _label_keys(x for ls in (labels or {}).values() for x in ls)
    parsed = split_sentences(answer)
    quotes = _split_quotes([body for body, _ in parsed])
    everything = list(dict.fromkeys(n for _, cites in parsed for n in cites if n in sources))
    verdicts: list[StatementVerdict] = []
    skipped = 0
    for (body, cites), (segments, outside) in zip(parsed, quotes):
        if _REFUSAL.search(body) or _QUESTION_END.search(body) or _COMPOSER_FRAME.match(body):
            skipped += 1
            continue
        candidates = [n for n in dict.fromkeys(cites) if n in sources] if cites else everything
        texts = [sources[n] for n in candidates]
        line = _LIST_MARK.sub("", _ENUMERATOR.sub("", body))
        if texts and any(is_verbatim(line, t) for t in texts):
            # A list line or sentence copied whole from its clause (a checklist item, a bullet).
            verdicts.append(StatementVerdict(body, tuple(cites), "quote", True, "verbatim_quote", 1.0, ""))
            continue
        content = [seg for seg in segments if not _is_label(seg, keys)]
        not_verbatim = [seg for seg in content if not any(is_verbatim(seg, t) for t in texts)]
        own_raw = outside + "".join(not_verbatim)
        stripped = _strip_labels(own_raw, keys)
        # A checklist level in brackets ([必須]) names which items are listed, like a label.
        own = _LABEL_PUNCT.sub(" ", _LEVEL_TAG.sub(" ", stripped)).strip()
        names_a_place = len(content) < len(segments) or stripped != squash(own_raw)
        if not content and names_a_place and _is_heading(tokenizer, own, allowed):
            skipped += 1  # 「<section>」の項目（6件）: says where, not what
            continue
        if not texts:
            verdicts.append(StatementVerdict(body, tuple(cites), "written", False, "no_source", 0.0, own))
            continue
        if content and not not_verbatim and _is_frame(tokenizer, own, content, allowed):
            verdicts.append(StatementVerdict(body, tuple(cites), "quote", True, "verbatim_quote", 1.0, own))
            continue
        claim = _strip_labels(body, keys) if keys else body
        checks = [check_statement(tokenizer, claim, t) for t in texts]
        best = max(checks, key=lambda c: (c.supported, c.support))
        verdicts.append(StatementVerdict(body, tuple(cites), "written", best.supported, best.reason, best.support, own))
    return Faithfulness(tuple(verdicts), skipped)
