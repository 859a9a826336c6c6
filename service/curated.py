"""Registered answers (「登録済みの回答」) in the service: matching a question, and keeping the registry.

**Matching** (:class:`CuratedMatcher`, called by the answer pipeline right after retrieval).
The registered questions near the question are found by one fused dense + BM25 + bigram
query over the ``curated`` units the caller's groups may see
(:meth:`index.search.Searcher.curated_candidates`) and ranked by the cosine of the two
questions. The closest one is shown first, as 「登録済みの回答」, when

* its cosine is at least :data:`MATCH_THRESHOLD`,
* it leads the next registered question by at least :data:`MATCH_MARGIN` (two registered
  questions about as close are a coin toss, and a wrong registered answer does more harm
  than none), and
* either the wording is nearly the same (character-bigram overlap of at least
  :data:`SAME_WORDING`: a registered question asked again, or clicked among
  「よく似た質問」), or the documents agree — a passage it cites is among the question's top
  :data:`EVIDENCE_DEPTH` clauses in the ordinary hybrid search (the 「関連する箇所」 shown
  with the answer). The small embedding model puts a question on the same topic but after
  something else as close to a registered question as a true paraphrase; the passages
  the search finds for it differ.

Up to three others from :data:`SIMILAR_FLOOR` up are offered as 「よく似た質問」.
The numbers were chosen on the ``tune`` split of ``eval/data/curated`` (paraphrases
against unrelated questions) by ``eval/curated.py``, which reports them on ``holdout``.

**The registry** (``<corpus_dir>/curated/curated.yaml``, :mod:`ingest.curated`) is changed
by :func:`create_curated`, :func:`update_curated`, :func:`delete_curated` and
:func:`draft_from_answer` — the admin API and ``guideqa curated`` call these and nothing
below them. Each one screens the question and answer with the input guard (personal
data is refused, not masked: the text is shown to every reader), writes the file
atomically, re-ingests and rebuilds the index when what is shown changes (the embedding
cache makes that a few seconds), puts the file back if that fails, and is audited.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from guideqa.errors import (
    Forbidden,
    GuideQAError,
    IndexError_,
    IngestError,
    NotFound,
    Overloaded,
    PIIDetected,
    QueryRejected,
    Conflict,
    CuratedInvalid,
)
from index.search import CuratedCandidate, Searcher
from index.store import QueryFilter
from ingest.curated import (
    CURATED_FILE,
    CuratedEntry,
    CuratedItem,
    curated_unit_id,
    read_curated,
    resolve_item,
    restore_curated,
    write_curated,
)
from ingest.models import CURATED_KIND, Unit
from service.auth import Caller
from service.guard import rejection_for
from service.models import (
    Citation,
    CuratedAnswer,
    CuratedCitationPublic,
    CuratedCreate,
    CuratedList,
    CuratedPublic,
    CuratedUpdate,
    SimilarQuestion,
)

if TYPE_CHECKING:  # the state builds the answer pipeline, which uses this module
    from ingest.pipeline import IngestResult
    from service.state import AppState

__all__ = [
    "EVIDENCE_DEPTH",
    "MATCH_THRESHOLD",
    "MATCH_MARGIN",
    "SAME_WORDING",
    "SIMILAR_FLOOR",
    "SIMILAR_SHOWN",
    "MatchParams",
    "cited_in",
    "best_match",
    "CuratedMatcher",
    "curated_file",
    "list_curated",
    "get_curated",
    "create_curated",
    "update_curated",
    "delete_curated",
    "draft_from_answer",
    "export_curated",
]

log = logging.getLogger(__name__)

#: How deep in the question's ranked clauses a registered answer's citation counts as found.
EVIDENCE_DEPTH = 5
# Chosen by eval/curated.py on the tune split: the wording overlap and the threshold are the
# lowest steps at which no unrelated tune question got an answer, and the margin the one that
# then answered the most tune paraphrases rightly (a wrong one costing three); the floor is the
# lowest step above every off-topic tune question.
MATCH_THRESHOLD = 0.875
MATCH_MARGIN = 0.005
SAME_WORDING = 0.5
SIMILAR_FLOOR = 0.865
SIMILAR_SHOWN = 3
#: How long a change waits for a running ``guideqa ingest`` before answering 503.
INGEST_WAIT_S = 60.0

_process_lock = threading.Lock()


# --------------------------------------------------------------------------- matching
@dataclass(frozen=True)
class MatchParams:
    """The matching knobs (defaults: the values chosen on the tune split)."""

    threshold: float = MATCH_THRESHOLD
    margin: float = MATCH_MARGIN
    same_wording: float = SAME_WORDING
    similar_floor: float = SIMILAR_FLOOR


def cited_in(candidate: CuratedCandidate, ranked_ids: Sequence[str]) -> bool:
    """Whether a passage the registered answer cites is among the question's top :data:`EVIDENCE_DEPTH` clauses."""
    top = set(ranked_ids[:EVIDENCE_DEPTH])
    return any(c["unit_id"] in top for c in candidate.unit["curated"]["citations"])


