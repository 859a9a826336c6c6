"""Lookup tables built once per index version from every unit's payload.

When the searcher opens a version it reads all payloads once and keeps what
query analysis and answer composition look up on each question: section names
and which units stand under them, the glossary, the vocabulary, BM25 document
frequencies, every occurrence of each unit in document order, and the documents.

Most tables span every unit, whatever its access label, because they are built
once and shared by all callers. What each can reveal to a caller who may not see
a unit is stated on the lookup. The documents, and the corpus text that decides
whether a place name is known, are kept per access label and always read
through the caller's filter.

    >>> catalog = Catalog.build(store.scroll(flt=QueryFilter.everything()), tokenizer)   # doctest: +SKIP
    >>> catalog.section_units(["都民サービス関連業務", "判断支援"])[:2]                    # doctest: +SKIP
    ['tokyo-0b1c…', 'tokyo-12ad…']
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from index.naming import DocumentInfo
from index.store import QueryFilter
from index.text import article_caption, lexical_text, section_names
from index.tokenizer import JapaneseTokenizer
from ingest.cleaning import nfkc
from ingest.models import Unit

__all__ = ["Catalog", "Occurrence"]


@dataclass(frozen=True)
class Occurrence:
    """Where one unit's text stands: under which path, and at which line of its source."""

    unit_id: str
    doc_id: str
    path: tuple[str, ...]
    line_start: int


