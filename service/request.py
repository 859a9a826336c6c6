"""The one path every question takes: validate → normalise → guard → run → audit.

Every route that takes a question (``/v1/search``, ``/v1/ask`` as JSON and as
server-sent events, ``/v1/check``), the CLI's ``search``, ``ask`` and ``check``
commands, and the evaluation runner call these functions and nothing below them::

    >>> from service.auth import SYSTEM
    >>> resp = run_search(state, SYSTEM, "３Ｃ情報はクラウドに入れていい？", record=False)   # doctest: +SKIP
    >>> resp.query                                                                        # doctest: +SKIP
    '3C情報はクラウドに入れていい？'

The steps, in order:

1. **validate** — a string, no control bytes (``query_invalid``, ``query_binary``);
2. **normalise** — NFKC and invisible characters removed; then the limits apply to
   *this* text: ``Settings.max_query_chars`` characters and
   ``Settings.query_token_limit`` embedding tokens (``query_empty``, ``query_too_long``);
3. **guard** — personal data, deny words, injection (``pii_detected``, …); a masked
   question runs masked, and only the masked form is ever stored or echoed;
4. **run** — search, answer or check, restricted to what the caller may see
   (``Caller.query_filter``, ``AppState.check_for``);
5. **audit** — one row per request, refused ones included, queued without waiting
   for the database (``AuditLog.record``).

A caller is a :class:`~service.auth.Caller`; tools without one (the evaluation
runner) pass :data:`~service.auth.SYSTEM` and ``record=False``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from guideqa.errors import GuideQAError, QueryBinary, QueryEmpty, QueryInvalid, QueryRejected, QueryTooLong
from index.search import SearchResult
from ingest.cleaning import nfkc
from service.answer import AskEvent
from service.auth import Caller
from service.check import CheckEngine
from service.guard import GuardDecision, rejection_for
from service.guard.pii import remove_invisible
from service.limits import count_query_tokens
from service.models import AskResponse, CheckResponse, ClassRow, CompareResponse, Filters, SearchResponse
from service.search import caller_filter, hit_public
from service.state import AppState

__all__ = [
    "Prepared",
    "AskStream",
    "normalise_question",
    "prepare",
    "search",
    "run_search",
    "run_ask",
    "open_ask_stream",
    "run_check",
    "check_table",
]

# The audit row of a caller who sees every label can quote any unit: it belongs in no group's export.
_EVERY_LABEL = ["*"]


def normalise_question(text: str) -> str:
    """NFKC, invisible characters (zero-width space, soft hyphen, …) removed, outer blanks stripped.

        >>> normalise_question("　３Ｃ\\u200b情報 ")
        '3C情報'
    """
    return remove_invisible(nfkc(text)).strip()


@dataclass(frozen=True)
class Prepared:
    """A question that passed steps 1–3.

    Attributes:
        text: what runs (normalised; masked categories replaced, injection cut out).
        logged: what is stored and may be echoed (every finding masked).
        decision: the guard's decision (action, findings as spans, injection rules).
    """

    text: str
    logged: str
    decision: GuardDecision

    @property
    def notice(self) -> str:
        """The guard's message to the user ('' when nothing was found)."""
        return self.decision.message


def _record(state: AppState, caller: Caller, record: bool, **fields: Any) -> str | None:
    if not record:
        return None
    groups = _EVERY_LABEL if caller.sees_every_label else list(caller.groups)
    return state.audit.record(key_id=caller.key_id, groups=groups, **fields)


def _validate(state: AppState, raw: Any) -> str:
    if not isinstance(raw, str):
        raise QueryInvalid()
    if "\ufffd" in raw or any(unicodedata.category(c) == "Cc" and c not in "\n\r\t" for c in raw):
        raise QueryBinary()
    q = normalise_question(raw)
    if not q:
        raise QueryEmpty()
    limit = state.settings.max_query_chars
    if len(q) > limit:
        raise QueryTooLong(f"質問が長すぎます（正規化後 {len(q)} 文字）。{limit} 文字以内で入力してください。")
    tokens = count_query_tokens(state.searcher.embed_model, q)
    if tokens > state.settings.query_token_limit:
        raise QueryTooLong(
            f"質問が長すぎます（{tokens} トークン）。検索モデルが一度に読める {state.settings.query_token_limit} トークン以内に短くしてください。"
        )
    return q


def prepare(state: AppState, caller: Caller, question: Any, *, endpoint: str, mode: str | None = None, record: bool = True) -> Prepared:
    """Steps 1–3 for one question; a refusal is audited (masked) before it is raised.

    Raises:
        AuditBacklogFull: the audit store has been unwritable long enough to fill its queue.
        QueryRejected: ``query_invalid``, ``query_binary``, ``query_empty``, ``query_too_long``,
            ``pii_detected``, ``deny_word`` or ``injection_detected``.
    """
    if record:
        state.audit.ensure_accepting()
    try:
        q = _validate(state, question)
    except QueryRejected as exc:
        # The text itself is not kept: it may be huge, binary or unscreened.
        _record(state, caller, record, endpoint=endpoint, mode=mode, status="blocked", error_code=exc.code)
        raise
    decision = state.guard.check(q)
    error = rejection_for(decision)
    if error is not None:
        _record(state, caller, record, endpoint=endpoint, question_masked=decision.masked_for_log, mode=mode, status="blocked", error_code=error.code)
        raise error
    return Prepared(decision.text, decision.masked_for_log, decision)