def best_match(candidates: Sequence[CuratedCandidate], ranked_ids: Sequence[str], params: MatchParams = MatchParams()) -> CuratedCandidate | None:
    """The registered Q&A to show first, or ``None`` (the conditions of the module docstring).

    Args:
        candidates: best first (:meth:`Searcher.curated_candidates`).
        ranked_ids: the unit IDs the question's ordinary search ranked, best first.
    """
    if not candidates:
        return None
    top = candidates[0]
    lead = top.cosine - candidates[1].cosine if len(candidates) > 1 else top.cosine
    if top.cosine < params.threshold or lead < params.margin:
        return None
    return top if top.overlap >= params.same_wording or cited_in(top, ranked_ids) else None


class CuratedMatcher:
    """The registered answer (if any) and the similar registered questions for one question.

    Args:
        searcher: the live index.
        cite: builds the :class:`Citation` ``[n]`` of a unit payload (the answer pipeline's own).
        params: the matching knobs (the evaluation varies them; the service keeps the defaults).
    """

    def __init__(self, searcher: Searcher, *, cite: Callable[[int, dict[str, Any]], Citation], params: MatchParams = MatchParams()):
        self.searcher = searcher
        self.cite = cite
        self.params = params

    def match(self, question: str, *, flt: QueryFilter, ranked_ids: Sequence[str]) -> tuple[CuratedAnswer | None, list[SimilarQuestion]]:
        """The registered answer to show first (or ``None``) and up to three similar registered questions.

        A registered answer is shown only when the caller may open every passage it cites.

        Args:
            question: the question as it runs (normalised, screened).
            flt: the caller's filter; only its access part applies.
            ranked_ids: the unit IDs the question's ordinary search ranked, best first.
        """
        candidates = self.searcher.curated_candidates(question, flt=flt)
        best = best_match(candidates, ranked_ids, self.params)
        shown = self._answer(best, flt=flt) if best is not None else None
        similar = [
            SimilarQuestion(id=c.unit["curated"]["item_id"], question=c.unit["text"], score=c.cosine)
            for c in candidates
            if c.cosine >= self.params.similar_floor and (shown is None or c.unit["curated"]["item_id"] != shown.id)
        ]
        return shown, similar[:SIMILAR_SHOWN]

    def _answer(self, candidate: CuratedCandidate, *, flt: QueryFilter) -> CuratedAnswer | None:
        record = candidate.unit["curated"]
        cites = record["citations"]
        units = {u["id"]: u for u in self.searcher.get_units([c["unit_id"] for c in cites], flt=QueryFilter(access=flt.access))}
        if any(c["unit_id"] not in units for c in cites):
            log.info("registered answer %s not shown: a cited unit is outside the caller's groups", record["item_id"])
            return None
        citations = [self.cite(n, units[c["unit_id"]]).model_copy(update={"quote": c["quote"]}) for n, c in enumerate(cites, start=1)]
        return CuratedAnswer(
            id=record["item_id"], question=candidate.unit["text"], answer=record["answer"], citations=citations,
            author=record.get("author", ""), date=record.get("date", ""), score=candidate.cosine,
        )


