"""Deterministic metrics: the regression gate needs no LLM judge.

Every function is pure: it takes ranked IDs, texts and expectations and returns
numbers, so it can be tested on hand-made inputs and trusted on real runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from ingest.cleaning import squash

__all__ = [
    "hit_at",
    "reciprocal_rank",
    "ndcg_at",
    "recall_at",
    "evidence_recall",
    "context_within",
    "precision_recall",
    "mean",
    "is_unsafe_verdict",
    "UNSAFE_PAIRS",
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
