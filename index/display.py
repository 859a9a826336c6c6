"""How a hit is shown: under the section the question named, with the words it matched.

    >>> highlight_terms("機密性３Ｃの情報", ["3C", "機密性3C", "情報"])
    ['機密性3C', '情報']
"""

from __future__ import annotations

from typing import Any

from index.text import bare_section, section_names
from ingest.cleaning import nfkc

__all__ = ["shown_under", "highlight_terms", "citation_label"]


def citation_label(unit: dict[str, Any]) -> str:
    """How a citation names a unit's place: 「第3条第3項」 for a rule, else the last sections of its path."""
    if unit.get("label"):
        return unit["label"]
    path = [bare_section(s) for s in unit["section_path"][1:]]
    path = [p for p in path if p]
    return " > ".join(path[-2:])


def shown_under(payload: dict[str, Any], sections: list[str]) -> dict[str, Any]:
    """The unit as seen from the sections the question named.

    A merged unit carries the path of its first occurrence; when the question named
    職員内部業務 > 廃止, the citation should show (and link to) that occurrence, not the
    都民サービス one the same wording was first found under.
    """
    if not sections:
        return payload
    wanted = set(sections)
    for prov in payload.get("provenance") or []:
        if wanted <= {n for seg in prov["section_path"][1:] for n in section_names(seg)}:
            if prov["section_path"] == payload["section_path"]:
                return payload
            return {**payload, **{k: prov[k] for k in ("section_path", "source_file", "line_start", "line_end") if k in prov}}
    return payload


def highlight_terms(text: str, terms: list[str]) -> list[str]:
    """The terms that occur in ``text`` (NFKC-insensitive), longest first, none inside one already found."""
    norm = nfkc(text).lower()
    found: list[str] = []
    for t in sorted(set(terms), key=len, reverse=True):
        if t and t.lower() in norm and not any(t.lower() in f.lower() for f in found):
            found.append(t)
    return found