# --------------------------------------------------------------------------- the registry
def curated_file(state: AppState) -> Path:
    """Where the registry lives: ``<corpus_dir>/curated/curated.yaml``."""
    return state.settings.corpus_dir / CURATED_FILE


def list_curated(state: AppState, caller: Caller) -> CuratedList:
    """Every registered item, drafts included, with whether each is shown now.

    Raises:
        Forbidden: ``caller`` is not an admin. IngestError: the file is not a YAML list.
    """
    _require_admin(caller)
    entries, problems = read_curated(curated_file(state))
    if problems:
        log.warning("curated registry has items that cannot be read: %s", problems)
    return CuratedList(items=_describe(state, entries))


def get_curated(state: AppState, caller: Caller, item_id: str) -> CuratedPublic:
    """One registered item.

    Raises:
        Forbidden: not an admin. NotFound: no such item.
    """
    _require_admin(caller)
    entries, _ = read_curated(curated_file(state))
    return _describe(state, [_entry(entries, item_id)])[0]


def export_curated(state: AppState, caller: Caller, *, endpoint: str = "guideqa curated export") -> list[CuratedItem]:
    """The registry's items as they are in the file (audited: the registry left the service).

    Raises:
        Forbidden: not an admin. IngestError: the file has items that cannot be read.
    """
    _require_admin(caller)
    with _audited(state, caller, endpoint=endpoint, mode="curated_export"):
        entries = _readable(curated_file(state))
        _audit(state, caller, endpoint=endpoint, mode="curated_export", answer=f"{len(entries)} items")
    return [e.item for e in entries]


def create_curated(state: AppState, caller: Caller, bodies: Sequence[CuratedCreate], *, endpoint: str = "/v1/admin/curated") -> list[CuratedPublic]:
    """Register new items (one change, one rebuild), each screened and audited.

    Raises:
        Forbidden: not an admin.
        PIIDetected / DenyWordDetected / InjectionDetected: personal data (or the like) in a question or answer.
        Conflict: an ID already used. CuratedInvalid: a published item whose quote is not found in its document.
        Overloaded: a ``guideqa ingest`` kept the index busy too long.
    """
    _require_admin(caller)
    today = _dt.date.today().isoformat()
    with _audited(state, caller, endpoint=endpoint, mode="curated_create"):
        new = [
            _item(
                {**body.model_dump(exclude={"id", "date"}), "id": body.id or f"cur-{uuid.uuid4().hex[:8]}", "date": body.date or today},
            )
            for body in bodies
        ]
        masked = [_screen(state, item) for item in new]
        ids = [item.id for item in new]
        if len(set(ids)) < len(ids):
            raise Conflict("同じ id の項目が複数あります。")
        with _registry(state) as registry:
            taken = sorted({e.item.id for e in registry.entries} & set(ids))
            if taken:
                raise Conflict(f"id {', '.join(taken)} はすでに登録されています。")
            result = registry.commit([e.item for e in registry.entries] + new, check=[i.id for i in new if i.status == "published"])
        for item, question in zip(new, masked):
            _audit(state, caller, endpoint=endpoint, mode="curated_create", question=question, item=item, result=result)
    return _describe(state, [CuratedEntry(item, 0, 0) for item in new])


