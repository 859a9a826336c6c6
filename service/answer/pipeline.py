"""The answer pipeline: retrieve → (check | compose) → (the model's gated lead) → response.

:meth:`Answerer.stream` yields events in the order a user should see them:

* ``clauses``   — the ranked clauses, at once (before anything else);
* ``curated``   — ``{"curated", "similar"}``: the office's registered answer to a closely
  matching question (or ``null``) and similar registered questions (:mod:`service.curated`);
* ``check``     — the confidentiality verdict card, when the question is of that kind;
* ``answer``    — the composed answer: verbatim pieces of the documents with their
  citations, built from the documents' structure without the model (on screen within
  a fraction of a second);
* ``status``    — ``{"state": "writing"}`` while the model writes a lead sentence;
* ``answer``    — again, when the model's lead sentence passed the gate (only text that
  passed the gate is ever sent; the model's raw words never are);
* ``citations`` — the citations and what the gate removed;
* ``done``      — the final :class:`AskResponse`.

:meth:`Answerer.ask` runs the same steps and returns only the final response. A model
that fails, times out or is busy beyond the queue leaves the composed answer as it is.
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
from index.search import Searcher
from index.tokenizer import JapaneseTokenizer
from service.answer.compose import Composer
from service.answer.coverage import assess_coverage
from service.answer.lead import LEAD_SCHEMA, apply_lead, lead_messages, parse_lead, wants_lead
from service.answer.prompt import ABSTAIN_TEXT
from service.answer.render import RenderedAnswer, citation_for, render_parts
from service.answer.shape import analyse_question
from service.check import CheckEngine
from service.curated import CuratedMatcher
from service.models import AskResponse, CheckResponse, Citation, CompareResponse, Filters, RemovedSentence
from service.search import hit_public, to_query_filter

__all__ = ["Answerer", "AskEvent", "LLMQueue", "ABSTAIN_MESSAGE", "CLAUSES_MESSAGE", "FALLBACK_NOTICE", "BUSY_NOTICE"]

log = logging.getLogger(__name__)

ABSTAIN_MESSAGE = f"{ABSTAIN_TEXT}。関連する可能性のある箇所を示します。"
CLAUSES_MESSAGE = "該当する可能性のある箇所を示します（回答文は生成していません）。"
FALLBACK_NOTICE = "AIによる結論の一文は利用できなかったため、文書の該当箇所をそのまま示しています。"
BUSY_NOTICE = "混み合っているため、AIによる結論の一文を省き、文書の該当箇所をそのまま示しています。"
#: Model output for one lead: a short JSON object.
LEAD_MAX_TOKENS = 70


@dataclass
class AskEvent:
    event: str
    data: Any


class LLMQueue:
    """One generation at a time, at most ``size`` waiting; beyond that, :class:`Overloaded`.

    The answer pipeline never lets that reach the user: the composed answer needs no
    model, so a full queue only means the model's lead sentence is skipped.
    """

    def __init__(self, size: int, *, expected_seconds: float = 20.0):
        self.size = size
        self.expected_seconds = expected_seconds
        self._run = threading.Semaphore(1)
        self._lock = threading.Lock()
        self.waiting = 0

    @property
    def full(self) -> bool:
        return self.waiting >= self.size

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
            # Retrieval is done already: the composed answer beats a 503 after a long wait.
            raise LLMError(detail=f"no generation slot within {timeout:.0f}s")
        try:
            yield
        finally:
            self._run.release()


#: Shown before a confidentiality verdict taken from the national table when the office's own rule came first.
NATIONAL_VERDICT_LABEL = "国の機密性分類表による判定（参考）"


def _numbered_after(check: CheckResponse, cited: list[Citation]) -> CheckResponse:
    """``check`` with its citations numbered after ``cited`` (a unit already cited keeps its number)."""
    numbers = {c.unit_id: c.n for c in cited}
    for c in check.citations:
        numbers.setdefault(c.unit_id, len(numbers) + 1)
    return check.model_copy(update={"citations": [c.model_copy(update={"n": numbers[c.unit_id]}) for c in check.citations]})


def verdict_text(check: CheckResponse) -> str:
    """The verdict card as one short Japanese answer with [n] marks (no generation)."""
    label = f"機密性{check.class_}" if check.class_ else "分類不明"
    cite = "".join(f"[{c.n}]" for c in check.citations[:1])
    parts = [f"判定: {check.verdict}（{label}）。"]
    if check.reasons:
        parts.append(check.reasons[0] + cite)
    if check.then_rule and len(check.reasons) > 1:
        parts.append(check.reasons[1] + "".join(f"[{c.n}]" for c in check.citations[1:2]))
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
        self.composer = Composer(searcher, tokenizer)
        self.curated = CuratedMatcher(searcher, cite=citation_for)

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
        flt = to_query_filter(filters, list(groups) if groups is not None else None)
        result = self.searcher.search(question, top_k=top_k, flt=flt)
        timings["retrieve_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        related = [hit_public(h) for h in result.hits]
        yield AskEvent("clauses", related)
        # The office's registered answer to a closely matching question comes first, before composing.
        curated, similar = self.curated.match(question, flt=flt, ranked_ids=[h.unit_id for h in result.hits])
        timings["curated_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        yield AskEvent("curated", {"curated": curated, "similar": similar})

        check: CheckResponse | None = None
        if self.check_engine is not None and self.check_engine.is_check_question(question):
            check = self.check_engine.check(question)
            timings["check_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            yield AskEvent("check", check)

        def finish(**fields: Any) -> AskResponse:
            timings["total_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            return AskResponse(
                answer_id=answer_id, index_version=result.index_version, related=related, timings=timings, check=check,
                curated=curated, similar=similar, **fields,
            )

        if mode == "clauses":
            covered = assess_coverage(result.hits, unknown_entities=result.unknown_entities).covered
            text = verdict_text(check) if check is not None else (CLAUSES_MESSAGE if covered else ABSTAIN_MESSAGE)
            cites = check.citations if check is not None else [citation_for(h.rank, h.unit) for h in result.hits]
            yield AskEvent("citations", {"citations": cites, "removed": []})
            yield AskEvent("done", finish(answer=text, citations=cites, abstained=not covered and check is None, mode="clauses", model=None, ai_generated=False))
            return

        asks = analyse_question(question)
        if check is not None:
            # The verdict comes from the rules; its text is assembled, not generated. The clauses
            # that bear on the question (the office's own rule first) are composed beneath it,
            # and so is any other part of it (「…入れていい？あと研修は必要？」). No model here.
            # Beneath a verdict, a part the clauses do not cover adds nothing: the verdict answered it.
            parts = [p for p in self.composer.compose(question, flt=flt, first=result, parts=asks) if p.covered]
            if len(asks) == 1 and all(p.shape != "comparison" for p in parts) and not any(pc.scope == "local" for p in parts for pc in p.pieces):
                # A one-part question the verdict answers from the national table: other national
                # sentences beneath it would only restate it less exactly.
                parts = []
            on_own_rule = bool(check.citations) and check.citations[0].authority == "binding"
            if check.decided_by == "local_policy" and on_own_rule:
                deciding = check.citations[: 2 if check.then_rule else 1]
                parts = self.composer.rule_clauses(question, parts, [c for c in deciding if c.authority == "binding"], flt)
            if not on_own_rule and any(pc.scope == "local" for p in parts for pc in p.pieces):
                # The office's own rule answers the question; a verdict from the national table
                # follows it, labelled as such (the binding rule first, national guidance after).
                rendered = render_parts(parts)
                check = _numbered_after(check, rendered.citations)
                rendered.text += f"\n{NATIONAL_VERDICT_LABEL}: {verdict_text(check)}"
                rendered.citations += [c for c in check.citations if c.n > len(rendered.citations)]
            else:
                rendered = render_parts(parts, lead_text=verdict_text(check), cited=check.citations)
            yield AskEvent("citations", {"citations": rendered.citations, "removed": []})
            yield AskEvent(
                "done",
                finish(answer=rendered.text, citations=rendered.citations, parts=rendered.parts, abstained=False, mode="answer", model="rules", ai_generated=False),
            )
            return

        parts = self.composer.compose(question, flt=flt, first=result, parts=asks)
        documents = self.searcher.documents(flt=flt) if any(p.shape == "comparison" for p in parts) else None
        rendered = render_parts(parts, documents=documents)
        timings["compose_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        yield AskEvent("answer", self._draft(rendered))

        removed: list[RemovedSentence] = []
        notice: str | None = None
        model: str | None = None
        # One model call per question: each costs seconds on two cores.
        todo = [p for p in parts if wants_lead(p)][:1] if self.backend is not None else []
        if todo and self.queue.full:
            todo, notice = [], BUSY_NOTICE
        if todo:
            yield AskEvent("status", {"state": "writing"})
            try:
                with self.queue.slot(timeout=self.settings.llm_queue_wait_s):
                    t_gen = time.perf_counter()
                    for part in todo:
                        raw = self.backend.chat(lead_messages(part), max_tokens=LEAD_MAX_TOKENS, temperature=0.0, json_schema=LEAD_SCHEMA)
                        lead = parse_lead(raw)
                        dropped = apply_lead(part, lead, self.tokenizer)
                        if dropped:
                            removed.append(RemovedSentence(sentence=(lead if lead is not None else raw)[:200], reason=dropped))  # type: ignore[arg-type]
                    timings["generate_ms"] = round((time.perf_counter() - t_gen) * 1000, 1)
                model = self.model_name
            except Overloaded:
                notice = BUSY_NOTICE
            except (LLMError, ModelUnavailable) as exc:
                log.warning("LLM failed, keeping the composed answer: %s", exc.detail or exc.message)
                notice = FALLBACK_NOTICE
                yield AskEvent("error", {"code": exc.code, "message": exc.message})
            rendered = render_parts(parts, documents=documents)
            timings["ttft_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            yield AskEvent("answer", self._draft(rendered))
        elif self.backend is None and any(p.covered for p in parts):
            notice = FALLBACK_NOTICE if self.settings.llm_backend != "none" else None

        yield AskEvent("citations", {"citations": rendered.citations, "removed": removed})
        yield AskEvent(
            "done",
            finish(
                answer=rendered.text, citations=rendered.citations, parts=rendered.parts, comparison=rendered.comparison,
                abstained=rendered.abstained,
                mode="answer", model=model if rendered.ai_generated else None, removed=removed, notice=notice,
                ai_generated=rendered.ai_generated,
            ),
        )

    @staticmethod
    def _draft(rendered: RenderedAnswer) -> dict[str, Any]:
        return {
            "answer": rendered.text, "parts": rendered.parts, "comparison": rendered.comparison,
            "citations": rendered.citations, "ai_generated": rendered.ai_generated,
        }

    def compare(self, topic: str, *, groups: list[str] | None, doc_ids: list[str] | None = None) -> CompareResponse:
        """``topic`` side by side across documents (no model): each one's best sentences, or that it says nothing."""
        t0 = time.perf_counter()
        flt = to_query_filter(None, groups)
        part = self.composer.compare(topic, flt=flt, doc_ids=doc_ids)
        rendered = render_parts([part], documents=self.searcher.documents(flt=flt))
        return CompareResponse(
            topic=topic, comparison=rendered.comparison, parts=rendered.parts, index_version=self.searcher.index_version,
            timings={"total_ms": round((time.perf_counter() - t0) * 1000, 1)},
        )
