"""Batch mode for the CLI: JSON Lines of ``{"id", "question"}`` in, one result object per line out.

``answer`` is one of :mod:`service.request`'s functions, so every line takes the
API's request path (guard, limits, audit).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from guideqa.errors import GuideQAError, InvalidJSON, QueryInvalid

__all__ = ["run_batch"]


def run_batch(questions: Path, out: Path, answer: Callable[[str], dict[str, Any]]) -> int:
    """Write ``{"id", **answer(question)}`` for each input line, in order.

    A line that is not JSON, has no ``question`` or is refused gets
    ``{"id", "error": {"code", "message"}}`` instead of stopping the batch.

    Returns:
        The number of lines written.
    """
    n = 0
    with questions.open(encoding="utf-8") as fin, out.open("w", encoding="utf-8") as fout:
        for lineno, line in enumerate(fin, start=1):
            if not line.strip():
                continue
            qid: Any = lineno
            try:
                item = json.loads(line)
                if isinstance(item, dict):
                    qid = item.get("id", lineno)
                question = item.get("question") if isinstance(item, dict) else None
                if not isinstance(question, str):
                    row = {"id": qid, "error": {"code": QueryInvalid.code, "message": f"{lineno} 行目に question（文字列）がありません。"}}
                else:
                    row = {"id": qid, **answer(question)}
            except json.JSONDecodeError:
                row = {"id": qid, "error": {"code": InvalidJSON.code, "message": f"{lineno} 行目が JSON ではありません。"}}
            except GuideQAError as exc:
                row = {"id": qid, "error": {"code": exc.code, "message": exc.message}}
            fout.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n
