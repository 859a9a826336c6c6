"""FastAPI dependencies: settings, the searcher, the caller and role checks.

Routes declare what they need with these ``Annotated`` aliases and stay thin.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from guideqa.settings import Settings
from index.search import Searcher
from service.auth import ANONYMOUS, AuthError, Caller, ForbiddenError
from service.state import AppState

__all__ = ["StateDep", "SettingsDep", "SearcherDep", "CallerDep", "require_roles", "AdminDep", "ReaderDep"]


def get_state(request: Request) -> AppState:
    return request.app.state.guideqa


StateDep = Annotated[AppState, Depends(get_state)]


def get_settings_dep(state: StateDep) -> Settings:
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_searcher(state: StateDep) -> Searcher:
    return state.searcher


SearcherDep = Annotated[Searcher, Depends(get_searcher)]


def get_caller(request: Request, state: StateDep) -> Caller:
    key = request.headers.get("x-api-key") or ""
    if not key:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            key = auth[7:].strip()
    if key:
        caller = state.keys.lookup(key)
        if caller is None:
            raise AuthError("API キーが正しくありません。")
    elif state.settings.allow_anonymous:
        caller = ANONYMOUS
    else:
        raise AuthError()
    state.rate_limiter.check(caller.key_id)
    request.state.caller = caller
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


def require_roles(*roles: str):
    def _check(caller: CallerDep) -> Caller:
        if caller.role not in roles:
            raise ForbiddenError()
        return caller

    return _check


AdminDep = Annotated[Caller, Depends(require_roles("admin"))]
ReaderDep = Annotated[Caller, Depends(require_roles("admin", "user"))]
