"""What a question asks of the index: the sections it names, the terms whose meaning
it asks, the documents it names and the entities the index does not know.

The rules read the question's wording (NFKC, spaces removed). The names they match
come from the live version's :class:`~index.catalog.Catalog`, never from a fixed
list, so an office's newly ingested rule is recognised at once.

    >>> pinned_sections("都民サービス関連業務の判断支援で必須の項目は？", catalog)   # doctest: +SKIP
    (['都民サービス関連業務', '判断支援'], ['tokyo-0b1c…', …])
    >>> defined_terms("ハルシネーションとはどういう意味？", catalog)                # doctest: +SKIP
    ['tokyo-5e7f…']
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

from index.catalog import Catalog
from index.naming import NamedDocuments, named_documents
from index.store import QueryFilter
from index.tokenizer import JapaneseTokenizer
from ingest.cleaning import squash

__all__ = ["pinned_sections", "defined_terms", "documents_named", "unknown_entities"]

_DEFINITION_INTENT = re.compile(r"定義|意味|とは|って何|ってなに|って(?:どういう|どんな)こと|指す")
_ASKED_ABOUT = r"[」』\"]?(?:って|とは|の定義|の意味|は何|はなに)"  # the term is what is asked about


def pinned_sections(query: str, catalog: Catalog) -> tuple[list[str], list[str]]:
    """Section names the query mentions that one path of some unit runs through together,
    and the IDs of the units on such a path (``([], [])`` when it names none).

    Longest match wins (都民サービス関連業務 over 都民サービス); of the names found, the
    largest combination that one path contains is kept, so a stray generic
    name (フェーズ) cannot empty the filter. Names and IDs span every access label
    (see :meth:`Catalog.section_units`).
    """
    q = squash(query)
    hits = [s for s in catalog.sections if len(s) >= 2 and s in q]
    hits = [s for s in hits if not any(s != o and s in o for o in hits)][:6]
    for size in range(len(hits), 0, -1):
        # Of the combinations one path holds, the most specific (longest names) wins:
        # 都民サービス関連業務 + 運用 over フェーズ + 運用.
        for combo in sorted(itertools.combinations(hits, size), key=lambda c: -sum(len(n) for n in c)):
            if size == 1 and len(combo[0]) < 3:
                continue
            ids = catalog.section_units(combo)
            if ids:
                return list(combo), ids
    return [], []


#: At most this many articles are pinned by their 見出し (the most specific first).
MAX_CAPTIONS_PINNED = 2


def captioned_articles(words: Iterable[str], catalog: Catalog) -> list[str]:
    """IDs of the units of the rule articles whose 見出し the question says in full, in the rules'
    words after the staff→rule expansions (「使っちゃダメな業務」 → 利用・禁止・制限・事務 covers
    「利用の制限」). A 見出し is what its article is about; two or more of its words are needed."""
    said = set(words)
    found = sorted((c for c in catalog.captions if c <= said), key=len, reverse=True)[:MAX_CAPTIONS_PINNED]
    return sorted({uid for c in found for uid in catalog.captions[c]})


def defined_terms(query: str, catalog: Catalog) -> list[str]:
    """IDs of the definitions of the terms a question asks the meaning of (生成AIって何？).

    Only when the question asks what something means: a question that merely
    uses ハルシネーション should not get the glossary entry pushed up. Longest
    match wins, so 生成AI does not also pin AI. The glossary spans every access label.
    """
    q = squash(query)
    if not _DEFINITION_INTENT.search(q):
        return []
    found = [t for t in catalog.glossary if len(t) >= 2 and re.search(re.escape(t) + _ASKED_ABOUT, q)]
    return sorted(i for t in found if not any(t != o and t in o for o in found) for i in catalog.glossary[t])


def documents_named(query: str, catalog: Catalog, tokenizer: JapaneseTokenizer, *, flt: QueryFilter) -> NamedDocuments:
    """The documents ``query`` names among those ``flt`` admits, and place names none of them knows.

    Staff shorthand names documents too: デジ庁 is デジタル庁 (``index/data/synonyms.tsv``).
    A document the caller may not see is never named, and a place name only it
    mentions is reported unknown, as it would be if the document did not exist.
    """
    squashed = squash(query).upper()
    expanded = query + "".join(" " + e for short, exps in tokenizer.synonyms if short.upper() in squashed for e in exps)
    return named_documents(expanded, catalog.documents_for(flt), known_text=catalog.known_text_for(flt))


def unknown_entities(query: str, catalog: Catalog, tokenizer: JapaneseTokenizer) -> list[str]:
    """Names in ``query`` (organisations, products, places) that no unit of the index contains.

    The vocabulary spans every access label: a name that only hidden units contain
    is not reported unknown.
    """
    return [e for e in tokenizer.entity_terms(query) if e not in catalog.vocabulary]