@dataclass
class Catalog:
    """What queries look up about one index version (see the module docstring)."""

    sections: list[str]  # bare section names of two or more characters, sorted
    unit_paths: dict[str, list[frozenset[str]]]  # unit id -> the bare section names of each of its paths
    glossary: dict[str, list[str]]  # defined term (NFKC) -> the ids of its definition units (one per document)
    vocabulary: frozenset[str]
    unit_terms: dict[str, frozenset[str]]
    term_df: Counter
    occurrences: list[Occurrence]  # in document order
    documents: dict[str, DocumentInfo]  # in the order first met; DocumentInfo.access lists its units' labels
    known_text: dict[str, str]  # access label -> NFKC text of its units, whitespace removed
    # A rule article's 見出し as its content words (「利用の制限」 → {利用, 制限}) -> the id of its first provision
    captions: dict[frozenset[str], list[str]] = field(default_factory=dict)
    _known_for: dict[frozenset[str] | None, str] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, payloads: Iterable[dict[str, Any]], tokenizer: JapaneseTokenizer) -> Catalog:
        """Read every payload once (pass the store's scroll with ``QueryFilter.everything()``:
        every unit but the registered Q&A, which the store leaves out of every ordinary read)."""
        sections: set[str] = set()
        unit_paths: dict[str, list[frozenset[str]]] = {}
        vocabulary: set[str] = set()
        unit_terms: dict[str, frozenset[str]] = {}
        glossary: dict[str, list[str]] = {}
        occurrences: list[Occurrence] = []
        documents: dict[str, DocumentInfo] = {}
        doc_labels: dict[str, set[str]] = {}
        texts: dict[str, list[str]] = {}
        first_of: dict[frozenset[str], tuple[int, str]] = {}
        for payload in payloads:
            unit = Unit.model_validate(payload)
            if unit.doc_id not in documents:
                documents[unit.doc_id] = DocumentInfo(
                    unit.doc_id, unit.doc_title, unit.issuer,
                    payload.get("issuer_kind") or "other", payload.get("authority") or "guidance",
                )
            doc_labels.setdefault(unit.doc_id, set()).add(unit.access)
            for prov in unit.provenance or []:
                occurrences.append(Occurrence(unit.id, unit.doc_id, tuple(prov.section_path), prov.line_start))
            if not unit.provenance:
                occurrences.append(Occurrence(unit.id, unit.doc_id, tuple(unit.section_path), unit.line_start))
            if unit.kind == "definition" and unit.title:
                glossary.setdefault(nfkc(unit.title), []).append(unit.id)
            texts.setdefault(unit.access, []).append(unit.norm_text)
            unit_paths[unit.id] = [frozenset(n for seg in path[1:] for n in section_names(seg)) for path in unit.all_paths()]
            sections.update(*unit_paths[unit.id])
            caption = article_caption(unit.section_path) if unit.label else ""
            if caption:
                words = frozenset(t for t in tokenizer.tokens(caption) if len(t) >= 2)
                # The article's first provision: the one that states what the 見出し names.
                if len(words) >= 2 and (words not in first_of or unit.line_start < first_of[words][0]):
                    first_of[words] = (unit.line_start, unit.id)
            terms = frozenset(tokenizer.tokens(lexical_text(unit)))
            unit_terms[unit.id] = terms
            vocabulary.update(terms)
            vocabulary.update(tokenizer.entity_terms(unit.text + "\n" + " ".join(unit.section_path)))
        for doc_id, labels in doc_labels.items():
            documents[doc_id] = replace(documents[doc_id], access=frozenset(labels))
        occurrences.sort(key=lambda o: (o.doc_id, o.line_start))
        return cls(
            sections=sorted(n for n in sections if len(n) >= 2),
            unit_paths=unit_paths,
            glossary=glossary,
            vocabulary=frozenset(vocabulary),
            unit_terms=unit_terms,
            term_df=Counter(t for terms in unit_terms.values() for t in terms),
            occurrences=occurrences,
            documents=documents,
            known_text={label: re.sub(r"\s+", "", "\n".join(t)) for label, t in texts.items()},
            captions={words: [uid] for words, (_, uid) in first_of.items()},
        )

    def section_units(self, names: Iterable[str]) -> list[str]:
        """IDs of the units with one path under every section in ``names``, of every access label.

        Per path, not over the union of a merged unit's paths: the Tokyo items repeated
        in 12 sections would otherwise all match 職員内部業務 + 廃止 because one copy sits
        under 職員内部業务 and another under some 廃止. Section names come from every unit,
        so a section only hidden units stand under can be matched; read the units
        themselves through the caller's filter.
        """
        wanted = set(names)
        return sorted(uid for uid, paths in self.unit_paths.items() if any(wanted <= p for p in paths))

    def occurrences_under(self, prefix: tuple[str, ...], *, doc_id: str | None = None) -> list[Occurrence]:
        """Every unit occurrence whose path starts with ``prefix`` (document title first), in document
        order, of every access label: the IDs and paths, never the text (read that through the filter)."""
        return [o for o in self.occurrences if o.path[: len(prefix)] == prefix and (doc_id is None or o.doc_id == doc_id)]

    def glossary_entries(self, term: str) -> list[str]:
        """IDs of the definition units of ``term`` (NFKC), of every access label."""
        return list(self.glossary.get(nfkc(term), []))

    def term_weight(self, term: str) -> float:
        """BM25's IDF of ``term`` over all units (rare words weigh more)."""
        n, df = len(self.unit_terms), self.term_df.get(term, 0)
        return math.log((n - df + 0.5) / (df + 0.5) + 1.0)

    def documents_for(self, flt: QueryFilter) -> dict[str, DocumentInfo]:
        """The documents with a unit whose access label ``flt`` admits, by doc_id.

        Only the access part of ``flt`` decides: its doc, issuer, kind and tag filters
        narrow a search, not the list of documents a caller knows of.
        """
        return {d: info for d, info in self.documents.items() if flt.admits(info.access)}

    def known_text_for(self, flt: QueryFilter) -> str:
        """The NFKC text (whitespace removed) of the units whose access label ``flt`` admits."""
        key = None if flt.access is None else frozenset(flt.access)
        text = self._known_for.get(key)
        if text is None:
            text = "".join(t for label, t in self.known_text.items() if flt.admits([label]))
            self._known_for[key] = text  # one entry per group combination in use
        return text
