"""Everything the API keeps for the life of the process, built once at start-up."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from guideqa.settings import Settings
from index.search import Searcher
from index.tokenizer import get_tokenizer
from service.answer import Answerer, LLMQueue
from service.audit import AuditLog
from service.auth import KeyRing
from service.check import CheckEngine, load_rules
from service.components import build_searcher
from service.guard import InputGuard
from service.ratelimit import RateLimiter

__all__ = ["AppState", "build_state"]

log = logging.getLogger(__name__)


@dataclass
class AppState:
    settings: Settings
    searcher: Searcher
    keys: KeyRing
    rate_limiter: RateLimiter
    queue: LLMQueue
    guard: InputGuard
    audit: AuditLog
    backend: Any | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    _check: CheckEngine | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def check_engine(self) -> CheckEngine:
        """The confidentiality check, validated against the live index on first use.

        Raises:
            RulesError: the rules file is malformed or cites a unit that is gone.
            IndexNotReady: there is no index to validate against yet.
        """
        with self._lock:
            if self._check is None:
                lookup = lambda ids: self.searcher.get_units(ids, None)  # noqa: E731 - rules may cite any label
                rules = load_rules(self.settings.check_rules_file, lookup_units=lookup)
                self._check = CheckEngine(rules, lookup_units=lookup)
            return self._check

    def answerer(self) -> Answerer:
        return Answerer(
            self.settings,
            searcher=self.searcher,
            tokenizer=get_tokenizer(),
            backend=self.backend,
            check=self.check_engine,
            queue=self.queue,
        )

    def close(self) -> None:
        """Release the shard and the audit DB so another process can open them."""
        self.searcher.close()
        self.audit.close()


def build_state(settings: Settings, *, load_llm: bool = True) -> AppState:
    state = AppState(
        settings=settings,
        searcher=build_searcher(settings),
        keys=KeyRing.load(settings.api_keys, settings.api_keys_file),
        rate_limiter=RateLimiter(settings.rate_limit_per_minute),
        queue=LLMQueue(settings.llm_queue_size),
        guard=InputGuard.from_settings(settings.pii_rules_file),
        audit=AuditLog(settings.audit_url),
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
