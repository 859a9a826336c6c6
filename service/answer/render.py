"""Composed parts → the answer text, its numbered citations and the structured parts of the API.

The text is plain Japanese with ``[n]`` marks: per part, the model's lead (when it passed
the gate), a heading for a list, then the verbatim pieces, each in 「」 with its citation.
The office's own rules come first and national guidance after, under its own label.
"""

from __future__ import annotations

from typing import Any

from index.display import citation_label
from service.answer.compose import MAX_ITEMS_SHOWN, ComposedPart
from service.answer.prompt import ABSTAIN_TEXT
from service.models import AnswerPart, Citation, ComparisonColumn, PiecePublic

__all__ = ["citation_for", "render_parts", "more_line", "RenderedAnswer", "NEAREST_LABEL", "GUIDANCE_LABEL", "MORE_PREFIX"]

NEAREST_LABEL = "最も近い記載（回答ではありません）"
GUIDANCE_LABEL = "国・都等のガイドライン（参考）"
MORE_PREFIX = "ほか"


def more_line(listed: int) -> str:
    """The line under a long list: how many items were left out of the text (all are in the citations)."""
    return f"{MORE_PREFIX}{listed - MAX_ITEMS_SHOWN}件（全{listed}件、すべての項目は引用元に示しています）"


def citation_for(n: int, unit: dict[str, Any]) -> Citation:
    """The citation of ``unit`` as ``[n]``: document, place (第3条第3項 or section path) and the verbatim text."""
    return Citation(
        n=n,
        unit_id=unit["id"],
        doc_id=unit.get("doc_id", ""),
        doc_title=unit["doc_title"],
        authority=unit.get("authority") or "",
        label=citation_label(unit),
        section_path=unit["section_path"],
        quote=unit["text"],
        source_file=unit["source_file"],
        line_start=unit["line_start"],
        line_end=unit["line_end"],
    )


class RenderedAnswer:
    """The answer text, its citations in order of first use, the structured parts and, for a
    comparison, one column per document."""

    def __init__(self, text: str, citations: list[Citation], parts: list[AnswerPart], comparison: list[ComparisonColumn]):
        self.text = text
        self.citations = citations
        self.parts = parts
        self.comparison = comparison

    @property
    def abstained(self) -> bool:
        return not any(p.covered for p in self.parts)

    @property
    def ai_generated(self) -> bool:
        return any(p.lead for p in self.parts)


def _quoted(text: str) -> str:
    return text if text.startswith(("「", "[")) else f"「{text}」"


def render_parts(
    parts: list[ComposedPart], *, lead_text: str = "", cited: list[Citation] | None = None, documents: dict[str, Any] | None = None
) -> RenderedAnswer:
    """Lay the composed parts out as one answer with numbered citations.

    Args:
        parts: the composed parts, in question order.
        lead_text: text placed before the parts (a confidentiality verdict), already
            numbered against ``cited``.
        cited: citations ``lead_text`` uses; the parts' citations continue their numbering.
        documents: the index's documents by doc_id (titles and issuers of comparison columns).
    """
    citations: list[Citation] = list(cited or [])
    numbers: dict[str, int] = {c.unit_id: c.n for c in citations}

    def cite(unit: dict[str, Any]) -> int:
        uid = unit["id"]
        if uid not in numbers:
            numbers[uid] = len(citations) + 1
            citations.append(citation_for(numbers[uid], unit))
        return numbers[uid]

    lines: list[str] = [lead_text] if lead_text else []
    public: list[AnswerPart] = []
    several = len(parts) > 1 or bool(lead_text and parts)
    for i, part in enumerate(parts, start=1):
        if several:
            lines.append(f"（{i}）{part.question}")
        pieces = [
            PiecePublic(
                n=cite(p.unit), text=p.text, role=p.role, unit_id=p.unit_id, label=p.label,  # type: ignore[arg-type]
                doc_title=p.unit["doc_title"], scope=p.scope,  # type: ignore[arg-type]
            )
            for p in part.pieces
        ]
        shown = len(pieces)
        lead_n = None
        if not part.covered:
            # A note that already says where nothing was found (「本団体の規程には…見つかりませんでした。」)
            # replaces the general sentence rather than repeating it.
            found_nothing = [n for n in part.notes if n.endswith("見つかりませんでした。")]
            lines += found_nothing or [f"この点は{ABSTAIN_TEXT}。" if several else f"{ABSTAIN_TEXT}。"]
            lines += [f"※{n}" for n in part.notes if n not in found_nothing]
            for pc in pieces:
                lines.append(f"{NEAREST_LABEL}: {_quoted(pc.text)}[{pc.n}]")
        else:
            if part.lead:
                source = next((pc for pc in pieces if pc.unit_id == part.lead_source), pieces[0] if pieces else None)
                lead_n = source.n if source else None
                lines.append(f"{part.lead}[{lead_n}]" if source else part.lead)
            if part.heading:
                lines.append(part.heading + ":")
            items = [pc for pc in pieces if pc.role == "item"]
            shown = min(len(items), MAX_ITEMS_SHOWN) if items else len(pieces)
            listed = 0
            guidance_labelled = False
            has_local = any(pc.scope in ("local", "named") for pc in pieces)
            for pc in pieces:
                if pc.role == "item":
                    listed += 1
                    if listed > MAX_ITEMS_SHOWN:
                        continue
                    lines.append(f"・{pc.text}[{pc.n}]")
                    continue
                if has_local and pc.scope == "general" and not guidance_labelled:
                    lines.append(f"{GUIDANCE_LABEL}:")
                    guidance_labelled = True
                where = f"（{pc.doc_title} {pc.label}）" if pc.scope in ("local", "named") and pc.label else ""
                lines.append(f"{_quoted(pc.text)}{where}[{pc.n}]")
            if listed > MAX_ITEMS_SHOWN:
                lines.append(more_line(listed))
            lines += [f"※{n}" for n in part.notes]
        public.append(
            AnswerPart(
                question=part.question, shape=part.shape, covered=part.covered, lead=part.lead, lead_n=lead_n,  # type: ignore[arg-type]
                heading=part.heading, total=part.total, shown=shown, pieces=pieces, notes=part.notes,
            )
        )
    comparison = [
        _column(doc_id, covered, part, citations, documents or {})
        for part in parts if part.shape == "comparison" for doc_id, covered in part.columns
    ]
    return RenderedAnswer("\n".join(lines), citations, public, comparison)


def _column(doc_id: str, covered: bool, part: ComposedPart, citations: list[Citation], documents: dict[str, Any]) -> ComparisonColumn:
    ids = [p.unit_id for p in part.pieces if p.unit["doc_id"] == doc_id]
    doc = documents.get(doc_id)
    first = next((p.unit for p in part.pieces if p.unit["doc_id"] == doc_id), None)
    title = doc.title if doc else (first["doc_title"] if first else doc_id)
    return ComparisonColumn(
        doc_id=doc_id,
        doc_title=title,
        issuer=doc.issuer if doc else (first.get("issuer", "") if first else ""),
        authority=doc.authority if doc else (first.get("authority", "") if first else ""),
        covered=covered,
        clauses=[c for c in citations if c.unit_id in ids],
        note=None if covered else f"{title}: 該当する記載が見つかりませんでした。",
    )
