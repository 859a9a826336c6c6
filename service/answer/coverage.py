"""Does the corpus cover the question? Decided from retrieval scores, before any LLM call.

RRF scores are rank-based and say nothing about coverage, so the decision uses
the two signals behind them for the best hit: the cosine similarity of question
and unit (e5, ``dense_score``) and the share of the question's content words
found in the unit (``lexical``). The thresholds were chosen on the dev set's
answerable vs. unanswerable questions (eval/BENCHMARKS.md, "abstention").
"""

from __future__ import annotations

from dataclasses import dataclass

from index.search import SearchHit

__all__ = ["Coverage", "assess_coverage", "MIN_DENSE", "MIN_LEXICAL", "STRONG_DENSE"]

MIN_DENSE = 0.84
MIN_LEXICAL = 0.34
STRONG_DENSE = 0.88
STRONG_LEXICAL = 0.5


@dataclass(frozen=True)
class Coverage:
    covered: bool
    best_dense: float
    best_lexical: float
    reason: str

    @property
    def strong(self) -> bool:
        """The best hit alone answers closely enough to quote it when the model declines."""
        return self.covered and self.best_lexical >= STRONG_LEXICAL


def assess_coverage(
    hits: list[SearchHit],
    *,
    unknown_entities: list[str] = (),  # type: ignore[assignment]
    min_dense: float = MIN_DENSE,
    min_lexical: float = MIN_LEXICAL,
    strong_dense: float = STRONG_DENSE,
) -> Coverage:
    """Not covered when the question names something the corpus never mentions (横浜市, Copilot),
    or when no top hit is close in meaning and shares enough words; covered otherwise."""
    if not hits:
        return Coverage(False, 0.0, 0.0, "no_hits")
    if unknown_entities:
        return Coverage(False, hits[0].dense_score, hits[0].lexical, "unknown_entities")
    top = hits[:3]
    best_dense = max(h.dense_score for h in top)
    best_lexical = max(h.lexical for h in top)
    for h in top:
        if h.dense_score >= strong_dense or (h.dense_score >= min_dense and h.lexical >= min_lexical):
            return Coverage(True, best_dense, best_lexical, "covered")
    return Coverage(False, best_dense, best_lexical, "low_scores")
