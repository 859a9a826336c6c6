"""Finish raw units: stable IDs, content hashes, noise filtering and deduplication."""

from __future__ import annotations

import hashlib
import re
from collections import Counter

from ingest.cleaning import nfkc, squash
from ingest.models import PATH_SEP, DocumentMeta, Provenance, Unit
from ingest.structure import RawUnit

__all__ = ["finalize_units", "unit_id", "MIN_UNIT_CHARS"]

MIN_UNIT_CHARS = 10
# Near-identical means identical once spacing, punctuation and brackets are
# ignored. Any difference in words keeps units apart: the Tokyo checklists repeat
# items across sections with small real differences (「必要がないか」 vs
# 「必要があるか」) that a section-pinned question must still find.
_IGNORABLE = re.compile(r"[\s、。・,.:：;；「」『』()（）\[\]【】<>＜＞\-ー―…]")


def unit_id(doc_id: str, path: list[str], ordinal: int) -> str:
    """Stable ID from document, section path and position within that section (not global order).

    >>> unit_id("tokyo_ai-guideline_2026-03-30", ["A", "B"], 0)[:6]
    'tokyo-'
    """
    short = re.split(r"[_]", doc_id)[0][:24]
    # The path below the document title: retitling a document in the manifest keeps its IDs.
    key = "\x1f".join([doc_id, PATH_SEP.join(path[1:]), str(ordinal)])
    return f"{short}-{hashlib.blake2b(key.encode(), digest_size=5).hexdigest()}"


def _content_hash(text: str) -> str:
    return hashlib.sha256(squash(text).encode()).hexdigest()[:16]


def _is_noise_only(text: str) -> bool:
    s = squash(text)
    return len(re.findall(r"[\u3040-\u30ff\u4e00-\u9fffA-Za-z0-9]", s)) < MIN_UNIT_CHARS // 2


def finalize_units(meta: DocumentMeta, raw_units: list[RawUnit]) -> tuple[list[Unit], Counter]:
    """Assign IDs and merge duplicates within one document.

    Short fragments (under :data:`MIN_UNIT_CHARS`) join the previous unit of the
    same section; pure-symbol fragments are dropped.

    Returns:
        The units in document order and counts (``merged_duplicates``,
        ``dropped_short``, ``joined_short``).
    """
    stats: Counter = Counter()
    kept: list[RawUnit] = []
    for ru in raw_units:
        if _is_noise_only(ru.text):
            stats["dropped_short"] += 1
            continue
        if ru.norm_len < MIN_UNIT_CHARS:
            if kept and kept[-1].path == ru.path and kept[-1].kind in ("paragraph", "clause"):
                kept[-1].lines.extend(ru.lines)
                stats["joined_short"] += 1
            else:
                stats["dropped_short"] += 1
            continue
        kept.append(ru)

    ordinals: Counter = Counter()
    units: list[Unit] = []
    by_key: dict[str, Unit] = {}
    for ru in kept:
        path_key = PATH_SEP.join(ru.path)
        ordinal = ordinals[path_key]
        ordinals[path_key] += 1
        text = ru.text
        prov = Provenance(
            section_path=ru.path, source_file=meta.file, line_start=ru.lines[0].no, line_end=ru.lines[-1].no
        )
        key = _IGNORABLE.sub("", squash(text))
        twin = by_key.get(key)
        if twin is not None and twin.kind == ru.kind:
            twin.provenance.append(prov)
            stats["merged_duplicates"] += 1
            continue
        unit = Unit(
            id=unit_id(meta.doc_id, ru.path, ordinal),
            doc_id=meta.doc_id,
            doc_title=meta.title,
            issuer=meta.issuer,
            doc_date=meta.date,
            access=meta.access,
            section_path=ru.path,
            kind=ru.kind,  # type: ignore[arg-type]
            tags=_tags(ru),
            title=ru.title,
            header=ru.header,
            row=ru.row,
            text=text,
            norm_text=nfkc(text),
            source_file=meta.file,
            line_start=prov.line_start,
            line_end=prov.line_end,
            provenance=[prov],
            content_hash=_content_hash(text),
        )
        by_key[key] = unit
        units.append(unit)
    return units, stats


def _tags(ru: RawUnit) -> list[str]:
    tags = list(dict.fromkeys(ru.tags))
    for label in re.findall(r"【([^】]{1,12})】", ru.text):
        if label not in tags and not label.startswith(("都民", "職員")):
            tags.append(label)
    return tags
