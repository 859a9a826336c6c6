"""What changed between two versions of the indexed documents, and what depends on it.

Guidelines are revised every year; when one is, the office needs to know which units
changed and which curated material stands on them. :func:`diff_units` matches the units
of two versions by ID, then by content for units whose ID moved (a paragraph inserted
before them, a new document date), then by similarity for units that were edited under a
new ID, and gives a character diff of every edited text. :func:`find_dependents` lists
the dev and check items, gold units and rules (``service/data``: confidentiality rules,
curated answers, anything that names a unit ID) that depend on a changed or removed unit.

A version is read from, in this order of preference (:func:`load_units`):

* a units snapshot, ``units.jsonl.gz`` (:func:`write_units_snapshot`), which every
  evaluation report holds and which an index build can leave next to its shard;
* an index version under ``<data_dir>/index/versions/`` (its snapshot, else its shard);
* a JSON Lines file of units (``guideqa ingest --dry-run --json > units.jsonl``);
* a corpus directory with a ``manifest.json`` (ingested on the fly, no embedding).

    guideqa diff v20261123T034527-993326-f2a6ee34 current
    guideqa diff eval/reports/baseline eval/reports/20261130T101500
    guideqa diff old-corpus/ corpus/ --json
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any, Literal

from guideqa.errors import DiffSourceError
from ingest.cleaning import squash

__all__ = [
    "UNITS_SNAPSHOT",
    "SIMILARITY",
    "DiffSourceError",
    "UnitChange",
    "UnitDiff",
    "Dependent",
    "write_units_snapshot",
    "read_units_file",
    "load_units",
    "diff_units",
    "char_diff",
    "find_dependents",
    "render_markdown",
    "dependents_as_dicts",
]

UNITS_SNAPSHOT = "units.jsonl.gz"
# Two texts with at least this SequenceMatcher ratio are one unit edited, not one removed
# and another added (a changed figure or a reworded clause scores 0.8-0.99; unrelated
# clauses of the same document rarely pass 0.5).
SIMILARITY = 0.6
_SNAPSHOT_FIELDS = ("id", "doc_id", "doc_title", "section_path", "kind", "text", "row", "content_hash")
_DATE_SUFFIX = re.compile(r"_\d{4}-\d{2}-\d{2}$")
# Keys under which curated data quotes the documents; a quote shorter than this matches too much.
_QUOTE_KEYS = frozenset({"quote", "quotes", "evidence"})
_MIN_QUOTE = 6

ChangeKind = Literal["added", "removed", "changed", "moved"]



@dataclass(frozen=True)
class UnitChange:
    """One unit that differs between the versions.

    ``changed``: the text was edited (same ID, or a new ID and a similar text);
    ``moved``: the same text under a new ID; ``added``/``removed``: no counterpart.
    """

    kind: ChangeKind
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    similarity: float = 1.0
    text_diff: str = ""

    @property
    def old_id(self) -> str | None:
        return self.old["id"] if self.old else None

    @property
    def new_id(self) -> str | None:
        return self.new["id"] if self.new else None


@dataclass
class UnitDiff:
    """Every difference between two versions, plus their sizes."""

    old_label: str
    new_label: str
    n_old: int
    n_new: int
    changes: list[UnitChange] = field(default_factory=list)

    def of_kind(self, kind: ChangeKind) -> list[UnitChange]:
        return [c for c in self.changes if c.kind == kind]

    @property
    def affected_old_ids(self) -> dict[str, UnitChange]:
        """Old unit ID → its change, for every old unit a reference to which may now be stale."""
        return {c.old_id: c for c in self.changes if c.old_id and c.kind in ("changed", "removed", "moved")}

    def counts(self) -> dict[str, int]:
        return {k: len(self.of_kind(k)) for k in ("added", "removed", "changed", "moved")}

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": self.old_label,
            "new": self.new_label,
            "n_old": self.n_old,
            "n_new": self.n_new,
            "counts": self.counts(),
            "changes": [
                {"kind": c.kind, "old_id": c.old_id, "new_id": c.new_id, "similarity": round(c.similarity, 3), "text_diff": c.text_diff,
                 "old_text": c.old["text"] if c.old else None, "new_text": c.new["text"] if c.new else None}
                for c in self.changes
            ],
        }


@dataclass(frozen=True)
class Dependent:
    """A curated item or rule that names a changed, moved or removed unit."""

    source: str
    item: str
    unit_id: str
    change: ChangeKind
    detail: str


# --------------------------------------------------------------------------- reading versions


def _record(unit: Any) -> dict[str, Any]:
    data = unit.model_dump(mode="json") if hasattr(unit, "model_dump") else dict(unit)
    return {k: data.get(k, "" if k != "section_path" else []) for k in _SNAPSHOT_FIELDS}


def write_units_snapshot(directory: Path, units: Iterable[Any]) -> Path:
    """Write ``directory/units.jsonl.gz``: what :func:`diff_units` needs of every unit.

    Args:
        directory: a report directory or an index version directory (created if needed).
        units: :class:`ingest.models.Unit` objects or unit payload dicts.

    Returns:
        The snapshot's path. Written to a temporary name and renamed, so a reader never
        sees half a file.

    Raises:
        OSError: the directory is not writable.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / UNITS_SNAPSHOT
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as f:
        for u in sorted((_record(u) for u in units), key=lambda r: r["id"]):
            f.write(json.dumps(u, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def read_units_file(path: Path) -> list[dict[str, Any]]:
    """Units from a JSON Lines file, gzipped or not (a snapshot, or ``ingest --dry-run --json`` output).

    Raises:
        DiffSourceError: the file cannot be read, or a line is not a unit.
    """
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise DiffSourceError(f"{path} を読み込めません（{exc}）。") from exc
    out = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DiffSourceError(f"{path}:{n}: 正しい JSON ではありません。") from exc
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not isinstance(data.get("text"), str):
            raise DiffSourceError(f"{path}:{n}: unit（id と text を持つオブジェクト）ではありません。")
        out.append(_record(data))
    return out


def _read_shard(shard: Path) -> list[dict[str, Any]]:
    from index.store import EdgeStore, QueryFilter

    store = EdgeStore.open(shard)
    try:
        return [_record(p) for p in store.scroll(flt=QueryFilter.everything())]
    finally:
        store.close()


def _version_dir(spec: str, index_root: Path) -> Path | None:
    from index.versions import resolve_current

    name = spec
    if spec.lower() in ("current", "live"):
        order = resolve_current(index_root)
        if not order:
            return None
        name = order[0]
    vdir = index_root / "versions" / name
    return vdir if vdir.is_dir() else None


def load_units(spec: str, *, index_root: Path) -> tuple[str, list[dict[str, Any]]]:
    """The units of one version, and a label naming it.

    Args:
        spec: a report or version directory holding ``units.jsonl.gz``, a corpus directory
            (``manifest.json``), a units JSON Lines file, or the name of an index version
            under ``index_root/versions`` (``current`` for the live one).
        index_root: ``<data_dir>/index``.

    Returns:
        ``(label, units)``; each unit a dict with ``id``, ``doc_id``, ``section_path``, ``text``…

    Raises:
        DiffSourceError: nothing readable goes by that name.
        IndexLocked: the version's shard is held by a running service (use its snapshot).
    """
    path = Path(spec)
    vdir = None if path.exists() else _version_dir(spec, index_root)
    if vdir is not None:
        path = vdir
    if path.is_file():
        return str(spec), read_units_file(path)
    if path.is_dir():
        if (path / UNITS_SNAPSHOT).is_file():
            return (vdir.name if vdir else str(spec)), read_units_file(path / UNITS_SNAPSHOT)
        if (path / "manifest.json").is_file():
            from ingest.pipeline import ingest_corpus

            return str(spec), [_record(u) for u in ingest_corpus(path).units]
        if (path / "shard").is_dir():
            return (vdir.name if vdir else str(spec)), _read_shard(path / "shard")
        raise DiffSourceError(f"{spec} には units.jsonl.gz も manifest.json も shard もありません。")
    versions = sorted(p.name for p in (index_root / "versions").iterdir() if p.is_dir()) if (index_root / "versions").is_dir() else []
    known = f"（{index_root / 'versions'} にあるバージョン: {', '.join(versions)}）" if versions else ""
    raise DiffSourceError(f"{spec} というファイル・ディレクトリ・インデックスのバージョンはありません{known}。")


# --------------------------------------------------------------------------- diffing


def _norm(text: str) -> str:
    return squash(text)


def _display(text: str) -> str:
    return " ".join(text.split())


def char_diff(old: str, new: str, *, context: int = 20) -> str:
    """A one-line character diff: unchanged runs shortened, ``[-removed-]{+added+}``.

    >>> char_diff("令和7年5月に運用開始", "令和7年6月に運用開始")
    '令和7年[-5-]{+6+}月に運用開始'
    """
    a, b = _display(old), _display(new)
    parts: list[str] = []
    ops = SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    for n, (tag, i1, i2, j1, j2) in enumerate(ops):
        if tag == "equal":
            seg = a[i1:i2]
            first, last = n == 0, n == len(ops) - 1
            keep = context if (first or last) else 2 * context
            if len(seg) > keep:
                seg = ("…" + seg[-context:]) if first else (seg[:context] + "…") if last else (seg[:context] + "…" + seg[-context:])
            parts.append(seg)
            continue
        if i2 > i1:
            parts.append(f"[-{a[i1:i2]}-]")
        if j2 > j1:
            parts.append(f"{{+{b[j1:j2]}+}}")
    return "".join(parts)


def _family(doc_id: str) -> str:
    # A revised document usually comes with a new date in its ID (…_2025-10-09 → …_2026-10-01).
    return _DATE_SUFFIX.sub("", doc_id)


def diff_units(old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]], *, old_label: str = "old", new_label: str = "new", similarity: float = SIMILARITY) -> UnitDiff:
    """Compare two versions' units.

    Matching, in order (texts compared after NFKC, whitespace ignored): the same text
    under another ID (moved; the same document, then family, then path preferred); the
    same ID with another text (changed in place); a text at least ``similarity`` alike
    under another ID in the same document family (changed, best pairs first); everything
    left is added or removed. A unit with the same ID and text is unchanged.

    Args:
        old, new: the two versions' units (dicts with ``id``, ``doc_id``, ``text``).
        old_label, new_label: names shown in the report.
        similarity: the least SequenceMatcher ratio for an edit under a new ID.

    Returns:
        The changes, in the old version's order (additions last, in the new one's).
    """
    old_by = {u["id"]: dict(u) for u in old}
    new_by = {u["id"]: dict(u) for u in new}
    result = UnitDiff(old_label, new_label, len(old_by), len(new_by))
    changes: list[UnitChange] = []
    # Same text first, wherever it stands now: a paragraph inserted into a section shifts the
    # ordinals (and so the IDs) of everything after it, and those units did not change.
    removed = [u for uid, u in old_by.items() if not (uid in new_by and _norm(new_by[uid]["text"]) == _norm(u["text"]))]
    added = [u for uid, u in new_by.items() if not (uid in old_by and _norm(old_by[uid]["text"]) == _norm(u["text"]))]
    by_text: dict[str, list[dict]] = defaultdict(list)
    for a in added:
        by_text[_norm(a["text"])].append(a)
    unmatched_old = []
    for r in removed:
        candidates = by_text.get(_norm(r["text"])) or []
        if not candidates:
            unmatched_old.append(r)
            continue
        best = max(candidates, key=lambda a: (a.get("doc_id") == r.get("doc_id"), _family(a.get("doc_id", "")) == _family(r.get("doc_id", "")), list(a.get("section_path") or []) == list(r.get("section_path") or [])))
        candidates.remove(best)
        changes.append(UnitChange("moved", r, best))
    matched_new = {c.new_id for c in changes}
    unmatched_new = {a["id"]: a for a in added if a["id"] not in matched_new}
    # Then the same ID with another text: the unit was edited in place.
    still_removed = []
    for r in unmatched_old:
        a = unmatched_new.pop(r["id"], None)
        if a is None:
            still_removed.append(r)
            continue
        ratio = SequenceMatcher(None, _norm(r["text"]), _norm(a["text"]), autojunk=False).ratio()
        changes.append(UnitChange("changed", r, a, ratio, char_diff(r["text"], a["text"])))
    still_added = list(unmatched_new.values())

    pairs = []
    for r in still_removed:
        rt = _norm(r["text"])
        for a in still_added:
            if _family(a.get("doc_id", "")) != _family(r.get("doc_id", "")):
                continue
            sm = SequenceMatcher(None, rt, _norm(a["text"]), autojunk=False)
            if sm.real_quick_ratio() >= similarity and sm.quick_ratio() >= similarity:
                ratio = sm.ratio()
                if ratio >= similarity:
                    pairs.append((ratio, r["id"], a["id"]))
    used_old: set[str] = set()
    used_new: set[str] = set()
    for ratio, rid, aid in sorted(pairs, key=lambda p: (-p[0], p[1], p[2])):
        if rid in used_old or aid in used_new:
            continue
        used_old.add(rid)
        used_new.add(aid)
        changes.append(UnitChange("changed", old_by[rid], new_by[aid], ratio, char_diff(old_by[rid]["text"], new_by[aid]["text"])))
    changes += [UnitChange("removed", r, None, 0.0) for r in still_removed if r["id"] not in used_old]
    changes += [UnitChange("added", None, a, 0.0) for a in still_added if a["id"] not in used_new]

    old_order = {uid: i for i, uid in enumerate(old_by)}
    new_order = {uid: i for i, uid in enumerate(new_by)}
    changes.sort(key=lambda c: (c.old is None, old_order.get(c.old_id or "", 0), new_order.get(c.new_id or "", 0)))
    result.changes = changes
    return result