def update_curated(state: AppState, caller: Caller, item_id: str, body: CuratedUpdate, *, endpoint: str = "/v1/admin/curated") -> CuratedPublic:
    """Change an item; fields left out of ``body`` stay. Publishing a draft needs its quotes to be found.

    Raises:
        Forbidden, NotFound, PIIDetected (…), Conflict, CuratedInvalid, Overloaded: as :func:`create_curated`.
    """
    _require_admin(caller)
    with _audited(state, caller, endpoint=endpoint, mode="curated_update"):
        with _registry(state) as registry:
            old = _entry(registry.entries, item_id).item
            new = _item({**old.model_dump(), **body.model_dump(exclude_none=True)})
            question = _screen(state, new)
            items = [new if e.item.id == item_id else e.item for e in registry.entries]
            shown = "published" in (old.status, new.status)
            result = registry.commit(items, check=[new.id] if new.status == "published" else [], rebuild=shown)
        _audit(state, caller, endpoint=endpoint, mode="curated_update", question=question, item=new, result=result)
    return _describe(state, [CuratedEntry(new, 0, 0)])[0]


def delete_curated(state: AppState, caller: Caller, item_id: str, *, endpoint: str = "/v1/admin/curated") -> None:
    """Remove an item (and, if it was published, take it out of the index).

    Raises:
        Forbidden, NotFound, Overloaded.
    """
    _require_admin(caller)
    with _audited(state, caller, endpoint=endpoint, mode="curated_delete"):
        with _registry(state) as registry:
            old = _entry(registry.entries, item_id).item
            result = registry.commit([e.item for e in registry.entries if e.item.id != item_id], rebuild=old.status == "published")
        _audit(state, caller, endpoint=endpoint, mode="curated_delete", question=state.guard.check(old.question).masked_for_log, item=old, result=result)


def draft_from_answer(state: AppState, caller: Caller, answer_id: str, *, endpoint: str = "/v1/admin/curated/draft") -> CuratedPublic:
    """A ``draft`` item from an earlier answer: its (masked) question, its text and the units it cited.

    The draft is never shown until it is published (``PUT`` with ``status: published``),
    so an admin who sees a 👎 can correct the answer for the next person. Its group is the
    access label of the cited units that are not public (``public`` if all are).

    Raises:
        Forbidden: not an admin. NotFound: no such answer, or it cited nothing.
        Conflict: an earlier draft of that answer exists. CuratedInvalid: its citations span two non-public groups.
        AuditUnavailable: the audit log cannot be read.
    """
    _require_admin(caller)
    with _audited(state, caller, endpoint=endpoint, mode="curated_draft"):
        row = next((r for r in state.audit.rows() if r["id"] == answer_id and r.get("answer") and r.get("question_masked")), None)
        if row is None:
            raise NotFound("指定された回答が見つかりません。")
        units = state.searcher.get_units(list(row.get("citations") or []), flt=QueryFilter.everything())
        if not units:
            raise NotFound("この回答は文書のどの箇所も引用していないため、下書きを作れません。")
        groups = sorted({u.get("access", "public") for u in units} - {"public"})
        if len(groups) > 1:
            raise CuratedInvalid(f"引用した箇所の区分が複数（{'、'.join(groups)}）にまたがるため、一つの group の下書きにできません。")
        item = _item(
            {
                "id": f"cur-{answer_id[:12]}",
                "question": row["question_masked"][:500],
                "answer": row["answer"][:4000],
                "citations": [{"doc_id": u["doc_id"], "quote": u["text"][:2000]} for u in units[:10]],
                "author": caller.key_id[:100],
                "date": _dt.date.today().isoformat(),
                "group": groups[0] if groups else "public",
                "status": "draft",
            }
        )
        question = _screen(state, item)
        with _registry(state) as registry:
            if any(e.item.id == item.id for e in registry.entries):
                raise Conflict(f"この回答の下書き（{item.id}）はすでにあります。")
            result = registry.commit([e.item for e in registry.entries] + [item], rebuild=False)
        _audit(state, caller, endpoint=endpoint, mode="curated_draft", question=question, item=item, result=result)
    return _describe(state, [CuratedEntry(item, 0, 0)])[0]


