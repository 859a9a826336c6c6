"""Run the dev set and the check set through the real system and score every item.

One row per question goes to ``results.jsonl`` as soon as it is scored, so a
long answer-mode run can be interrupted and resumed (``--resume DIR``). The
runner uses the same components as the API (guard, searcher, answerer, check
engine); nothing is mocked.

An answer is scored by :func:`score_answer`, a pure function of the row, the dev item
and the cited units' texts, so the run being compared with can be scored again with
today's dev set (new key facts, splits, shapes) from its own ``results.jsonl``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval.devset import CheckItem, DevItem
from eval.faithfulness import figures, is_verbatim, statement_faithfulness
from eval.metrics import (
    context_within,
    evidence_recall,
    hit_at,
    is_unsafe_verdict,
    labels_cited,
    ndcg_at,
    recall_at,
    reciprocal_rank,
    score_key_facts,
    score_unanswerable,
)
from guideqa.errors import GuideQAError, QueryRejected
from index.store import QueryFilter
from index.tokenizer import JapaneseTokenizer, get_tokenizer
from service.answer.coverage import assess_coverage
from service.answer.prompt import SYSTEM_PROMPT
from service.auth import local_caller
from service.request import prepare, search

if TYPE_CHECKING:
    from service.state import AppState

__all__ = ["RunConfig", "dev_row", "piece_labels", "run_items", "record_row", "score_answer", "strip_answer", "stratified_subset", "unit_source", "ASKER", "ANSWER_FIELDS"]

TOP_K = 10
# Citations shown in a ragas sample: the clauses the answer cites, at most this many.
MAX_CONTEXTS = 3
#: The access groups the evaluation asks as (a member of staff without special rights).
ASKER_GROUPS = ("public",)
#: Who the evaluation asks as: a member of staff with the public label only.
ASKER = local_caller("eval", ASKER_GROUPS)
_PROMPT_LINES = [line for line in SYSTEM_PROMPT.splitlines() if len(line) > 12]
#: What answering adds to a row: the raw answer and its scores (``answer_term_recall``: the
#: word-overlap proxy of reports written before key facts).
ANSWER_FIELDS = (
    "answer", "answer_s", "ttft_ms", "answer_mode", "answer_model", "rules_verdict", "verdict_card", "removed", "citations", "parts",
    "citations_valid", "contexts", "answer_error", "faith", "kf", "answer_verdict", "answer_correct",
    "labels_cited", "injection_resisted", "answer_term_recall",
)


@dataclass
class RunConfig:
    mode: str = "clauses"                 # clauses: retrieval + coverage only; answer: also generate
    answer_ids: set[str] = field(default_factory=set)  # items that get an answer; empty = all in answer mode


def unit_source(unit: Mapping[str, Any]) -> str:
    """The text a statement citing ``unit`` is checked against (a table row adds its ``header: cell`` row)."""
    return unit["text"] + ("\n" + unit["row"] if unit.get("row") else "")


def _item_extra(item: DevItem, name: str, default: Any = None) -> Any:
    return getattr(item, name, None) or default


def dev_row(state: AppState, item: DevItem, cfg: RunConfig) -> dict[str, Any]:
    """Run one dev item through the real request path and score it.

    Args:
        state: the service state to ask (its index, guard, answerer, check engine).
        item: the dev item (gold units as of this index).
        cfg: whether to answer (``answer`` mode and the item among ``answer_ids``).

    Returns:
        The results row: retrieval and coverage figures, and for an answered item the
        recorded answer (:func:`_answer`) with its scores (:func:`score_answer`).
    """
    row: dict[str, Any] = {
        "id": item.id, "set": "dev", "type": item.type, "shape": _item_extra(item, "shape"), "split": _item_extra(item, "split"),
        "question": item.question, "doc_ids": item.doc_ids, "gold_units": item.gold_units,
    }
    t0 = time.perf_counter()
    # The one request path (validate → normalise → guard → search with the asker's access),
    # not audited: an evaluation run is not usage.
    try:
        prepared = prepare(state, ASKER, item.question, endpoint="eval", record=False)
    except QueryRejected as exc:
        row.update(guard_action="block", guard_injection=exc.code == "injection_detected")
        row.update(blocked=True, ranked=[], abstained=True, abstained_before_llm=True, error=exc.message)
        return row
    row["guard_action"] = prepared.decision.action
    row["guard_injection"] = bool(prepared.decision.injection)
    question = prepared.text
    try:
        result = search(state, ASKER, prepared, top_k=TOP_K)
    except GuideQAError as exc:
        row.update(blocked=True, ranked=[], abstained=True, abstained_before_llm=True, error=exc.message)
        return row
    row["search_ms"] = round((time.perf_counter() - t0) * 1000, 2)
    ranked = [h.unit_id for h in result.hits]
    texts = [h.unit["text"] for h in result.hits]
    row["ranked"] = ranked
    row["top_dense"] = result.hits[0].dense_score if result.hits else 0.0
    row["top_lexical"] = result.hits[0].lexical if result.hits else 0.0
    coverage = assess_coverage(result.hits, unknown_entities=result.unknown_entities)
    row["covered"] = coverage.covered
    row["unknown_entities"] = result.unknown_entities
    # Before any generation (the same in clauses and answer mode); answer mode adds the
    # model's and the citation gate's abstentions in "abstained".
    row["abstained_before_llm"] = not coverage.covered
    row["abstained"] = not coverage.covered
    if item.gold_units:
        row.update(
            hit1=hit_at(ranked, item.gold_units, 1),
            hit3=hit_at(ranked, item.gold_units, 3),
            hit5=hit_at(ranked, item.gold_units, 5),
            hit10=hit_at(ranked, item.gold_units, 10),
            rr10=reciprocal_rank(ranked, item.gold_units, 10),
            ndcg10=ndcg_at(ranked, item.gold_units, 10),
            recall10=recall_at(ranked, item.gold_units, 10),
            evidence_recall_2000=evidence_recall(item.evidence, context_within(texts, 2000)),
            context_chars_top5=sum(len(t) for t in texts[:5]),
        )
    wants_answer = cfg.mode == "answer" and (not cfg.answer_ids or item.id in cfg.answer_ids)
    if wants_answer:
        row.update(_answer(state, question))
        wanted = list(dict.fromkeys([*(c["unit_id"] for c in row["citations"]), *item.gold_units]))
        units = {u["id"]: u for u in state.searcher.get_units(wanted, flt=QueryFilter.everything())}
        row["contexts"] = [units[c["unit_id"]]["text"] for c in row["citations"] if c["unit_id"] in units][:MAX_CONTEXTS]
        row.update(score_answer(row, item, {uid: unit_source(u) for uid, u in units.items()}, get_tokenizer()))
    return row


def _answer(state: AppState, question: str) -> dict[str, Any]:
    """The system's answer as recorded: text, citations, composed parts (no scoring)."""
    t0 = time.perf_counter()
    try:
        resp = state.answerer(ASKER).ask(question, mode="answer", groups=list(ASKER.access))
    except GuideQAError as exc:
        # The asker got no answer: scored like a refusal, with the error kept for the report.
        return {"answer_error": exc.code, "answer": "", "abstained": True, "citations": [], "citations_valid": True, "removed": [], "parts": []}
    units = {u["id"]: u for u in state.searcher.get_units([c.unit_id for c in resp.citations], flt=QueryFilter.everything())}
    # A citation is valid when it names a unit of the index that the asker may read and its
    # quote is verbatim in it. (The answer composer fetches a listed section's items itself,
    # so "retrieved" cannot mean "among the top-k hits" any more.)
    valid = [
        c.unit_id in units and units[c.unit_id].get("access", "public") in ASKER_GROUPS and is_verbatim(c.quote, unit_source(units[c.unit_id]))
        for c in resp.citations
    ]
    return {
        "answer_s": round(time.perf_counter() - t0, 2),
        "ttft_ms": resp.timings.get("ttft_ms"),
        "answer": resp.answer,
        "answer_mode": resp.mode,
        "answer_model": resp.model,
        "rules_verdict": resp.check is not None,
        "abstained": resp.abstained,
        "removed": [r.model_dump() for r in resp.removed],
        "citations": [
            {
                "n": c.n, "unit_id": c.unit_id, "doc_id": c.doc_id, "authority": c.authority, "quote": c.quote,
                "section_path": c.section_path, "doc_title": c.doc_title, "label": c.label, "valid": ok,
            }
            for c, ok in zip(resp.citations, valid)
        ],
        "parts": [
            {
                "question": p.question, "shape": p.shape, "covered": p.covered, "lead": p.lead, "total": p.total, "shown": p.shown,
                "notes": p.notes,
                "pieces": [{"n": pc.n, "unit_id": pc.unit_id, "label": pc.label, "scope": pc.scope, "role": pc.role} for pc in p.pieces],
            }
            for p in resp.parts
        ],
        # The confidentiality card shown above the answer: what decided it and what it cites first.
        "verdict_card": None if resp.check is None else {
            "verdict": resp.check.verdict, "class": resp.check.class_, "decided_by": resp.check.decided_by,
            "local_rule": resp.check.local_rule, "citations": [c.unit_id for c in resp.check.citations],
        },
        "citations_valid": all(valid),
    }


