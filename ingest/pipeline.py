"""Ingest pipeline: manifest + files → documents → units, with a report of what happened.

Each stage is a plain function (``load_document``, ``clean_lines``,
``parse_structure``, ``finalize_units``); this module only wires them and
records per-document figures for the dry-run summary.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from llama_index.core.schema import Document

from guideqa.errors import DocumentLoadError, IngestError
from ingest.cleaning import clean_lines
from ingest.loaders import load_document
from ingest.manifest import load_manifest
from ingest.models import DocumentMeta, Unit
from ingest.structure import parse_structure
from ingest.units import finalize_units

__all__ = ["DocumentReport", "IngestResult", "units_from_document", "ingest_corpus"]

log = logging.getLogger(__name__)


@dataclass
class DocumentReport:
    doc_id: str
    file: str
    title: str
    units: int = 0
    noise_lines: Counter = field(default_factory=Counter)
    unit_stats: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    error: str | None = None


@dataclass
class IngestResult:
    units: list[Unit]
    documents: list[DocumentMeta]
    reports: list[DocumentReport]

    @property
    def failed(self) -> list[DocumentReport]:
        return [r for r in self.reports if r.error]


def units_from_document(document: Document, meta: DocumentMeta) -> tuple[list[Unit], DocumentReport]:
    """Turn one loaded document into finished units plus its report."""
    report = DocumentReport(doc_id=meta.doc_id, file=meta.file, title=meta.title)
    cleaned = clean_lines(document.text)
    raw_units, structural = parse_structure(meta, cleaned.lines)
    units, stats = finalize_units(meta, raw_units)
    report.noise_lines = cleaned.dropped + structural
    report.unit_stats = stats
    report.units = len(units)
    report.kinds = Counter(u.kind for u in units)
    return units, report


def ingest_corpus(
    corpus_dir: Path,
    manifest_path: Path | None = None,
    *,
    on_document: Callable[[str], None] | None = None,
) -> IngestResult:
    """Read every document the manifest lists.

    A document that cannot be read is reported by name and skipped; the rest go on.

    Raises:
        ManifestError: the manifest is missing or malformed.
        IngestError: no document produced any unit.
    """
    metas = load_manifest(manifest_path or corpus_dir / "manifest.json")
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
    ids = Counter(u.id for u in all_units)
    clashes = [i for i, c in ids.items() if c > 1]
    if clashes:
        raise IngestError(f"単位 ID が重複しました: {clashes[:3]}")
    return IngestResult(units=all_units, documents=metas, reports=reports)
