"""The answer pipeline: retrieve → (check | abstain | generate) → citation gate → response.

:meth:`Answerer.stream` yields events in the order a user should see them:

* ``clauses``   — the ranked clauses, at once (before any generation);
* ``check``     — the confidentiality verdict card, when the question is of that kind;
* ``token``     — the model's text as it is generated;
* ``citations`` — the verified citations and what the gate removed;
* ``done``      — the final :class:`AskResponse` (its ``answer`` is the gated text).

:meth:`Answerer.ask` runs the same steps and returns only the final response.
An LLM that fails, times out or is busy beyond the queue leads to the clauses
mode with a notice, never to an error page.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from guideqa.errors import LLMError, ModelUnavailable, Overloaded
from guideqa.settings import Settings
from index.search import SearchHit, Searcher
from index.tokenizer import JapaneseTokenizer
from service.answer.coverage import assess_coverage
from service.answer.gate import verify_answer
from service.answer.prompt import ABSTAIN_TEXT, ContextUnit, best_sentence, build_messages, select_excerpt
from service.check import CheckEngine
from service.models import AskResponse, CheckResponse, Citation, Filters, RemovedSentence
from service.search import hit_public, to_query_filter

__all__ = ["Answerer", "AskEvent", "LLMQueue", "ABSTAIN_MESSAGE", "CLAUSES_MESSAGE", "FALLBACK_NOTICE"]

log = logging.getLogger(__name__)

ABSTAIN_MESSAGE = f"{ABSTAIN_TEXT}。関連する可能性のある箇所を示します。"
CLAUSES_MESSAGE = "該当する可能性のある箇所を示します（回答文は生成していません）。"
FALLBACK_NOTICE = "回答生成を利用できなかったため、該当箇所のみを表示しています。"
QUOTE_LEAD = "ガイドラインの該当箇所: "
QUOTE_NOTICE = "AIによる回答文を検証できなかったため、最も関連する条文の一文をそのまま引用しています。"


@dataclass
class AskEvent:
    event: str
    data: Any


class LLMQueue:
    """One generation at a time, at most ``size`` waiting; beyond that, 503 with Retry-After."""

    def __init__(self, size: int, *, expected_seconds: float = 20.0):
        self.size = size
        self.expected_seconds = expected_seconds
        self._run = threading.Semaphore(1)
        self._lock = threading.Lock()
        self.waiting = 0

    @contextmanager
    def slot(self, timeout: float):
        with self._lock:
            if self.waiting >= self.size:
                raise Overloaded(retry_after=int(self.expected_seconds * max(1, self.waiting)))
            self.waiting += 1
        try:
            acquired = self._run.acquire(timeout=timeout)
        finally:
            with self._lock:
                self.waiting -= 1
        if not acquired:
            # Retrieval is done already: answering with the clauses beats a 503 after a long wait.
            raise LLMError(detail=f"no generation slot within {timeout:.0f}s")
        try:
            yield
        finally:
            self._run.release()


def _citation(n: int, unit: dict) -> Citation:
    return Citation(
        n=n,
        unit_id=unit["id"],
        doc_title=unit["doc_title"],
        section_path=unit["section_path"],
        quote=unit["text"],
        source_file=unit["source_file"],
        line_start=unit["line_start"],
        line_end=unit["line_end"],
    )


def verdict_text(check: CheckResponse) -> str:
    """The verdict card as one short Japanese answer with [n] marks (no generation)."""
    label = f"機密性{check.class_}" if check.class_ else "分類不明"
    cite = "".join(f"[{c.n}]" for c in check.citations[:1])
    parts = [f"判定: {check.verdict}（{label}）。"]
    if check.reasons:
        parts.append(check.reasons[0] + cite)
    if check.conditions:
        parts.append(" 条件: " + "、".join(check.conditions) + "。")
    if check.missing:
        parts.append(" 確認が必要な点: " + "、".join(check.missing) + "。")
    return "".join(parts)


class Answerer:
    """Everything ``/v1/ask`` and ``guideqa ask`` do after input protection."""

    def __init__(
        self,
        settings: Settings,
        *,
        searcher: Searcher,
        tokenizer: JapaneseTokenizer,
        backend: Any | None,
        check: CheckEngine | None = None,
        queue: LLMQueue | None = None,
    ):
        self.settings = settings
        self.searcher = searcher
        self.tokenizer = tokenizer
        self.backend = backend
        self.check_engine = check
        self.queue = queue or LLMQueue(settings.llm_queue_size)

    @property
    def model_name(self) -> str | None:
        return getattr(self.backend, "name", None) if self.backend is not None else None

    def ask(self, question: str, **kwargs: Any) -> AskResponse:
        final: AskResponse | None = None
        for ev in self.stream(question, **kwargs):
            if ev.event == "done":
                final = ev.data
        assert final is not None
        return final

    def stream(
        self,
        question: str,
        *,
        mode: str = "answer",
        groups: list[str] | None = ("public",),  # type: ignore[assignment]
        filters: Filters | None = None,
        top_k: int = 5,
    ) -> Iterator[AskEvent]:
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        answer_id = uuid.uuid4().hex
        result = self.searcher.search(question, top_k=top_k, flt=to_query_filter(filters, list(groups) if groups is not None else None))
        timings["retrieve_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        related = [hit_public(h) for h in result.hits]
        yield AskEvent("clauses", related)

        check: CheckResponse | None = None
        if self.check_engine is not None and self.check_engine.is_check_question(question):
            check = self.check_engine.check(question)
            timings["check_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            yield AskEvent("check", check)

        def finish(**fields: Any) -> AskResponse:
            timings["total_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            return AskResponse(
                answer_id=answer_id,
                index_version=result.index_version,
                related=related,
                timings=timings,
                check=check,
                **fields,
            )

        coverage = assess_coverage(result.hits, unknown_entities=result.unknown_entities)
        if mode == "clauses":
            text = CLAUSES_MESSAGE if coverage.covered else ABSTAIN_MESSAGE
            if check is not None:
                text = verdict_text(check)
            cites = check.citations if check is not None else [_citation(h.rank, h.unit) for h in result.hits]
            yield AskEvent("citations", {"citations": cites, "removed": []})
            yield AskEvent("done", finish(answer=text, citations=cites, abstained=not coverage.covered and check is None, mode="clauses", model=None, ai_generated=False))
            return

        if check is not None:
            # The verdict comes from the rules; its text is assembled, not generated.
            yield AskEvent("token", verdict_text(check))
            yield AskEvent("citations", {"citations": check.citations, "removed": []})
            yield AskEvent("done", finish(answer=verdict_text(check), citations=check.citations, abstained=False, mode="answer", model="rules", ai_generated=False))
            return

        if not coverage.covered:
            cites = [_citation(h.rank, h.unit) for h in result.hits]
            yield AskEvent("citations", {"citations": cites, "removed": []})
            yield AskEvent("done", finish(answer=ABSTAIN_MESSAGE, citations=cites, abstained=True, mode="answer", model=None, ai_generated=False))
            return

        if self.backend is None:
            cites = [_citation(h.rank, h.unit) for h in result.hits]
            yield AskEvent("citations", {"citations": cites, "removed": []})
            yield AskEvent("done", finish(answer=CLAUSES_MESSAGE, citations=cites, abstained=False, mode="clauses", model=None, notice=FALLBACK_NOTICE, ai_generated=False))
            return

        context = self._context(question, result.hits)
        messages = build_messages(question, context)
        pieces: list[str] = []
        try:
            with self.queue.slot(timeout=self.settings.llm_queue_wait_s):
                t_gen = time.perf_counter()
                first = True
                for delta in self.backend.stream_chat(messages, max_tokens=self.settings.llm_max_tokens, temperature=0.0, stop=["【質問】", "【資料】"]):
                    if first:
                        timings["ttft_ms"] = round((time.perf_counter() - t0) * 1000, 1)
                        first = False
                    pieces.append(delta)
                    yield AskEvent("token", delta)
                    if time.perf_counter() - t_gen > self.settings.llm_timeout_s:
                        raise LLMError(detail=f"generation exceeded {self.settings.llm_timeout_s}s")
                timings["generate_ms"] = round((time.perf_counter() - t_gen) * 1000, 1)
        except (LLMError, ModelUnavailable, Overloaded) as exc:
            if isinstance(exc, Overloaded):
                raise
            log.warning("LLM failed, falling back to clauses: %s", exc.detail or exc.message)
            cites = [_citation(h.rank, h.unit) for h in result.hits]
            yield AskEvent("error", {"code": exc.code, "message": exc.message})
            yield AskEvent("citations", {"citations": cites, "removed": []})
            yield AskEvent("done", finish(answer=CLAUSES_MESSAGE, citations=cites, abstained=False, mode="clauses", model=self.model_name, notice=FALLBACK_NOTICE, ai_generated=False))
            return

        raw = "".join(pieces).strip()
        sources = {c.n: c.unit["text"] + "\n" + (c.unit.get("row") or "") for c in context}
        gate = verify_answer(raw, sources, self.tokenizer)
        removed = [RemovedSentence(sentence=s, reason=r) for s, r in gate.removed]  # type: ignore[arg-type]
        used = gate.used_sources()
        if not gate.sentences:
            top = result.hits[0].unit
            quote = best_sentence(top["text"], set(self.tokenizer.tokens(question, query=True)), self.tokenizer) if coverage.strong else None
            invented = any(reason == "invented_number" for _, reason in gate.removed)
            if quote and not gate.abstained and not invented:
                # The model tried but nothing it wrote passed the gate, while retrieval judged the
                # question covered: quote the clause's best sentence verbatim instead of declining.
                # Not when it made up a figure: that is the model filling a gap the clauses leave.
                cites = [_citation(1, top)]
                text = f"{QUOTE_LEAD}「{quote}」[1]"
                yield AskEvent("citations", {"citations": cites, "removed": removed})
                yield AskEvent("done", finish(answer=text, citations=cites, abstained=False, mode="answer", model=self.model_name, removed=removed, notice=QUOTE_NOTICE, ai_generated=False))
                return
            # The model found no answer (or nothing verifiable): say so, and show the nearest
            # sentence so that a wrong refusal still puts the right clause in front of the user.
            text = f"{ABSTAIN_TEXT}。最も関連する可能性のある箇所: 「{quote}」[1]" if quote else ABSTAIN_MESSAGE
            cites = [_citation(1, top)] if quote else [_citation(h.rank, h.unit) for h in result.hits]
            yield AskEvent("citations", {"citations": cites, "removed": removed})
            yield AskEvent("done", finish(answer=text, citations=cites, abstained=True, mode="answer", model=self.model_name, removed=removed))
            return
        renumber = {old: new for new, old in enumerate(used, start=1)}
        by_n = {c.n: c.unit for c in context}
        cites = [_citation(renumber[old], by_n[old]) for old in used]
        text = gate.answer_text(renumber)
        yield AskEvent("citations", {"citations": cites, "removed": removed})
        yield AskEvent("done", finish(answer=text, citations=cites, abstained=False, mode="answer", model=self.model_name, removed=removed))

    def _context(self, question: str, hits: list[SearchHit]) -> list[ContextUnit]:
        terms = set(self.tokenizer.tokens(question, query=True))
        chosen = hits[: self.settings.llm_context_units]
        return [
            ContextUnit(n=i, unit=h.unit, excerpt=select_excerpt(h.unit.get("row") or h.unit["text"], terms, self.tokenizer))
            for i, h in enumerate(chosen, start=1)
        ]