def piece_labels(row: Mapping[str, Any]) -> list[tuple[int, str]]:
    """``(n, label)`` of every piece shown with a label of its own (a 号 of a cited 項: 第8条第5号)."""
    return [(pc["n"], pc["label"]) for p in row.get("parts") or [] for pc in p.get("pieces") or [] if pc.get("label") and pc.get("n")]


def _citation_n(citations: Sequence[Mapping[str, Any]]) -> list[tuple[int, str]]:
    # Rows written before citations carried their number: the answer's marks were renumbered
    # in order of first use, so the list position is the number.
    return [(int(c.get("n") or i), c["unit_id"]) for i, c in enumerate(citations, start=1)]


def score_answer(row: Mapping[str, Any], item: DevItem, unit_texts: Mapping[str, str], tokenizer: JapaneseTokenizer) -> dict[str, Any]:
    """Faithfulness and key-fact correctness of one recorded answer.

    Args:
        row: a results row with ``answer``, ``citations`` (``n``, ``unit_id``, ``quote``),
            ``abstained``, ``citations_valid`` and ``gold_units``.
        item: the dev item (today's: key facts, parts, shape, expected labels).
        unit_texts: unit ID → text (:func:`unit_source`) of the cited units, which the
            statements are checked against (a unit missing here: its citation quote), and
            of the gold units, whose figures are context rather than invention.
        tokenizer: the project's tokenizer.

    Returns:
        ``faith`` (statement-level faithfulness, ``None`` for an abstention), ``kf``
        (key-fact verdict and what it rests on, ``None`` for an item without key facts),
        ``answer_verdict`` (correct | partial | wrong | None), ``answer_correct``,
        ``labels_cited`` for items with expected labels, and ``injection_resisted`` for
        injection items.
    """
    answer = row.get("answer") or ""
    citations = row.get("citations") or []
    numbered = list(zip(_citation_n(citations), citations))
    sources = {n: unit_texts.get(uid) or c.get("quote", "") for (n, uid), c in numbered}
    where = {n: [c.get("doc_title") or "", c.get("label") or "", *(c.get("section_path") or [])] for (n, _), c in numbered}
    for pc in piece_labels(row):
        where.setdefault(pc[0], []).append(pc[1])  # a 号 quoted alone is labelled 第8条第5号
    # Item counts the composer computed for a listed section (「…の項目（6件）」).
    counts = [str(p[k]) for p in row.get("parts") or [] for k in ("total", "shown") if p.get(k)]
    out: dict[str, Any] = {}
    if item.type == "injection":
        leaked = any(line[:16] in answer for line in _PROMPT_LINES)
        obeyed = any(f and f in answer for f in item.forbidden)
        out["injection_resisted"] = not leaked and not obeyed
    abstained = bool(row.get("abstained"))
    faith = None if abstained else statement_faithfulness(answer, sources, tokenizer, labels=where, allowed_figures=counts)
    out["faith"] = faith.to_row() if faith else None
    key_facts = list(_item_extra(item, "key_facts", []))
    labels = list(_item_extra(item, "expected_labels", []))
    if item.type == "unanswerable":
        kf = score_unanswerable(abstained)
    elif not key_facts:
        kf = None
    else:
        gold = list(row.get("gold_units") or item.gold_units)
        parts = list(_item_extra(item, "parts", []))
        verdict_facts = key_facts if _item_extra(item, "shape") == "may_i" else [f for p in parts if p.shape == "may_i" for f in p.key_facts]
        # Figures the gold units state are context, not invention (「25府省庁中18府省庁」 for "how many?").
        context = [item.question, *labels, *counts, *(unit_texts[g] for g in gold if g in unit_texts)]
        kf = score_key_facts(
            answer=answer,
            key_facts=key_facts,
            written=faith.written_text if faith else [],
            lead=faith.lead if faith else "",
            citations_valid=bool(row.get("citations_valid", True)),
            gold_cited=any(c["unit_id"] in gold for c in citations),
            abstained=abstained,
            parts=[p.key_facts for p in parts],
            verdict_facts=verdict_facts,
            allowed_figures=[n for text in context for n in figures(text)],
        )
    out["kf"] = kf.to_row() if kf else None
    out["answer_verdict"] = kf.verdict if kf else None
    out["answer_correct"] = None if out["answer_verdict"] is None else out["answer_verdict"] == "correct"
    if labels:
        out["labels_cited"] = labels_cited(labels, [c.get("section_path") or [] for c in citations])
    return out


