"""The comparison section of ``guideqa eval``: questions that name two or more documents.

``eval/data/compare.jsonl`` holds staff questions such as 「国と都でログの保存はどう違う？」
and, for each document the question names, either the verbatim quotes of the clauses that
speak to the topic (``evidence``) or ``says_nothing``. Each question goes through the
answer pipeline on the live index with the LLM off — the composed answer of
``Answerer.ask(mode="answer")``; a comparison is built from the documents, not written —
and is scored on:

* **named-document detection** — the first part of the answer has the shape
  ``comparison``, every named document is addressed (a piece from it, or a note that it
  says nothing) and no piece comes from a document the question did not name;
* **right clause per document** — a piece of that document whose unit holds one of its
  quotes (both squashed: NFKC, no whitespace); an item is *all right* when every named
  document that says something has its right clause;
* **says-nothing honesty** — no piece from a document marked ``says_nothing``, and a note
  naming it (「…: 該当する記載が見つかりませんでした。」);
* the **latency** of the answer without the LLM (p50/p95).

Before any question runs, :func:`check_comparisons` checks the file against the index (a
quote in no unit of its document stops the run, naming the item). Rows keep the cited
units' text, so :func:`score_comparison` is a pure function of a row and its item.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from eval.devset import DATA_DIR, SPLITS, Split, load_jsonl
from eval.metrics import percentile, share_true
from eval.report import split_gaps
from eval.runner import ASKER, record_row, unit_source
from guideqa.errors import GuideQAError
from index.store import QueryFilter
from ingest.cleaning import squash
from service.request import prepare

if TYPE_CHECKING:
    from service.state import AppState

__all__ = [
    "COMPARE_PATH",
    "DocExpectation",
    "ComparisonItem",
    "load_comparisons",
    "check_comparisons",
    "comparison_row",
    "run_comparisons",
    "score_comparison",
    "summarize_comparisons",
]

COMPARE_PATH = DATA_DIR / "compare.jsonl"


class DocExpectation(BaseModel):
    """What one named document says on the question's topic: quotes of its clauses, or nothing."""

    model_config = ConfigDict(extra="allow")

    evidence: list[str] = Field(default_factory=list)
    says_nothing: bool = False