# --------------------------------------------------------------------------- search
def search(state: AppState, caller: Caller, prepared: Prepared, *, top_k: int = 5, filters: Filters | None = None) -> SearchResult:
    """Step 4 of a search: ranked units among those ``caller`` may see (raw hits, for the evaluation runner)."""
    return state.searcher.search(prepared.text, top_k=top_k, flt=caller_filter(caller, filters))


def run_search(
    state: AppState, caller: Caller, query: Any, *, top_k: int = 5, filters: Filters | None = None,
    endpoint: str = "/v1/search", record: bool = True,
) -> SearchResponse:
    """``POST /v1/search`` and ``guideqa search``: the whole path, audited.

    Raises:
        QueryRejected, AuditBacklogFull: as :func:`prepare`.
        IndexError_: no usable index (audited as an error).
    """
    p = prepare(state, caller, query, endpoint=endpoint, mode="search", record=record)
    try:
        res = search(state, caller, p, top_k=top_k, filters=filters)
    except GuideQAError as exc:
        _record(state, caller, record, endpoint=endpoint, question_masked=p.logged, mode="search", status="error", error_code=exc.code)
        raise
    results = [hit_public(h) for h in res.hits]
    _record(state, caller, record, endpoint=endpoint, question_masked=p.logged, mode="search",
            retrieved_ids=[r.id for r in results], index_version=res.index_version, latency_ms=res.timings)
    # The index pins sections over every unit; echo only those the caller's results stand under,
    # so the response does not confirm a section of a document the caller may not see.
    paths = [nfkc(" ".join(r.section_path)) for r in results]
    sections = [name for name in res.sections if any(name in path for path in paths)]
    # The query is echoed as it ran: normalised and masked.
    return SearchResponse(query=p.text, results=results, index_version=res.index_version, sections=sections, timings=res.timings)


# --------------------------------------------------------------------------- compare
def run_compare(
    state: AppState, caller: Caller, topic: Any, *, doc_ids: list[str] | None = None,
    endpoint: str = "/v1/compare", record: bool = True,
) -> CompareResponse:
    """``POST /v1/compare`` and ``guideqa compare``: a topic side by side across the documents the caller may see.

    Raises:
        QueryRejected, AuditBacklogFull: as :func:`prepare`.
        IndexError_: no usable index (audited as an error).
    """
    p = prepare(state, caller, topic, endpoint=endpoint, mode="compare", record=record)
    try:
        resp = state.answerer(caller).compare(p.text, groups=caller.access, doc_ids=doc_ids or None)
    except GuideQAError as exc:
        _record(state, caller, record, endpoint=endpoint, question_masked=p.logged, mode="compare", status="error", error_code=exc.code)
        raise
    cited = [c.unit_id for col in resp.comparison for c in col.clauses]
    _record(state, caller, record, endpoint=endpoint, question_masked=p.logged, mode="compare",
            retrieved_ids=cited, citations=cited, index_version=resp.index_version, latency_ms=resp.timings)
    return resp.model_copy(update={"topic": p.text})


# --------------------------------------------------------------------------- ask
def _record_answer(state: AppState, caller: Caller, record: bool, endpoint: str, logged: str, final: AskResponse) -> None:
    _record(
        state, caller, record,
        answer_id=final.answer_id,
        endpoint=endpoint,
        question_masked=logged,
        mode=final.mode,
        retrieved_ids=[r.id for r in final.related],
        answer=final.answer,
        citations=[c.unit_id for c in final.citations],
        abstained=final.abstained,
        model=final.model,
        index_version=final.index_version,
        latency_ms=final.timings,
        status="fallback" if final.notice else "ok",
    )


def run_ask(
    state: AppState, caller: Caller, question: Any, *, mode: str = "answer", filters: Filters | None = None,
    top_k: int = 5, endpoint: str = "/v1/ask", record: bool = True,
) -> AskResponse:
    """``POST /v1/ask`` (JSON) and ``guideqa ask``: a cited answer, audited (refusals and overload too).

    Raises:
        QueryRejected, AuditBacklogFull: as :func:`prepare`.
        IndexError_: no usable index.
    """
    p = prepare(state, caller, question, endpoint=endpoint, mode=mode, record=record)
    try:
        final = state.answerer(caller).ask(p.text, mode=mode, groups=caller.access, filters=filters, top_k=top_k)
    except GuideQAError as exc:
        # A refused request is part of the usage history too.
        _record(state, caller, record, endpoint=endpoint, question_masked=p.logged, mode=mode, status="error", error_code=exc.code)
        raise
    _record_answer(state, caller, record, endpoint, p.logged, final)
    return final