# --------------------------------------------------------------------------- the registry's internals
class _Registry:
    """The registry's entries while the ingest lock is held, and the one way to change them."""

    def __init__(self, state: AppState, entries: list[CuratedEntry]):
        self.state = state
        self.path = curated_file(state)
        self.entries = entries

    def commit(self, items: list[CuratedItem], *, check: Sequence[str] = (), rebuild: bool = True) -> IngestResult | None:
        """Write ``items`` and, when ``rebuild``, re-ingest and rebuild the index; undo the write on failure.

        Args:
            check: IDs of published items that must resolve (else nothing is changed).

        Raises:
            CuratedInvalid: an item of ``check`` does not resolve.
        """
        previous = write_curated(self.path, items)
        if not rebuild and not check:
            return None
        try:
            return _reindex(self.state, check=check)
        except BaseException:
            restore_curated(self.path, previous)
            raise


@contextmanager
def _registry(state: AppState) -> Iterator[_Registry]:
    """The registry, read under the process lock and ``<data_dir>/ingest.lock`` (shared with ``guideqa ingest``)."""
    deadline = time.monotonic() + INGEST_WAIT_S
    if not _process_lock.acquire(timeout=INGEST_WAIT_S):
        raise Overloaded("登録済みの回答を更新中です。しばらくしてから再度お試しください。", retry_after=30)
    try:
        data_dir = state.settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        with open(data_dir / "ingest.lock", "w") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise Overloaded("文書の取り込みが実行中です。しばらくしてから再度お試しください。", retry_after=30) from None
                    time.sleep(0.2)
            yield _Registry(state, _readable(curated_file(state)))
    finally:
        _process_lock.release()


def _reindex(state: AppState, *, check: Sequence[str]) -> IngestResult:
    """Ingest the corpus with the registry as written and build the index, as ``guideqa ingest`` does."""
    from index.build import build_index
    from ingest.pipeline import ingest_corpus

    settings = state.settings
    result = ingest_corpus(settings.corpus_dir, settings.manifest_path)
    skipped = dict(result.curated.skipped)
    unresolved = [f"{i}: {skipped[i]}" for i in check if i in skipped]
    if unresolved:
        raise CuratedInvalid("引用が文書に見つからないため登録できません（" + " / ".join(unresolved) + "）。")
    build_index(
        result.units, settings, embed_model=state.searcher.embed_model, tokenizer=state.searcher.tokenizer,
        documents=len(result.documents) - len(result.failed),
    )
    return result


def _readable(path: Path) -> list[CuratedEntry]:
    """The file's entries, refusing to go on when an item cannot be read (a rewrite would drop it)."""
    entries, problems = read_curated(path)
    if problems:
        names = "、".join(f"{name}（{reason}）" for name, reason in problems[:3])
        raise IngestError(f"登録済みの回答のファイル {path.name} に読めない項目があります: {names}。ファイルを直してから再度お試しください。")
    return entries


def _entry(entries: Sequence[CuratedEntry], item_id: str) -> CuratedEntry:
    found = next((e for e in entries if e.item.id == item_id), None)
    if found is None:
        raise NotFound("指定された登録済みの回答は見つかりません。")
    return found


def _item(fields: dict[str, Any]) -> CuratedItem:
    """A registry item from API fields (validated again: the file's rules are the last word)."""
    try:
        return CuratedItem.model_validate(fields)
    except ValidationError as exc:
        where = "、".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()[:3])
        raise CuratedInvalid(f"登録済みの回答の内容に誤りがあります（{where}）。") from exc


def _screen(state: AppState, item: CuratedItem) -> str:
    """Refuse personal data (any category, even one questions may carry masked), deny words and
    injection in the question, the answer and the quotes; return the question as it may be logged."""
    for what, text in (("質問", item.question), ("回答", item.answer), *(("引用", c.quote) for c in item.citations)):
        decision = state.guard.check(text)
        if decision.findings or decision.blocked:
            error = rejection_for(decision)
            cls = type(error) if error is not None else PIIDetected
            reason = "個人情報と思われる内容" if cls is PIIDetected else "登録できない内容"
            raise cls(f"登録済みの回答の{what}に{reason}が含まれているため、登録できません。", detail=error.detail if error else None)
    return state.guard.check(item.question).masked_for_log