class ComparisonItem(BaseModel):
    """One comparison question and, per named document (by doc_id), what its column must show."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    topic: str = ""
    docs: dict[str, DocExpectation] = Field(min_length=2)
    split: Split | None = None


def load_comparisons(path: Path = COMPARE_PATH) -> list[ComparisonItem]:
    """Read the comparison set.

    Args:
        path: a JSON Lines file, one :class:`ComparisonItem` per line (blank lines skipped).

    Returns:
        The items in file order.

    Raises:
        DevsetError: the file is unreadable, a line is not a JSON object or an item is
            malformed; the message names the file and line.
    """
    return load_jsonl(Path(path), ComparisonItem)


def check_comparisons(items: Sequence[ComparisonItem], units: Iterable[Mapping[str, Any]]) -> list[str]:
    """Everything wrong with the comparison set against the index's units.

    Checked: duplicate ids; a split; a named document the index does not hold; a document
    with both quotes and ``says_nothing``, or with neither; a quote found (squashed) in no
    unit of its document — the right clause could then never be shown.

    Args:
        items: the comparison items.
        units: every unit payload of the index (``id``, ``doc_id``, ``text``).

    Returns:
        One problem per line, naming the item; empty when all is well.
    """
    by_doc: dict[str, list[str]] = {}
    for u in units:
        by_doc.setdefault(u["doc_id"], []).append(squash(unit_source(u)))
    problems = [f"{item_id}: id が {n} 回使われています" for item_id, n in Counter(it.id for it in items).items() if n > 1]
    for it in items:
        if it.split not in SPLITS:
            problems.append(f"{it.id}: split がありません（{' / '.join(SPLITS)}）")
        for doc_id, exp in it.docs.items():
            if doc_id not in by_doc:
                problems.append(f"{it.id}: {doc_id} はインデックスにない文書です")
                continue
            if exp.says_nothing == bool(exp.evidence):
                problems.append(f"{it.id}: {doc_id} には evidence か says_nothing のどちらか一方が必要です")
            for quote in exp.evidence:
                q = squash(quote)
                if not q or not any(q in text for text in by_doc[doc_id]):
                    problems.append(f"{it.id}: {doc_id} の evidence「{quote[:30]}」がその文書のどの unit にもありません")
    return problems


def comparison_row(state: AppState, item: ComparisonItem) -> dict[str, Any]:
    """Ask one comparison question (guard, then the composed answer with no model) and record it.

    Returns:
        The row: the first part's shape, its pieces (document, label, the cited unit's
        text), its notes, the titles of the named documents, the latency, and an
        ``error`` code when the question was refused or failed.
    """
    row: dict[str, Any] = {"id": item.id, "split": item.split, "question": item.question, "named": list(item.docs)}
    try:
        prepared = prepare(state, ASKER, item.question, endpoint="eval", record=False)
        answerer = state.answerer(ASKER)
        answerer.backend = None  # the comparison is composed from the documents; no model
        t0 = time.perf_counter()
        resp = answerer.ask(prepared.text, mode="answer", groups=list(ASKER.access))
        row["latency_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    except GuideQAError as exc:  # refused by the guard (QueryRejected) or failed: recorded, not raised
        return {**row, "error": exc.code, "shape": None, "pieces": [], "notes": [], "titles": {}}
    part = resp.parts[0] if resp.parts else None
    ids = [pc.unit_id for pc in part.pieces] if part else []
    units = {u["id"]: u for u in state.searcher.get_units(ids, flt=QueryFilter.everything())}
    docs = state.searcher.documents(flt=QueryFilter.everything())
    row.update(
        shape=part.shape if part else None,
        covered=bool(part and part.covered),
        answer=resp.answer,
        pieces=[
            {"unit_id": pc.unit_id, "doc_id": units[pc.unit_id]["doc_id"], "label": pc.label, "text": pc.text, "unit_text": unit_source(units[pc.unit_id])}
            for pc in (part.pieces if part else [])
            if pc.unit_id in units
        ],
        notes=list(part.notes) if part else [],
        titles={d: docs[d].title for d in item.docs if d in docs},
    )
    return row


def score_comparison(row: Mapping[str, Any], item: ComparisonItem) -> dict[str, Any]:
    """Score one recorded comparison answer against its item.

    Returns:
        ``docs`` (per named document: ``pieces``, ``noted``, and ``right`` or ``honest``),
        ``extra_docs`` (pieces from documents not named), ``detected``, ``all_right``,
        ``honest`` (``None`` when no document says nothing) and ``why`` (what failed).
    """
    pieces = row.get("pieces") or []
    notes = [squash(n) for n in row.get("notes") or []]
    per_doc: dict[str, dict[str, Any]] = {}
    why: list[str] = []
    for doc_id, exp in item.docs.items():
        mine = [p for p in pieces if p["doc_id"] == doc_id]
        title = squash((row.get("titles") or {}).get(doc_id, doc_id))
        noted = any(title in n for n in notes)
        d: dict[str, Any] = {"says_nothing": exp.says_nothing, "pieces": [p["label"] for p in mine], "noted": noted}
        if exp.says_nothing:
            d["honest"] = not mine and noted
            if mine:
                why.append(f"{doc_id}: says nothing, yet quoted ({', '.join(p['label'] or '?' for p in mine)})")
            elif not noted:
                why.append(f"{doc_id}: says nothing, and no note says so")
        else:
            d["right"] = any(squash(q) in squash(p["unit_text"]) for p in mine for q in exp.evidence)
            if not d["right"]:
                if mine:
                    why.append(f"{doc_id}: wrong clause ({', '.join(p['label'] or '?' for p in mine)})")
                else:
                    why.append(f"{doc_id}: {'noted as saying nothing' if noted else 'no piece'}")
        per_doc[doc_id] = d
    extra = sorted({p["doc_id"] for p in pieces} - set(item.docs))
    if extra:
        why.append("pieces from documents not named: " + ", ".join(extra))
    if row.get("error"):
        why.insert(0, f"error {row['error']}")
    elif row.get("shape") != "comparison":
        why.insert(0, f"not composed as a comparison (shape {row.get('shape')})")
    addressed = all(d["pieces"] or d["noted"] for d in per_doc.values())
    nothing = [d["honest"] for d in per_doc.values() if d["says_nothing"]]
    return {
        "docs": per_doc,
        "extra_docs": extra,
        "detected": row.get("shape") == "comparison" and addressed and not extra,
        "all_right": all(d["right"] for d in per_doc.values() if not d["says_nothing"]),
        "honest": all(nothing) if nothing else None,
        "why": why,
    }


def run_comparisons(
    state: AppState,
    items: Sequence[ComparisonItem],
    *,
    results_path: Path,
    done_ids: set[str] | None = None,
    on_item: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Ask and score every item not in ``done_ids``, appending each row to ``results_path`` at once."""
    done_ids = done_ids or set()
    rows: list[dict[str, Any]] = []
    with results_path.open("a", encoding="utf-8") as fout:
        for item in items:
            if item.id in done_ids:
                continue
            row = comparison_row(state, item)
            row.update(score_comparison(row, item))
            record_row(fout, rows, row, on_item)
    return rows



def _headline(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    docs = [d for r in rows for d in r["docs"].values()]
    saying = [d for d in docs if not d["says_nothing"]]
    silent = [d for d in docs if d["says_nothing"]]
    return {
        "n": len(rows),
        "detected": share_true(r["detected"] for r in rows),
        "all_right": share_true(r["all_right"] for r in rows),
        "right_clause": share_true(d["right"] for d in saying),
        "n_documents": len(saying),
        "says_nothing_honest": share_true(d["honest"] for d in silent),
        "n_says_nothing": len(silent),
    }


def summarize_comparisons(rows: Sequence[Mapping[str, Any]], *, gap_tolerances: Mapping[str, float]) -> dict[str, Any]:
    """The comparison section of ``summary.json``: the figures over all items and per half, and their gaps.

    Args:
        rows: scored rows (:func:`run_comparisons`).
        gap_tolerances: ``[compare_split_gap]`` of ``eval/tolerances.toml`` (metric → largest tune − holdout).

    Returns:
        ``detected``, ``all_right``, ``right_clause`` (per document), ``says_nothing_honest``
        (per silent document), latency p50/p95 in ms, ``splits`` and ``split_gaps``.
    """
    out = _headline(rows)
    latencies = [r["latency_ms"] for r in rows if r.get("latency_ms") is not None]
    out.update(latency_ms_p50=percentile(latencies, 0.5), latency_ms_p95=percentile(latencies, 0.95), errors=sum(1 for r in rows if r.get("error")))
    out["splits"] = {s: _headline([r for r in rows if r.get("split") == s]) for s in SPLITS}
    out["split_gaps"] = split_gaps(out["splits"], dict(gap_tolerances))
    return out
