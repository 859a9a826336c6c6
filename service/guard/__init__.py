"""Input protection: personal data, deny words and prompt injection, checked before retrieval.

    >>> from service.guard import InputGuard, rejection_for
    >>> guard = InputGuard.default()
    >>> decision = guard.check("マイナンバー 1234 5678 9018 の扱いは？")
    >>> decision.action, decision.code, decision.masked_for_log
    ('block', 'pii_detected', 'マイナンバー 〔マイナンバー〕 の扱いは？')
    >>> rejection_for(decision).code
    'pii_detected'

Blocked questions become :class:`~guideqa.errors.QueryRejected` subclasses with
stable codes (all 422; the classes live in :mod:`guideqa.errors`)::

    QueryRejected
    ├── PIIDetected          pii_detected        a category whose action is ``block``
    ├── DenyWordDetected     deny_word           a word from the deny list
    └── InjectionDetected    injection_detected  nothing but an injection attempt
"""

from __future__ import annotations

from guideqa.errors import DenyWordDetected, InjectionDetected, PIIDetected, QueryRejected
from service.guard.injection import find_injection, strip_injection
from service.guard.pii import PIIFinding, is_valid_corporate_number, is_valid_luhn, is_valid_my_number
from service.guard.policy import DEFAULT_RULES_PATH, GuardDecision, GuardRules, InputGuard, load_rules

__all__ = [
    "DEFAULT_RULES_PATH",
    "DenyWordDetected",
    "GuardDecision",
    "GuardRules",
    "InjectionDetected",
    "InputGuard",
    "PIIDetected",
    "PIIFinding",
    "check_question",
    "find_injection",
    "is_valid_corporate_number",
    "is_valid_luhn",
    "is_valid_my_number",
    "load_rules",
    "rejection_for",
    "strip_injection",
]


_BY_CODE: dict[str, type[QueryRejected]] = {
    cls.code: cls for cls in (PIIDetected, DenyWordDetected, InjectionDetected)
}


def rejection_for(decision: GuardDecision) -> QueryRejected | None:
    """The error to raise for a blocked decision, or ``None`` if the question may go on.

    The error's ``detail`` (for operators' logs only) lists categories and rule ids,
    never the matched text.
    """
    if not decision.blocked:
        return None
    cls = _BY_CODE.get(decision.code or "", QueryRejected)
    detail = f"categories={sorted({f.category for f in decision.findings})} injection_rules={list(decision.injection_rules)}"
    return cls(decision.message or None, detail=detail)


def check_question(guard: InputGuard, question: str) -> GuardDecision:
    """``guard.check(question)``, raising the matching :class:`QueryRejected` when blocked.

    Raises:
        PIIDetected, DenyWordDetected, InjectionDetected: the question was blocked.
    """
    decision = guard.check(question)
    error = rejection_for(decision)
    if error is not None:
        raise error
    return decision