@dataclass
class AskStream:
    """The events of one streamed answer, audited once when the stream ends.

    :func:`open_ask_stream` has already produced the first event, so anything that
    refuses the request (guard, overload, no index) happened before a byte was sent.
    Read with :meth:`next_event` until it returns ``None``; always :meth:`close`.
    """

    state: AppState
    caller: Caller
    prepared: Prepared
    mode: str
    endpoint: str
    record: bool
    events: Iterator[AskEvent]
    first: AskEvent | None
    recorded: bool = field(default=False)

    def _record_error(self, code: str) -> None:
        if not self.recorded:
            self.recorded = True
            _record(self.state, self.caller, self.record, endpoint=self.endpoint, question_masked=self.prepared.logged,
                    mode=self.mode, status="error", error_code=code)

    def next_event(self) -> AskEvent | None:
        """The next event, or ``None`` at the end. The ``done`` event is audited before it is returned,
        so feedback sent right after it finds the answer.

        Raises:
            GuideQAError: generation failed for good (audited as an error).
        """
        if self.first is not None:
            ev, self.first = self.first, None
        else:
            try:
                ev = next(self.events)
            except StopIteration:
                return None
            except GuideQAError as exc:
                self._record_error(exc.code)
                raise
            except Exception:
                self._record_error("internal_error")
                raise
        if ev.event == "done" and not self.recorded:
            self.recorded = True
            _record_answer(self.state, self.caller, self.record, self.endpoint, self.prepared.logged, ev.data)
        return ev

    def close(self) -> None:
        """Stop generating (frees the model) and audit a stream that ended before ``done``."""
        close = getattr(self.events, "close", None)
        if close is not None:
            close()
        self._record_error("stream_cancelled")


def open_ask_stream(
    state: AppState, caller: Caller, question: Any, *, mode: str = "answer", filters: Filters | None = None,
    top_k: int = 5, endpoint: str = "/v1/ask", record: bool = True,
) -> AskStream:
    """``POST /v1/ask`` with ``"stream": true``: everything that can refuse the request happens here.

    Raises:
        as :func:`run_ask` (each refusal audited), before the first event exists.
    """
    p = prepare(state, caller, question, endpoint=endpoint, mode=mode, record=record)
    try:
        events = state.answerer(caller).stream(p.text, mode=mode, groups=caller.access, filters=filters, top_k=top_k)
        first = next(events)
    except GuideQAError as exc:
        _record(state, caller, record, endpoint=endpoint, question_masked=p.logged, mode=mode, status="error", error_code=exc.code)
        raise
    return AskStream(state, caller, p, mode, endpoint, record, events, first)


# --------------------------------------------------------------------------- check
def run_check(
    state: AppState, caller: Caller, *, question: Any = None, information: Any = None, service: Any = None,
    endpoint: str = "/v1/check", record: bool = True,
) -> CheckResponse:
    """``POST /v1/check`` and ``guideqa check``: the confidentiality verdict, from the rules ``caller`` may see.

    Each free-text field goes through the guard on its own, and the engine only
    ever sees (and echoes) the screened, masked text.

    Raises:
        QueryRejected, AuditBacklogFull: as :func:`prepare` (``query_empty`` when neither
            ``question`` nor ``information`` is given).
        RulesError, IndexError_: the rules or the index cannot be used.
    """
    if question is not None and question != "":
        p = prepare(state, caller, question, endpoint=endpoint, mode="check", record=record)
        logged, run = p.logged, {"question": p.text}
    elif information is not None and information != "":
        info = prepare(state, caller, information, endpoint=endpoint, mode="check", record=record)
        svc = prepare(state, caller, service, endpoint=endpoint, mode="check", record=record) if service not in (None, "") else None
        logged = info.logged + (" / " + svc.logged if svc else "")
        run = {"information": info.text, "service": svc.text if svc else ""}
    else:
        err = QueryEmpty("question か information を指定してください。")
        _record(state, caller, record, endpoint=endpoint, mode="check", status="blocked", error_code=err.code)
        raise err
    try:
        engine: CheckEngine = state.check_for(caller)
        result = engine.check(**run)
    except GuideQAError as exc:
        _record(state, caller, record, endpoint=endpoint, question_masked=logged, mode="check", status="error", error_code=exc.code)
        raise
    _record(state, caller, record, endpoint=endpoint, question_masked=logged, mode="check", answer=result.verdict,
            citations=[c.unit_id for c in result.citations], abstained=result.verdict == "判断できない", model="rules",
            index_version=engine.index_version)
    return result


def check_table(state: AppState, caller: Caller) -> list[ClassRow]:
    """``GET /v1/check/classes`` and ``guideqa check --list``: the class rows whose cited unit ``caller`` may see."""
    return state.check_for(caller).table()