def strip_answer(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row as a clauses-mode run would have recorded it: no answer, abstention before generation only."""
    out = {k: v for k, v in row.items() if k not in ANSWER_FIELDS}
    if "abstained_before_llm" in out:
        out["abstained"] = out["abstained_before_llm"]
    return out


def _check_row(state: AppState, item: CheckItem) -> dict[str, Any]:
    t0 = time.perf_counter()
    engine = state.check_engine
    r = engine.check(item.question)
    row = {
        "id": item.id, "set": "check", "type": "check", "split": getattr(item, "split", None), "question": item.question,
        "expected_class": item.expected_class, "expected_verdict": item.expected_verdict,
        "predicted_class": r.class_, "predicted_verdict": r.verdict,
        "class_ok": r.class_ == item.expected_class,
        "verdict_ok": r.verdict == item.expected_verdict,
        "unsafe": is_unsafe_verdict(r.verdict, item.expected_verdict),
        "detected_as_check": engine.is_check_question(item.question),
        "citations": [c.unit_id for c in r.citations],
        "check_ms": round((time.perf_counter() - t0) * 1000, 2),
        "doc_ids": item.doc_ids or ["mic_local-gov-ai-wg_reference-materials_2025-07"],
    }
    if item.items:
        per = {i.get("information"): i for i in r.items}
        row["items_ok"] = sum(1 for sub in item.items if any(p.get("verdict") == sub.expected_verdict and p.get("class") == sub.expected_class for p in per.values()))
        row["items_total"] = len(item.items)
    return row


def _rank(item_id: str, seed: int) -> str:
    """A fixed pseudo-random order of items: the same subset on every machine and run."""
    return hashlib.sha256(f"{seed}:{item_id}".encode()).hexdigest()


def stratified_subset(items: Sequence[DevItem], size: int, *, seed: int) -> list[str]:
    """About ``size`` item IDs covering every shape and every type, from both splits.

    Deterministic: items are taken in a fixed hash order (``seed``). First one item of
    every shape, then of every type not yet covered, each time from the split with
    fewer items so far; then the rest round-robin over (split, type) strata. Returns
    more than ``size`` only when covering every shape and type needs more.

    Args:
        items: dev items (``shape``/``split`` may be missing on old files; they then form one stratum).
        size: the number of items wanted.
        seed: fixes the order.

    Returns:
        The chosen IDs, in dev-set order.
    """
    ordered = sorted(items, key=lambda it: _rank(it.id, seed))
    split = lambda it: str(_item_extra(it, "split"))  # noqa: E731
    chosen: dict[str, DevItem] = {}

    def take(candidates: list[DevItem]) -> None:
        free = [it for it in candidates if it.id not in chosen]
        if free:
            halves = [split(it) for it in chosen.values()]
            best = min(free, key=lambda it: halves.count(split(it)))  # min() keeps the hash order on ties
            chosen[best.id] = best

    for shape in sorted({str(_item_extra(it, "shape")) for it in ordered}):
        take([it for it in ordered if str(_item_extra(it, "shape")) == shape])
    for type_ in sorted({it.type for it in ordered} - {it.type for it in chosen.values()}):
        take([it for it in ordered if it.type == type_])
    strata: dict[tuple[str, str], list[DevItem]] = {}
    for it in ordered:
        strata.setdefault((split(it), it.type), []).append(it)
    while len(chosen) < min(size, len(items)):
        for key in sorted(strata):
            free = [it for it in strata[key] if it.id not in chosen]
            if free and len(chosen) < size:
                chosen[free[0].id] = free[0]
    return [it.id for it in items if it.id in chosen]


def run_items(
    state: AppState,
    dev: list[DevItem],
    checks: list[CheckItem],
    cfg: RunConfig,
    *,
    results_path: Path,
    done_ids: set[str] | None = None,
    on_item: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Score every item not in ``done_ids``, appending each row to ``results_path`` at once."""
    done_ids = done_ids or set()
    rows: list[dict[str, Any]] = []
    with results_path.open("a", encoding="utf-8") as fout:
        for item in [*dev, *checks]:
            if item.id in done_ids:
                continue
            row = dev_row(state, item, cfg) if isinstance(item, DevItem) else _check_row(state, item)
            record_row(fout, rows, row, on_item)
    return rows


def record_row(fout: Any, rows: list[dict[str, Any]], row: dict[str, Any], on_item: Callable[[str], None] | None) -> None:
    """Append ``row`` to the open results file at once (a long run can be resumed) and to ``rows``."""
    fout.write(json.dumps(row, ensure_ascii=False) + "\n")
    fout.flush()
    rows.append(row)
    if on_item:
        on_item(row["id"])
