"""Ingest pipeline: manifest + files → documents → units, with a report of what happened.

Each stage is a plain function (``load_document``, ``clean_lines``,
``parse_structure``, ``finalize_units``); this module only wires them, copies the
manifest entry's metadata and a rule's 番号・制定日 and citation labels onto the
units, and records per-document figures for the dry-run summary. Last, the office's
registered Q&A (:mod:`ingest.curated`) are resolved against those units and added as
units of kind ``curated``.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from llama_index.core.schema import Document

from guideqa.errors import DocumentLoadError, IngestError, ManifestError
from ingest.cleaning import clean_lines
from ingest.curated import CURATED_FILE, CuratedLoad, load_curated
from ingest.loaders import load_document
from ingest.manifest import load_manifest
from ingest.models import DocumentMeta, Unit
from ingest.structure import ParsedStructure, parse_structure
from ingest.units import finalize_units

__all__ = ["DocumentReport", "IngestResult", "units_from_document", "ingest_corpus"]

log = logging.getLogger(__name__)


@dataclass
class DocumentReport:
    """Per-document figures. ``structure`` is ``legal`` for a rule read as 条・項・号,
    whose title line, 制定日 and 番号 are then in ``legal_title``/``enacted``/``number``."""

    doc_id: str
    file: str
    title: str
    units: int = 0
    noise_lines: Counter = field(default_factory=Counter)
    unit_stats: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    error: str | None = None
    structure: str = "general"
    legal_title: str = ""
    enacted: str = ""
    number: str = ""


@dataclass
class IngestResult:
    """``units`` holds the corpus's units and, after them, the curated ones (``curated.units``)."""

    units: list[Unit]
    documents: list[DocumentMeta]
    reports: list[DocumentReport]
    curated: CuratedLoad = field(default_factory=CuratedLoad)

    @property
    def failed(self) -> list[DocumentReport]:
        return [r for r in self.reports if r.error]


def units_from_document(document: Document, meta: DocumentMeta) -> tuple[list[Unit], DocumentReport]:
    """Turn one loaded document into finished units plus its report."""
    report = DocumentReport(doc_id=meta.doc_id, file=meta.file, title=meta.title)
    cleaned = clean_lines(document.text)
    parsed = parse_structure(meta, cleaned.lines)
    units, stats = finalize_units(meta, parsed.units)
    _stamp(units, meta, parsed)
    report.noise_lines = cleaned.dropped + parsed.dropped
    report.unit_stats = stats
    report.units = len(units)
    report.kinds = Counter(u.kind for u in units)
    if parsed.legal is not None:
        report.structure = "legal"
        report.legal_title, report.enacted, report.number = parsed.legal.title_line, parsed.legal.enacted, parsed.legal.number
    return units, report


def _stamp(units: list[Unit], meta: DocumentMeta, parsed: ParsedStructure) -> None:
    """Copy document-level metadata onto every unit, and each raw unit's citation label onto its unit.

    A unit is found by its primary path and first line: ``finalize_units`` keeps both
    when it merges duplicates or joins a short fragment into the unit before it.
    """
    labels = {(tuple(ru.path), ru.lines[0].no): ru.label for ru in parsed.units if ru.lines and ru.label}
    legal = parsed.legal
    for unit in units:
        unit.issuer_kind = meta.issuer_kind
        unit.authority = meta.authority
        unit.effective_date = meta.effective_date
        unit.label = labels.get((tuple(unit.section_path), unit.line_start), "")
        if legal is not None:
            unit.doc_number, unit.doc_enacted = legal.number, legal.enacted


def ingest_corpus(
    corpus_dir: Path,
    manifest_path: Path | None = None,
    *,
    on_document: Callable[[str], None] | None = None,
    curated_path: Path | None = None,
) -> IngestResult:
    """Read every document the manifest lists, then the registered Q&A.

    A document that cannot be read is reported by name and skipped; the rest go on.
    A document the manifest lists but the corpus lacks stops ingestion: a typo in
    ``file`` must not silently drop a rule from the index. A registered Q&A whose
    citation no longer resolves is left out with a warning (``result.curated.skipped``).

    Args:
        curated_path: the registry (default ``<corpus_dir>/curated/curated.yaml``; missing: none).

    Raises:
        ManifestError: the manifest is missing or malformed, or names a missing file.
        IngestError: no document produced any unit, or the registry is not a YAML list.
    """
    metas = load_manifest(manifest_path or corpus_dir / "manifest.json")
    for i, meta in enumerate(metas):
        if not (corpus_dir / meta.file).is_file():
            raise ManifestError(f"manifest.json の {i + 1} 番目の項目（file: {meta.file}）のファイルが {corpus_dir} にありません。")
    all_units: list[Unit] = []
    reports: list[DocumentReport] = []
    for meta in metas:
        if on_document:
            on_document(meta.file)
        path = corpus_dir / meta.file
        try:
            document = load_document(path, meta)
            units, report = units_from_document(document, meta)
            if not units:
                raise DocumentLoadError(f"{meta.file}: 単位（条項・段落）を一つも取り出せませんでした。")
        except DocumentLoadError as exc:
            log.warning("skipped %s: %s", meta.file, exc.message)
            reports.append(DocumentReport(doc_id=meta.doc_id, file=meta.file, title=meta.title, error=exc.message))
            continue
        all_units.extend(units)
        reports.append(report)
    if not all_units:
        problems = "; ".join(r.error or "" for r in reports)
        raise IngestError(f"取り込める文書がありませんでした: {problems}")
    registry = curated_path or corpus_dir / CURATED_FILE
    source = registry.relative_to(corpus_dir).as_posix() if registry.is_relative_to(corpus_dir) else registry.name
    curated = load_curated(registry, all_units, source_file=source)
    all_units.extend(curated.units)
    ids = Counter(u.id for u in all_units)
    clashes = [i for i, c in ids.items() if c > 1]
    if clashes:
        raise IngestError(f"単位 ID が重複しました: {clashes[:3]}")
    return IngestResult(units=all_units, documents=metas, reports=reports, curated=curated)