def _describe(state: AppState, entries: Sequence[CuratedEntry]) -> list[CuratedPublic]:
    """Items as the admin API shows them: the unit each quote was found in, and whether it is shown now.

    An item is shown now when the live index holds it as written (a hand edit not yet
    ingested is not). A published item that is not is checked against the live units,
    to say why.
    """
    try:
        ids = [curated_unit_id(e.item.id) for e in entries]
        live = {p["curated"]["item_id"]: p for p in state.searcher.get_units(ids, flt=QueryFilter.curated_for(None))}
        readable = True
    except IndexError_:
        live, readable = {}, False
    pending = [e.item for e in entries if e.item.status == "published" and not _serves(live.get(e.item.id), e.item)]
    by_doc: dict[str, list[Unit]] = defaultdict(list)
    if pending and readable:
        for payload in state.searcher.iter_units(flt=QueryFilter.everything()):
            by_doc[payload["doc_id"]].append(Unit.model_validate(payload))
    out = []
    for entry in entries:
        item = entry.item
        payload = live.get(item.id)
        serves = _serves(payload, item)
        unit_ids: list[str | None] = [c["unit_id"] for c in payload["curated"]["citations"]] if serves else [None] * len(item.citations)
        problems: list[str] = []
        if item.status == "published" and not serves and by_doc:
            resolved, problems = resolve_item(item, by_doc)
            if not problems:
                unit_ids = [c.unit_id for c in resolved]
        out.append(
            CuratedPublic(
                **item.model_dump(exclude={"citations"}),
                citations=[CuratedCitationPublic(doc_id=c.doc_id, quote=c.quote, unit_id=u) for c, u in zip(item.citations, unit_ids)],
                indexed=serves if readable else None,
                problems=problems,
            )
        )
    return out


def _serves(payload: dict[str, Any] | None, item: CuratedItem) -> bool:
    """The live index holds ``item`` as written (published, same question, answer, group and citations)."""
    if payload is None or payload.get("kind") != CURATED_KIND or item.status != "published":
        return False
    record = payload["curated"]
    return (
        payload["text"] == item.question and payload["access"] == item.group and record["answer"] == item.answer
        and record.get("author", "") == item.author and record.get("date", "") == item.date
        and [c["doc_id"] for c in record["citations"]] == [c.doc_id for c in item.citations]
    )


def _require_admin(caller: Caller) -> None:
    if caller.role != "admin":
        raise Forbidden()


@contextmanager
def _audited(state: AppState, caller: Caller, *, endpoint: str, mode: str) -> Iterator[None]:
    """Refuse while the audit log is backed up, and audit a change that fails (refusals included)."""
    state.audit.ensure_accepting()
    try:
        yield
    except GuideQAError as exc:
        _audit(state, caller, endpoint=endpoint, mode=mode, status="blocked" if isinstance(exc, QueryRejected) else "error", error_code=exc.code)
        raise


def _audit(
    state: AppState, caller: Caller, *, endpoint: str, mode: str, status: str = "ok", question: str | None = None,
    item: CuratedItem | None = None, result: IngestResult | None = None, answer: str | None = None, error_code: str | None = None,
) -> None:
    """One audit row per change: the item's ID and (screened) text, never anything unscreened."""
    cited = [u.curated.citations for u in result.units if item is not None and u.kind == CURATED_KIND and u.curated and u.curated.item_id == item.id] if result else []
    state.audit.record(
        key_id=caller.key_id,
        groups=["*"] if caller.sees_every_label else list(caller.groups),
        endpoint=endpoint,
        mode=mode,
        status=status,
        error_code=error_code,
        question_masked=question,
        answer=answer if answer is not None else (f"[{item.id} {item.status}] {item.answer}" if item is not None else None),
        citations=[c.unit_id for c in cited[0]] if cited else None,
        retrieved_ids=[curated_unit_id(item.id)] if item is not None else None,
    )
