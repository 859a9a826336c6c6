"""Deterministic metrics: the regression gate needs no LLM judge.

Every function is pure: it takes ranked IDs, texts and expectations and returns
numbers, so it can be tested on hand-made inputs and trusted on real runs.

Answer correctness is judged on **key facts** (:func:`score_key_facts`): each dev item
lists the few facts a correct answer must state, each as a list of acceptable spellings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from eval.faithfulness import figures
from ingest.cleaning import squash
from service.answer.polarity import contradicts, polarity

__all__ = [
    "hit_at",
    "reciprocal_rank",
    "ndcg_at",
    "recall_at",
    "evidence_recall",
    "context_within",
    "precision_recall",
    "mean",
    "share_true",
    "is_unsafe_verdict",
    "UNSAFE_PAIRS",
    "AnswerVerdict",
    "KeyFactScore",
    "fact_present",
    "score_key_facts",
    "score_unanswerable",
    "labels_cited",
    "labels_matched",
    "percentile",
]


def hit_at(ranked: Sequence[str], gold: Iterable[str], k: int) -> float:
    """1.0 if any gold ID is in the top ``k``."""
    g = set(gold)
    return 1.0 if any(r in g for r in ranked[:k]) else 0.0


def reciprocal_rank(ranked: Sequence[str], gold: Iterable[str], k: int = 10) -> float:
    """1/rank of the first gold ID within the top ``k`` (0 if none)."""
    g = set(gold)
    for i, r in enumerate(ranked[:k], start=1):
        if r in g:
            return 1.0 / i
    return 0.0


def ndcg_at(ranked: Sequence[str], gold: Iterable[str], k: int = 10) -> float:
    """Binary-relevance nDCG@k."""
    g = set(gold)
    if not g:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 1) for i, r in enumerate(ranked[:k], start=1) if r in g)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(g), k) + 1))
    return dcg / ideal if ideal else 0.0


def recall_at(ranked: Sequence[str], gold: Iterable[str], k: int = 10) -> float:
    """Share of gold IDs found in the top ``k``."""
    g = set(gold)
    if not g:
        return 0.0
    return len(g & set(ranked[:k])) / len(g)


def context_within(texts: Sequence[str], budget_chars: int = 2000) -> str:
    """The ranked texts concatenated, cut at ``budget_chars`` (what a prompt of that size would hold)."""
    out, used = [], 0
    for t in texts:
        if used >= budget_chars:
            break
        out.append(t[: budget_chars - used])
        used += len(out[-1])
    return "\n".join(out)


def evidence_recall(evidence: Sequence[str], context: str) -> float:
    """Share of evidence quotes found (NFKC, whitespace ignored) in ``context``."""
    if not evidence:
        return 0.0
    c = squash(context)
    return sum(1 for e in evidence if squash(e) in c) / len(evidence)


def precision_recall(pairs: Iterable[tuple[bool, bool]]) -> dict[str, float]:
    """Precision/recall/accuracy of predicted vs. actual booleans (positive = True)."""
    tp = fp = fn = tn = 0
    for predicted, actual in pairs:
        if predicted and actual:
            tp += 1
        elif predicted:
            fp += 1
        elif actual:
            fn += 1
        else:
            tn += 1
    total = tp + fp + fn + tn
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "accuracy": (tp + tn) / total if total else 0.0,
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
    }


def percentile(values: Iterable[float], q: float, nd: int = 2) -> float | None:
    """The ``q`` quantile (nearest rank below, ``0 <= q <= 1``) of ``values``, rounded to ``nd`` places; ``None`` when empty.

    >>> percentile([40, 10, 30, 20], 0.5)
    30
    """
    ordered = sorted(values)
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], nd)


def share_true(values: Iterable[bool | None]) -> float | None:
    """Share of True among the values that are not None, rounded to 4 places (None when there are none)."""
    v = mean(1.0 if x else 0.0 for x in values if x is not None)
    return None if v is None else round(v, 4)


def mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(vals) / len(vals) if vals else None


# (predicted, expected) verdict pairs that are unsafe: the system says more is
# allowed than the reference does.
UNSAFE_PAIRS = {
    ("可", "条件付きで可"), ("可", "不可"), ("可", "判断できない"),
    ("条件付きで可", "不可"),
}


def is_unsafe_verdict(predicted: str, expected: str) -> bool:
    """可 where the reference says 条件付き/不可/判断できない, or 条件付き where it says 不可."""
    return (predicted, expected) in UNSAFE_PAIRS


AnswerVerdict = Literal["correct", "partial", "wrong"]
_MARK = re.compile(r"\[\d{1,2}\]")
_CAPTION = re.compile(r"[(（][^()（）]*[)）]")


@dataclass(frozen=True)
class KeyFactScore:
    """How an answer fares against an item's key facts.

    ``verdict``: ``correct`` (every fact, nothing contradicting, valid citations, a gold
    unit cited), ``partial`` (some facts, or all of them without a gold unit cited) or
    ``wrong``. ``reasons`` says what kept it from ``correct``. ``recall`` is the share
    of facts stated (the recall of an enumeration); ``parts_answered`` the share of a
    multi-part question's parts whose facts are all stated; ``figure_ok`` whether every
    fact that holds a figure is stated (``None`` when no fact does).
    """

    verdict: AnswerVerdict
    found: tuple[bool, ...]
    reasons: tuple[str, ...]
    stray_figures: tuple[str, ...]
    recall: float
    parts_answered: float | None
    figure_ok: bool | None

    def to_row(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "found": list(self.found),
            "recall": round(self.recall, 4),
            "reasons": list(self.reasons),
            "stray_figures": list(self.stray_figures),
            "parts_answered": None if self.parts_answered is None else round(self.parts_answered, 4),
            "figure_ok": self.figure_ok,
        }


def fact_present(spellings: Sequence[str], text: str) -> bool:
    """True when any spelling occurs in ``text`` (both squashed: NFKC, no whitespace; ``[n]`` marks ignored).

    >>> fact_present(["18府省庁", "18の府省庁"], "２５府省庁中、１８府省庁です。[1]")
    True
    """
    t = squash(_MARK.sub("", text))
    return any(squash(s) and squash(s) in t for s in spellings)


def score_key_facts(
    *,
    answer: str,
    key_facts: Sequence[Sequence[str]],
    written: Sequence[str],
    lead: str,
    citations_valid: bool,
    gold_cited: bool,
    abstained: bool = False,
    parts: Sequence[Sequence[Sequence[str]]] = (),
    verdict_facts: Sequence[Sequence[str]] = (),
    allowed_figures: Iterable[str] = (),
) -> KeyFactScore:
    """Judge one answer to an answerable item against its key facts.

    A contradiction makes the answer wrong whatever else it states: a figure the
    system wrote itself (``written``: the answer without its verbatim quotes) that is
    among neither the key facts' figures nor ``allowed_figures``, or a ``lead``
    sentence whose stance is the opposite of a verdict fact (the answer to a yes/no
    question, 「入力できない」「利用可」; see :mod:`service.answer.polarity`).

    Args:
        answer: the answer text as shown, quotes included.
        key_facts: the item's facts, each a list of acceptable spellings.
        written: the statements' own words (:attr:`eval.faithfulness.Faithfulness.written_text`).
        lead: the first written statement (:attr:`eval.faithfulness.Faithfulness.lead`).
        citations_valid: every citation names a unit the answer could cite and quotes it verbatim.
        gold_cited: at least one citation is a gold unit.
        abstained: the system declined; wrong, whatever the text around the refusal quotes.
        parts: for a multi-part item, each part's key facts.
        verdict_facts: the facts that answer a yes/no question (the key facts of a
            ``may_i`` item or part); only those with a stance of their own are compared
            with the lead.
        allowed_figures: figures that are not wrong where they stand, e.g. those of the
            question itself and of the gold units.

    Returns:
        The verdict and what it rests on.

    Raises:
        ValueError: ``key_facts`` is empty (such an item cannot be judged this way).
    """
    if not key_facts:
        raise ValueError("an item without key facts cannot be judged on them")
    if abstained:
        return KeyFactScore(
            verdict="wrong",
            found=(False,) * len(key_facts),
            reasons=("abstained",),
            stray_figures=(),
            recall=0.0,
            parts_answered=0.0 if parts else None,
            figure_ok=None,
        )
    found = tuple(fact_present(f, answer) for f in key_facts)
    fact_figures = {n for f in key_facts for s in f for n in figures(s)}
    allowed = fact_figures | set(allowed_figures)
    stray = tuple(dict.fromkeys(n for text in written for n in figures(text) if n not in allowed))
    reasons: list[str] = []
    if not citations_valid:
        reasons.append("invalid citation")
    if stray:
        reasons.append("figure not in the key facts: " + ", ".join(stray))
    opposed = [f[0] for f in verdict_facts if lead and polarity(f[0]) and contradicts(lead, f[0])]
    reasons += [f"lead contradicts「{fact}」" for fact in opposed]
    missing = [f[0] for f, ok in zip(key_facts, found) if not ok]
    if missing:
        reasons.append("missing: " + " / ".join(missing))
    if not gold_cited:
        reasons.append("no gold unit cited")
    if not citations_valid or stray or opposed or not any(found):
        verdict: AnswerVerdict = "wrong"
    elif missing or not gold_cited:
        verdict = "partial"
    else:
        verdict = "correct"
    with_figures = [ok for f, ok in zip(key_facts, found) if any(figures(s) for s in f)]
    parts_answered = (
        sum(all(fact_present(f, answer) for f in p) for p in parts) / len(parts) if parts else None
    )
    return KeyFactScore(
        verdict=verdict,
        found=found,
        reasons=tuple(reasons),
        stray_figures=stray,
        recall=sum(found) / len(found),
        parts_answered=parts_answered,
        figure_ok=all(with_figures) if with_figures else None,
    )


def score_unanswerable(abstained: bool) -> KeyFactScore:
    """An item the documents do not answer is answered correctly by declining."""
    return KeyFactScore(
        verdict="correct" if abstained else "wrong",
        found=(),
        reasons=() if abstained else ("answered a question the documents do not answer",),
        stray_figures=(),
        recall=1.0 if abstained else 0.0,
        parts_answered=None,
        figure_ok=None,
    )


def labels_cited(expected: Sequence[str], cited_paths: Sequence[Sequence[str]]) -> float:
    """Share of expected citation labels (「第3条第3項」) found among the cited units' section paths.

    Captions in brackets (「第8条（入力の制限）」) are ignored, so a path
    ``[…, "第8条（入力の制限）", "第2項"]`` carries the label 「第8条第2項」.
    """
    if not expected:
        return 1.0
    joined = ["".join(squash(_CAPTION.sub("", part)) for part in path) for path in cited_paths]
    return sum(any(squash(label) in j for j in joined) for label in expected) / len(expected)


def labels_matched(expected: Sequence[str], cited: Sequence[tuple[str, str]]) -> list[str]:
    """The expected citation labels that some citation carries, compared squashed (NFKC, no whitespace).

    A citation carries its label (「第11条第1項」) and, for a question over several offices'
    rules, its document title with the label (「汐見野市生成AI利用規程 第15条第3項」).

    Args:
        expected: the labels a correct answer cites.
        cited: ``(doc_title, label)`` of every citation of the answer.

    Returns:
        The expected labels found, in their order.

    >>> labels_matched(["第11条第1項"], [("汐見野市生成AI利用規程", "第１１条第１項")])
    ['第11条第1項']
    >>> labels_matched(["汐見野市生成AI利用規程 第15条第3項"], [("汐見野市生成AI利用規程", "第15条第3項")])
    ['汐見野市生成AI利用規程 第15条第3項']
    """
    carried = {squash(label) for _, label in cited if label} | {squash(title + label) for title, label in cited if label}
    return [label for label in expected if squash(label) in carried]
