"""Schemathesis against our own OpenAPI spec: whatever it sends, no 5xx comes back."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings as hsettings

from service.main import create_app

KEY = "fuzz-admin-key-01"


@pytest.fixture(scope="module")
def fuzz_app(settings, units, tmp_path_factory):
    """An app on its own copy of the corpus and its own index: the fuzzer, as an admin, writes
    curated answers and rebuilds, which must not change what the other tests read."""
    import shutil

    from index.build import build_index
    from index.embeddings import get_embedding_model
    from index.tokenizer import get_tokenizer

    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(settings.corpus_dir, root / "corpus")
    s = settings.model_copy(update={
        "corpus_dir": root / "corpus", "data_dir": root / "data",
        "llm_backend": "none", "api_keys": f"{KEY}:fuzz:admin:public", "rate_limit_per_minute": 1_000_000,
    })
    build_index(units, s, embed_model=get_embedding_model(s), tokenizer=get_tokenizer())
    return create_app(s)


@pytest.fixture(scope="module")
def api_schema(fuzz_app):
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)


def test_no_server_errors(api_schema):
    """Every operation, 25 generated requests each (valid and invalid by the schema)."""
    # The pytest plugin of schemathesis 4.32 does not run under pytest 9, so each
    # operation's Hypothesis strategy is driven here directly.
    checked = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @hsettings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        def run(case):
            case.headers = {**(case.headers or {}), "X-API-Key": KEY}
            response = case.call()
            assert response.status_code < 500 or response.status_code == 503, (case.method, case.path, response.status_code, response.text[:300])
            ctype = response.headers.get("content-type") or [""]
            if response.status_code >= 400 and str(ctype[0] if isinstance(ctype, list) else ctype).startswith("application/json"):
                assert "error" in response.json(), response.text[:200]

        run()
        checked.append(f"{operation.method.upper()} {operation.path}")
    assert {"POST /v1/search", "POST /v1/ask", "POST /v1/check", "GET /v1/units/{unit_id}"} <= set(checked)
