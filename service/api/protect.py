"""Input protection and auditing around every question-bearing request.

The guard runs before retrieval and before the LLM. A blocked question is
audited with its PII masked, then refused with the guard's Japanese message.
"""

from __future__ import annotations

from typing import Any

from index.search import validate_query
from service.auth import Caller
from service.guard import rejection_for
from service.state import AppState

__all__ = ["protect", "audit"]


def audit(state: AppState, caller: Caller, **fields: Any) -> str:
    return state.audit.record(key_id=caller.key_id, groups=list(caller.groups), **fields)


def protect(state: AppState, caller: Caller, question: str, *, endpoint: str, mode: str | None = None) -> tuple[str, str]:
    """Validate and screen a question.

    Returns:
        (the question to answer — masked or with an injected instruction removed,
         the form that is safe to log).

    Raises:
        QueryRejected (and its guard subclasses): the question is refused; the
        attempt is audited with PII masked.
    """
    q = validate_query(question, max_chars=state.settings.max_query_chars)
    decision = state.guard.check(q)
    err = rejection_for(decision)
    if err is not None:
        audit(state, caller, endpoint=endpoint, question_masked=decision.masked_for_log, mode=mode, status="blocked", error_code=err.code)
        raise err
    return decision.text, decision.masked_for_log
