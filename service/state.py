"""Everything the API keeps for the life of the process, built once at start-up."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from guideqa.errors import RulesError
from guideqa.settings import Settings
from index.search import Searcher
from index.tokenizer import get_tokenizer
from service.answer import Answerer, LLMQueue
from service.audit import AuditLog
from service.auth import SYSTEM, Caller, KeyRing
from service.check import CheckEngine, load_rules
from service.check.policy import load_policy
from service.components import build_searcher
from service.guard import InputGuard
from service.ratelimit import RateLimiter, parse_networks

__all__ = ["AppState", "build_state"]

log = logging.getLogger(__name__)


@dataclass
class AppState:
    settings: Settings
    searcher: Searcher
    keys: KeyRing
    rate_limiter: RateLimiter
    auth_failures: RateLimiter
    queue: LLMQueue
    guard: InputGuard
    audit: AuditLog
    backend: Any | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    trusted_proxies: tuple = ()
    _check: CheckEngine | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def check_engine(self) -> CheckEngine:
        """The confidentiality check over every rule, as of the live index version.

        Rebuilt (and its rules validated again) when the index version changes, so a
        verdict never quotes a unit's text from an index that is no longer served.
        Callers use :meth:`check_for` to get the rules one caller may see.

        Raises:
            RulesError: the rules file is malformed or cites a unit that is gone.
            IndexNotReady: there is no index to validate against yet.
        """
        version = self.searcher.index_version
        with self._lock:
            if self._check is None or self._check.index_version != version:
                # The system reads every cited unit; the engine filters per caller (restricted_to).
                lookup = lambda ids: self.searcher.get_units(ids, flt=SYSTEM.query_filter())  # noqa: E731
                rules = load_rules(self.settings.check_rules_file, lookup_units=lookup)
                policy = None
                if self.settings.local_policy_file is not None:
                    policy = load_policy(
                        self.settings.local_policy_file,
                        units_of_document=lambda doc_id: list(self.searcher.iter_units(flt=SYSTEM.query_filter(doc_ids=[doc_id]))),
                    )
                self._check = CheckEngine(rules, lookup_units=lookup, index_version=version, policy=policy)
                log.info("confidentiality rules loaded for index version %s", version)
            return self._check

    def check_for(self, caller: Caller) -> CheckEngine:
        """The check engine restricted to the rules whose cited units ``caller`` may see."""
        return self.check_engine.restricted_to(caller.may_see)

    def answerer(self, caller: Caller = SYSTEM) -> Answerer:
        """The answer pipeline for one caller (its check verdicts use only what the caller may see).

        Pass the caller's ``access`` as ``groups=`` to ``Answerer.stream``/``ask`` too;
        :mod:`service.request` does both.
        """
        try:
            check: CheckEngine | None = self.check_for(caller)
        except RulesError as exc:
            # A rebuild broke a rule's quote: answers go on without the verdict card; /v1/check says why.
            log.error("confidentiality check unavailable: %s", exc.message)
            check = None
        return Answerer(
            self.settings,
            searcher=self.searcher,
            tokenizer=get_tokenizer(),
            backend=self.backend,
            check=check,
            queue=self.queue,
        )

    def close(self) -> None:
        """Release the shard and the audit DB (after writing what is queued) so another process can open them."""
        self.searcher.close()
        self.audit.close(timeout=10.0)


def build_state(settings: Settings, *, load_llm: bool = True) -> AppState:
    guard = InputGuard.from_settings(settings.pii_rules_file)
    state = AppState(
        settings=settings,
        searcher=build_searcher(settings),
        keys=KeyRing.load(settings.api_keys, settings.api_keys_file),
        rate_limiter=RateLimiter(settings.rate_limit_per_minute),
        auth_failures=RateLimiter(settings.auth_failures_per_minute),
        queue=LLMQueue(settings.llm_queue_size),
        guard=guard,
        audit=AuditLog(settings.audit_url, masker=guard.mask_for_log, queue_size=settings.audit_queue_size),
        trusted_proxies=parse_networks(settings.trusted_proxies),
    )
    if load_llm and settings.llm_backend != "none":
        from guideqa.errors import GuideQAError
        from service.llm import get_chat_backend

        try:
            state.backend = get_chat_backend(settings)
            state.extras["llm_status"] = "loaded"
        except GuideQAError as exc:
            # Answers fall back to the clauses mode; /readyz says why.
            log.error("LLM unavailable: %s", exc.detail or exc.message)
            state.extras["llm_status"] = exc.code
    else:
        state.extras["llm_status"] = "disabled"
    return state
