"""One error tree: every error in ``guideqa/errors.py``, with its status and code on the class."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from fastapi.testclient import TestClient

import guideqa.errors as errors
import service
from service.api.errors import ERROR_STATUS
from service.main import create_app


def test_every_class_has_its_own_code_and_status():
    classes = errors.error_classes()
    assert set(errors.__all__) >= {c.__name__ for c in classes}
    for cls in classes:
        assert "code" in vars(cls), cls  # its own code, never its parent's
        assert 400 <= cls.status < 600, cls
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)), sorted(c for c in codes if codes.count(c) > 1)
    assert ERROR_STATUS == {c.code: c.status for c in classes}


def test_no_error_class_is_defined_outside_the_tree():
    for mod in pkgutil.walk_packages(service.__path__, "service."):
        importlib.import_module(mod.name)
    stray = []
    todo = [errors.GuideQAError]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("service."):
            stray.append(f"{cls.__module__}.{cls.__name__}")
    assert not stray, stray


def test_openapi_lists_every_code_with_its_status(settings, built_index):
    with TestClient(create_app(settings.model_copy(update={"llm_backend": "none"}))) as c:
        description = c.get("/openapi.json").json()["info"]["description"]
    for code, status in ERROR_STATUS.items():
        assert f"| `{code}` | {status} |" in description, code


@pytest.mark.parametrize(
    "cls,status",
    [(errors.QueryTooLong, 422), (errors.NotFound, 404), (errors.RateLimited, 429), (errors.AuditBacklogFull, 503), (errors.Unauthorized, 401)],
)
def test_a_raised_error_answers_with_its_class_status(cls, status):
    from service.api.errors import error_response

    r = error_response(cls())
    assert r.status_code == status
    if issubclass(cls, errors.Overloaded):
        assert int(r.headers["retry-after"]) >= 1