# --------------------------------------------------------------------------- dependents


def _short(text: str, n: int = 30) -> str:
    return text if len(text) <= n else text[:n] + "…"


def _in_new(change: UnitChange, quote: str) -> bool:
    return bool(change.new) and squash(quote) in squash(change.new["text"])


def _item_detail(item: Any, change: UnitChange) -> str:
    notes: list[str] = []
    if change.kind == "moved":
        notes.append(f"ID が {change.new_id} に変わりました（本文は同じ）")
    elif change.kind == "removed":
        notes.append("unit が削除されました")
    for quote in getattr(item, "evidence", None) or []:
        if change.kind != "removed" and not _in_new(change, quote):
            notes.append(f"evidence「{_short(quote)}」が新しい本文にありません")
    for fact in getattr(item, "key_facts", None) or []:
        if change.kind != "removed" and fact and not _in_new(change, fact[0]):
            notes.append(f"key fact「{_short(fact[0])}」が新しい本文にありません")
    if change.kind == "changed" and len(notes) == 0:
        notes.append("本文が変わりました（evidence と key facts はまだ含まれています）")
    return "; ".join(notes)


def _walk(node: Any, path: str, owner: str | None) -> Iterable[tuple[str, str, str, str | None, Mapping | None]]:
    """Every string in a YAML/JSON tree: (key, value, path, id of the nearest enclosing mapping, that mapping).

    A string inside a list carries the key of the list (``evidence: [...]``).
    """
    if isinstance(node, Mapping):
        own = str(node["id"]) if "id" in node else owner
        for k, v in node.items():
            sub = f"{path}.{k}" if path else str(k)
            if isinstance(v, str):
                yield str(k), v, sub, own, node
            elif isinstance(v, list) and all(isinstance(x, str) for x in v):
                for i, x in enumerate(v):
                    yield str(k), x, f"{sub}[{i}]", own, node
            else:
                yield from _walk(v, sub, own)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]", owner)


