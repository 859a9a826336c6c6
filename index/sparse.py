"""BM25 as Qdrant sparse vectors.

Documents get the BM25 term-frequency part, ``tf·(k1+1) / (tf + k1·(1−b+b·dl/avgdl))``;
Qdrant's IDF modifier supplies the IDF part at query time, so a query vector is
just its distinct terms with weight 1. Term IDs are a stable 32-bit hash, so no
vocabulary file has to be kept in step with the index.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

__all__ = ["SparseVec", "term_id", "bm25_document_vector", "query_vector", "char_bigrams", "K1", "B"]

K1 = 1.2
B = 0.75


@dataclass(frozen=True)
class SparseVec:
    indices: list[int]
    values: list[float]

    def __bool__(self) -> bool:
        return bool(self.indices)


def term_id(token: str) -> int:
    """Stable unsigned 32-bit ID of a token (same in every process and on every backend)."""
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=4).digest(), "big")


def _merge(ids: Counter) -> SparseVec:
    items = sorted(ids.items())
    return SparseVec([i for i, _ in items], [float(v) for _, v in items])


def bm25_document_vector(tokens: list[str], avgdl: float) -> SparseVec:
    """Sparse vector of a unit's tokens with BM25 saturation and length normalisation."""
    tf = Counter(tokens)
    dl = max(len(tokens), 1)
    weights: Counter = Counter()
    for tok, f in tf.items():
        weights[term_id(tok)] += f * (K1 + 1) / (f + K1 * (1 - B + B * dl / max(avgdl, 1.0)))
    return _merge(weights)


def query_vector(tokens: list[str]) -> SparseVec:
    """Distinct query terms, weight 1 each (the index's IDF modifier weighs them)."""
    return _merge(Counter({term_id(t): 1 for t in set(tokens)}))


_JA_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaffー々〆]+")
_LATIN = re.compile(r"[a-z0-9]{2,}")


def char_bigrams(text: str) -> list[str]:
    """Character 2-grams of the Japanese runs of ``text`` (NFKC), plus Latin words whole.

    They complement morphological tokens where staff wording and the documents'
    wording segment differently (使い道 / 活用事例 share nothing; 利活用 / 活用 do).
    """
    s = unicodedata.normalize("NFKC", text).lower()
    grams: list[str] = []
    for run in _JA_RUN.findall(s):
        if len(run) == 1:
            continue
        grams += ["\u0002" + run[i : i + 2] for i in range(len(run) - 1)]
    grams += ["\u0002" + w for w in _LATIN.findall(s)]
    return grams
