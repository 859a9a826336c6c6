"""FastAPI dependencies: settings, the searcher, the caller and role checks.

Routes declare what they need with these ``Annotated`` aliases and stay thin.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from guideqa.errors import Forbidden, Unauthorized
from guideqa.settings import Settings
from index.search import Searcher
from service.auth import ANONYMOUS, Caller
from service.ratelimit import client_address
from service.state import AppState

__all__ = ["StateDep", "SettingsDep", "SearcherDep", "CallerDep", "require_roles", "AdminDep", "ReaderDep", "get_caller"]


def get_state(request: Request) -> AppState:
    return request.app.state.guideqa


StateDep = Annotated[AppState, Depends(get_state)]


def get_settings_dep(state: StateDep) -> Settings:
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_searcher(state: StateDep) -> Searcher:
    return state.searcher


SearcherDep = Annotated[Searcher, Depends(get_searcher)]


def _presented_key(request: Request) -> str:
    key = request.headers.get("x-api-key") or ""
    if not key:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            key = auth[7:].strip()
    return key


def get_caller(request: Request, state: StateDep) -> Caller:
    """The caller behind the request, rate-limited.

    Limits: one bucket per API key; anonymous callers one bucket per client
    address (``X-Forwarded-For`` only from ``Settings.trusted_proxies``); a wrong or
    missing key costs a token of the address's failure bucket, and an address whose
    failure bucket is empty gets 429 before its key is even looked at.

    Raises:
        Unauthorized: missing (when anonymous access is off) or unknown key.
        RateLimited: a bucket is empty (429 with Retry-After).
    """
    address = client_address(request.client.host if request.client else None, request.headers.get("x-forwarded-for"), trusted=state.trusted_proxies)
    request.state.client_address = address
    failures = f"addr:{address}"
    state.auth_failures.ensure_not_empty(failures)
    key = _presented_key(request)
    if key:
        caller = state.keys.lookup(key)
        if caller is None:
            state.auth_failures.check(failures)
            raise Unauthorized("API キーが正しくありません。")
        state.rate_limiter.check(f"key:{caller.key_id}")
    elif state.settings.allow_anonymous:
        caller = ANONYMOUS
        state.rate_limiter.check(failures)
    else:
        state.auth_failures.check(failures)
        raise Unauthorized()
    request.state.caller = caller
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


def require_roles(*roles: str):
    def _check(caller: CallerDep) -> Caller:
        if caller.role not in roles:
            raise Forbidden()
        return caller

    return _check


AdminDep = Annotated[Caller, Depends(require_roles("admin"))]
ReaderDep = Annotated[Caller, Depends(require_roles("admin", "user"))]