def _load_data_file(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return [yaml.safe_load(text)]
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return [json.loads(text)]


def _quoted_in(change: UnitChange, quote: str, doc_id: Any) -> bool:
    """The quote stood in the unit's old text (and the unit is from ``doc_id``, when one is given)."""
    old = change.old or {}
    if isinstance(doc_id, str) and doc_id and old.get("doc_id") != doc_id:
        return False
    q = squash(quote)
    return len(q) >= _MIN_QUOTE and q in squash(old.get("text", ""))


def find_dependents(diff: UnitDiff, *, item_sets: Mapping[str, Sequence[Any]], data_files: Sequence[Path] = ()) -> list[Dependent]:
    """Everything that names a changed, moved or removed unit, by ID or by quoting it.

    Args:
        diff: the result of :func:`diff_units`.
        item_sets: label → items with ``id`` and ``gold_units`` (dev items, check items…);
            their ``evidence`` quotes and first key-fact spellings are looked for in the new text.
        data_files: YAML, JSON or JSON Lines files. A string equal to a unit ID is a reference
            (``check_rules.yaml``'s ``unit_id``); so is a ``quote``/``quotes``/``evidence``
            string that stood in a changed unit's old text (curated answers cite by
            ``doc_id`` and ``quote``). Either way the quote is looked for in the new text.

    Returns:
        One entry per (item or rule, unit), in the order given.

    Raises:
        OSError, ValueError: a data file cannot be read or parsed.
    """
    affected = diff.affected_old_ids
    out: list[Dependent] = []
    for label, items in item_sets.items():
        for item in items:
            for gid in getattr(item, "gold_units", None) or []:
                if gid in affected:
                    change = affected[gid]
                    out.append(Dependent(label, item.id, gid, change.kind, _item_detail(item, change)))
    gone = {"moved": "ID が {new} に変わりました（本文は同じ）", "removed": "unit が削除されました", "changed": "本文が変わりました"}
    for path in data_files:
        seen: set[tuple[str, str]] = set()
        for doc in _load_data_file(path):
            for key, value, where, owner, mapping in _walk(doc, "", None):
                hits = [affected[value]] if value in affected else []
                quote = value if key in _QUOTE_KEYS else mapping.get("quote") if mapping else None
                if not hits and key in _QUOTE_KEYS:
                    # Cited by its words, a unit that only moved is still cited correctly.
                    hits = [c for c in affected.values() if c.kind != "moved" and _quoted_in(c, value, (mapping or {}).get("doc_id"))]
                for change in hits:
                    item = owner or where
                    if (item, change.old_id or "") in seen:
                        continue
                    seen.add((item, change.old_id or ""))
                    detail = gone[change.kind].format(new=change.new_id)
                    if isinstance(quote, str) and change.kind != "removed" and not _in_new(change, quote):
                        detail += f"; quote「{_short(quote)}」が新しい本文にありません"
                    out.append(Dependent(path.name, f"{owner} ({where})" if owner else where, change.old_id or "", change.kind, detail))
    return out


# --------------------------------------------------------------------------- report


def render_markdown(diff: UnitDiff, dependents: Sequence[Dependent], *, max_changes: int = 60) -> list[str]:
    """The diff as markdown lines: counts, what depends on a change (first), then the changes.

    Args:
        diff: the result of :func:`diff_units`.
        dependents: the result of :func:`find_dependents`.
        max_changes: list at most this many changes of each kind (the counts are complete).
    """
    c = diff.counts()
    lines = [
        f"`{diff.old_label}` ({diff.n_old} units) → `{diff.new_label}` ({diff.n_new} units): "
        f"changed {c['changed']} · moved {c['moved']} · removed {c['removed']} · added {c['added']}",
    ]
    if not diff.changes:
        return lines + ["", "No unit changed."]
    lines += ["", f"### Depends on a changed, moved or removed unit: {len(dependents)}", ""]
    if dependents:
        lines += ["| source | item | unit | change | what to check |", "|---|---|---|---|---|"]
        lines += [f"| {d.source} | `{d.item}` | `{d.unit_id}` | {d.change} | {d.detail} |" for d in dependents]
    else:
        lines.append("Nothing curated depends on them.")
    for kind, title in (("changed", "Changed"), ("moved", "Moved (same text, new ID)"), ("removed", "Removed"), ("added", "Added")):
        group = diff.of_kind(kind)  # type: ignore[arg-type]
        if not group:
            continue
        lines += ["", f"### {title}: {len(group)}", ""]
        for ch in group[:max_changes]:
            unit = ch.new or ch.old or {}
            where = " > ".join((unit.get("section_path") or [])[1:]) or unit.get("doc_id", "")
            if kind == "changed":
                ids = ch.old_id if ch.old_id == ch.new_id else f"{ch.old_id} → {ch.new_id}"
                lines.append(f"- `{ids}` {where}: {ch.text_diff}")
            elif kind == "moved":
                lines.append(f"- `{ch.old_id}` → `{ch.new_id}` {where}")
            else:
                lines.append(f"- `{unit.get('id')}` {where}: {_short(_display(unit.get('text', '')), 80)}")
        if len(group) > max_changes:
            lines.append(f"- … and {len(group) - max_changes} more (`guideqa diff … --json` lists all)")
    return lines


def dependents_as_dicts(dependents: Sequence[Dependent]) -> list[dict[str, Any]]:
    """The dependents as plain dicts (for ``--json`` and ``summary.json``)."""
    return [asdict(d) for d in dependents]
