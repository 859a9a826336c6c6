"""Index versions on disk: build into a new directory, then swap one pointer.

Layout under ``<data_dir>/index``::

    CURRENT                     name of the live version (replaced atomically)
    versions/<version>/shard/   the Qdrant Edge shard
    versions/<version>/meta.json  written last: its presence marks a complete build

A reader that finds ``CURRENT`` missing or pointing at an incomplete version
falls back to the newest complete one, so a crashed rebuild never leaves the
service without an index.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = [
    "pid_alive",
    "IndexMeta",
    "new_version_name",
    "versions_dir",
    "write_meta",
    "read_meta",
    "set_current",
    "complete_versions",
    "resolve_current",
    "current_meta",
    "prune_versions",
]


@dataclass
class IndexMeta:
    version: str
    backend: str
    embed_model: str
    dim: int
    units: int
    documents: int
    corpus_hash: str
    built_at: str
    build_seconds: float
    avgdl: float
    embedded: int = 0
    reused_embeddings: int = 0
    collection: str | None = None
    extra: dict = field(default_factory=dict)


def new_version_name(corpus_hash: str) -> str:
    """``v20261123T012345-123456-<hash>``: names sort in build order (microseconds included)."""
    now_ns = time.time_ns()
    stamp = time.strftime("v%Y%m%dT%H%M%S", time.gmtime(now_ns / 1e9))
    return f"{stamp}-{(now_ns // 1000) % 1_000_000:06d}-{corpus_hash[:8]}"


def versions_dir(root: Path) -> Path:
    return root / "versions"


def write_meta(version_dir: Path, meta: IndexMeta) -> None:
    tmp = version_dir / "meta.json.tmp"
    tmp.write_text(json.dumps(asdict(meta), ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, version_dir / "meta.json")


def read_meta(version_dir: Path) -> IndexMeta | None:
    try:
        data = json.loads((version_dir / "meta.json").read_text(encoding="utf-8"))
        return IndexMeta(**data)
    except (OSError, ValueError, TypeError):
        return None


def set_current(root: Path, version: str) -> None:
    tmp = root / "CURRENT.tmp"
    tmp.write_text(version, encoding="utf-8")
    os.replace(tmp, root / "CURRENT")


def complete_versions(root: Path) -> list[str]:
    """Complete versions, newest first."""
    vdir = versions_dir(root)
    if not vdir.is_dir():
        return []
    names = [p.name for p in vdir.iterdir() if p.is_dir() and (p / "meta.json").is_file()]
    return sorted(names, reverse=True)


def resolve_current(root: Path) -> list[str]:
    """Versions to try opening, in order: the one CURRENT names (if complete), then the others newest first."""
    complete = complete_versions(root)
    try:
        named = (root / "CURRENT").read_text(encoding="utf-8").strip()
    except OSError:
        named = ""
    order = [named] if named in complete else []
    return order + [v for v in complete if v != named]


def current_meta(root: Path) -> IndexMeta | None:
    """Metadata of the version a reader would open first (see :func:`resolve_current`), if any."""
    for version in resolve_current(root):
        meta = read_meta(versions_dir(root) / version)
        if meta:
            return meta
    return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this ID exists (signal 0 probes without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prune_versions(root: Path, keep: int = 2) -> list[str]:
    """Delete old versions beyond ``keep``, never one a live process still holds, and stale half-builds."""
    removed = []
    vdir = versions_dir(root)
    if not vdir.is_dir():
        return removed
    keep_names = set(complete_versions(root)[:keep])
    try:
        keep_names.add((root / "CURRENT").read_text(encoding="utf-8").strip())
    except OSError:
        pass
    for path in vdir.iterdir():
        if not path.is_dir() or path.name in keep_names:
            continue
        holder = path / "shard" / "holder.json"
        try:
            pid = int(json.loads(holder.read_text()).get("pid", 0))
        except (OSError, ValueError):
            pid = 0
        if pid and pid != os.getpid() and pid_alive(pid):
            continue
        incomplete_young = not (path / "meta.json").exists() and time.time() - path.stat().st_mtime < 3600
        if incomplete_young and pid == os.getpid():
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
    return removed
